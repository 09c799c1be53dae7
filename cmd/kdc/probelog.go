package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/kerbkit/kerbkit/kdc"
)

// quietProbes drops the line the KDC logs for each `kdc probe` request (an
// AS_REQ from the client kerbkit-probe answered CLIENT_NOT_FOUND) below warn
// level, as web servers keep their health checks out of the access log: the
// image's HEALTHCHECK would otherwise add two lines every few seconds. Every
// other request, and a probe at debug level, is logged as before.
type quietProbes struct{ slog.Handler }

// Handle implements slog.Handler.
func (h quietProbes) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && isProbeRecord(r) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WriteLine implements kdc.LineWriter: the KDC's request line comes this way
// when the handler underneath takes it (kdc.TextHandler).
func (h quietProbes) WriteLine(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) bool {
	lw, ok := h.Handler.(kdc.LineWriter)
	if !ok {
		return false
	}
	if level < slog.LevelWarn && isProbeLine(msg, attrs) {
		return true
	}
	return lw.WriteLine(ctx, t, level, msg, attrs)
}

// WithAttrs implements slog.Handler.
func (h quietProbes) WithAttrs(as []slog.Attr) slog.Handler {
	return quietProbes{h.Handler.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h quietProbes) WithGroup(name string) slog.Handler {
	return quietProbes{h.Handler.WithGroup(name)}
}

// isProbeRecord reports whether r is the KDC's line for a probe.
func isProbeRecord(r slog.Record) bool {
	if r.Message != "AS_REQ" {
		return false
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	return isProbeLine(r.Message, attrs)
}

// isProbeLine reports whether a line of message msg and attributes attrs is
// the KDC's line for a probe: AS_REQ, client kerbkit-probe@…, CLIENT_NOT_FOUND.
func isProbeLine(msg string, attrs []slog.Attr) bool {
	if msg != "AS_REQ" {
		return false
	}
	client, result := "", ""
	for _, a := range attrs {
		switch a.Key {
		case "client":
			client = a.Value.String()
		case "result":
			result = a.Value.String()
		}
	}
	return strings.HasPrefix(client, probeClient+"@") && result == "CLIENT_NOT_FOUND"
}
