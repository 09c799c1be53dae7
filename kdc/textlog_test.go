package kdc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"
)

// randomLogString draws from what makes slog quote a value: spaces, '=',
// quotes, backslashes, control bytes, DEL, non-ASCII text and invalid UTF-8.
func randomLogString(rng *rand.Rand) string {
	pieces := []string{"a", "Z", "9", "@", ".", "/", ":", "-", "_", ",", "…", "é", "\xff", " ", "=", `"`, `\`, "\t", "\n", "\x00", "\x7f", "\x1b", "{", "}", "[", "'", "µ", "\u00a0"}
	if rng.Intn(8) == 0 {
		return ""
	}
	var sb strings.Builder
	for range 1 + rng.Intn(12) {
		p := pieces[rng.Intn(len(pieces))]
		if rng.Intn(3) > 0 { // mostly plain characters, as real names are
			p = pieces[rng.Intn(9)]
		}
		sb.WriteString(p)
	}
	return sb.String()
}

// TestTextHandlerMatchesSlog: every line TextHandler.WriteLine writes is the
// line slog's TextHandler writes for the same record, for random values of
// every kind the KDC logs and times in several zones; the lines it declines
// (non-ASCII text) are the only ones it declines.
func TestTextHandlerMatchesSlog(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	zones := []*time.Location{time.UTC, time.FixedZone("", -5*3600-30*60), time.FixedZone("X", 9*3600)}
	var fast, ref bytes.Buffer
	h := NewTextHandler(&fast, nil)
	sh := slog.NewTextHandler(&ref, nil)
	written := 0
	var prev time.Time
	for i := range 20000 {
		fast.Reset()
		ref.Reset()
		at := time.Unix(rng.Int63n(4e9), rng.Int63n(1e9))
		if i > 0 && rng.Intn(2) == 0 {
			// Often the same millisecond as the last line, or the next one,
			// in the same zone or another: the formatted time is reused.
			at = prev.Add(time.Duration(rng.Int63n(int64(1500 * time.Microsecond))))
		}
		at = at.In(zones[rng.Intn(len(zones))])
		prev = at
		msg := []string{"AS_REQ", "TGS_REQ", "a b", ""}[rng.Intn(4)]
		level := []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelDebug, slog.LevelInfo + 2}[rng.Intn(4)]
		var attrs []slog.Attr
		for range rng.Intn(12) {
			key := []string{"client", "from", "took", "a=b", "k y"}[rng.Intn(5)]
			var v slog.Value
			switch rng.Intn(6) {
			case 0, 1:
				v = slog.StringValue(randomLogString(rng))
			case 2:
				v = slog.Int64Value(rng.Int63() - rng.Int63())
			case 3:
				v = slog.Uint64Value(rng.Uint64())
			case 4:
				v = slog.BoolValue(rng.Intn(2) == 0)
			case 5:
				v = slog.DurationValue(time.Duration(rng.Int63n(int64(3 * time.Hour))))
			}
			attrs = append(attrs, slog.Attr{Key: key, Value: v})
		}
		r := slog.NewRecord(at, level, msg, 0)
		r.AddAttrs(attrs...)
		if err := sh.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		ascii := true
		for _, s := range append([]string{msg}, attrStrings(attrs)...) {
			for j := 0; j < len(s); j++ {
				if s[j] >= 0x80 {
					ascii = false
				}
			}
		}
		ok := h.WriteLine(context.Background(), at, level, msg, attrs)
		if ok != ascii {
			t.Fatalf("line %d: WriteLine %v for %q", i, ok, ref.String())
		}
		if ok {
			written++
			if fast.String() != ref.String() {
				t.Fatalf("line %d:\n got %q\nwant %q", i, fast.String(), ref.String())
			}
		} else if fast.Len() != 0 {
			t.Fatalf("line %d: declined, but wrote %q", i, fast.String())
		}
	}
	if written < 5000 {
		t.Fatalf("only %d of 20000 lines written by the fast path", written)
	}
}

func attrStrings(attrs []slog.Attr) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, a.Key)
		if a.Value.Kind() == slog.KindString {
			out = append(out, a.Value.String())
		}
	}
	return out
}

// TestTextHandlerOptions: with AddSource or ReplaceAttr the line is left to
// slog, which honours them; records through slog and lines through WriteLine
// share one lock (the race detector watches the writer).
func TestTextHandlerOptions(t *testing.T) {
	var buf bytes.Buffer
	for _, o := range []*slog.HandlerOptions{{AddSource: true}, {ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}} {
		if NewTextHandler(&buf, o).WriteLine(context.Background(), time.Now(), slog.LevelInfo, "AS_REQ", nil) || buf.Len() != 0 {
			t.Fatalf("options %+v: the fast path wrote %q", o, buf.String())
		}
	}
	h := NewTextHandler(&buf, nil)
	log := slog.New(h)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if i%2 == 0 {
					log.Info("other", "n", i)
				} else {
					h.WriteLine(context.Background(), time.Now(), slog.LevelInfo, "AS_REQ", []slog.Attr{slog.Int("n", i)})
				}
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if !strings.HasPrefix(l, "time=") || strings.Count(l, "time=") != 1 {
			t.Fatalf("interleaved line %q", l)
		}
	}
}

// BenchmarkTextHandlerLine is the KDC's per-request line through WriteLine,
// many lines a millisecond as under load.
func BenchmarkTextHandlerLine(b *testing.B) {
	h := NewTextHandler(io.Discard, nil)
	attrs := []slog.Attr{
		slog.String("transport", "udp"), slog.String("from", "127.0.0.1:40123"),
		slog.String("client", "alice@KERBKIT.TEST"), slog.String("service", "krbtgt/KERBKIT.TEST@KERBKIT.TEST"),
		slog.String("etypes", "18,17,20,19"), slog.String("result", "ISSUE"),
		slog.Duration("took", 34*time.Microsecond),
	}
	b.ReportAllocs()
	for b.Loop() {
		h.WriteLine(context.Background(), time.Now(), slog.LevelInfo, "AS_REQ", attrs)
	}
}
