package kdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"golang.org/x/sys/unix"
)

// The admin channel: a Unix socket beside the database, mode 0600, that only the
// database's owner (checked again with SO_PEERCRED) may use. bbolt lets one process
// hold the database, so while `kdc serve` runs, `kdc principal` and `kdc keytab`
// send their change here and the server applies it to the store it has open.
// One JSON request and one JSON response per connection.

// AdminTimeout bounds one admin exchange on either side.
const AdminTimeout = 30 * time.Second

// AdminSocketPath is where the server for dbPath listens for administration.
func AdminSocketPath(dbPath string) string { return dbPath + ".sock" }

type adminRequest struct {
	Op       string         `json:"op"`
	Name     string         `json:"name,omitempty"`
	Names    []string       `json:"names,omitempty"`
	Add      *AddRequest    `json:"add,omitempty"`
	Password string         `json:"password,omitempty"`
	Random   bool           `json:"random,omitempty"`
	Disabled bool           `json:"disabled,omitempty"`
	Keep     int            `json:"keep,omitempty"`
	Trust    *TrustRequest  `json:"trust,omitempty"`
	Alias    string         `json:"alias,omitempty"`
	Modify   *ModifyRequest `json:"modify,omitempty"`
	// Policies (policyadmin.go).
	Policy       *principal.Policy `json:"policy,omitempty"`
	PolicyChange *PolicyChange     `json:"policy_change,omitempty"`
	IgnorePolicy bool              `json:"ignore_policy,omitempty"`
}

type adminResponse struct {
	Error   string            `json:"error,omitempty"`
	Kind    string            `json:"kind,omitempty"` // "not_found" or "exists", so errors.Is works across the socket
	Realm   string            `json:"realm,omitempty"`
	Info    *PrincipalInfo    `json:"info,omitempty"`
	Names   []string          `json:"names,omitempty"`
	Keytab  []wireKeytabEntry `json:"keytab,omitempty"`
	Infos   []PrincipalInfo   `json:"infos,omitempty"`
	Trusts  []TrustInfo       `json:"trusts,omitempty"`
	Aliases []AliasInfo       `json:"aliases,omitempty"`
	Policy  *principal.Policy `json:"policy,omitempty"`
}

// wireKeytabEntry carries a keytab entry over the socket. gokrb5's
// EncryptionKey tags its key bytes `json:"-"`, so they need a field of our own.
type wireKeytabEntry struct {
	Principal wirePrincipal `json:"principal"`
	Timestamp time.Time     `json:"timestamp"`
	KVNO      uint32        `json:"kvno"`
	Etype     int32         `json:"etype"`
	Key       []byte        `json:"key"`
}

// wirePrincipal is a principal name on the socket, name type included:
// {"Realm":"R","Name":{"NameType":1,"NameString":["a","b"]}}. That is the form
// the socket has carried from the start, kept so that `kdc principal` and
// `kdc keytab` of one build still talk to a running server of another.
type wirePrincipal struct {
	Realm string          `json:"Realm"`
	Name  wirePrincipalPN `json:"Name"`
}

// wirePrincipalPN is the name part of a wirePrincipal.
type wirePrincipalPN struct {
	NameType   int32    `json:"NameType"`
	NameString []string `json:"NameString"`
}

func toWirePrincipal(n principal.Name) wirePrincipal {
	return wirePrincipal{Realm: n.Realm, Name: wirePrincipalPN{NameType: n.Type, NameString: n.Components}}
}

func (w wirePrincipal) name() principal.Name {
	return principal.Name{Components: w.Name.NameString, Realm: w.Realm, Type: w.Name.NameType}
}

// AdminServer serves an Admin on a Unix socket.
type AdminServer struct {
	ln   *net.UnixListener
	path string
	wg   sync.WaitGroup
	// allowUID decides which peers may administer; nil means checkPeer's
	// rule (the server's own uid, or root). Tests replace it.
	allowUID func(uid uint32) bool
	// Audit, when set, gets a line for every change (audit.go).
	Audit *AuditLog
}

// ListenAdmin creates the admin socket at path with mode 0600. A stale socket
// left by a crashed server is replaced; a live one is an error.
func ListenAdmin(path string) (*AdminServer, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("kdc: another server is already administering this database (%s answers)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kdc: removing stale admin socket: %w", err)
	}
	// Create the socket with no group/other permissions from the start, so there
	// is no window in which others could connect.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("kdc: admin socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return &AdminServer{ln: ln, path: path}, nil
}

// Serve answers admin requests with a until ctx is done.
func (s *AdminServer) Serve(ctx context.Context, a Admin, log *slog.Logger) {
	go func() { <-ctx.Done(); s.ln.Close() }()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serveConn(ctx, c, a, log)
		}()
	}
	s.wg.Wait()
}

func (s *AdminServer) serveConn(ctx context.Context, c *net.UnixConn, a Admin, log *slog.Logger) {
	c.SetDeadline(time.Now().Add(AdminTimeout))
	uid, err := checkPeer(c, s.allowUID)
	if err != nil {
		log.Warn("admin connection refused", "err", err)
		// Read (and drop) the request before answering: the client writes it
		// first, and closing on unread data would reset the connection under
		// it, so it would see "broken pipe" instead of this refusal.
		c.SetReadDeadline(time.Now().Add(time.Second))
		var discard adminRequest
		json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&discard)
		json.NewEncoder(c).Encode(adminResponse{Error: err.Error()})
		return
	}
	var req adminRequest
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		json.NewEncoder(c).Encode(adminResponse{Error: "kdc: bad admin request: " + err.Error()})
		return
	}
	resp := safeDispatchAdmin(ctx, a, &req, log)
	target := req.Name
	if target == "" && req.Add != nil {
		target = req.Add.Name
	}
	if target == "" && req.Trust != nil {
		target = "trust " + req.Trust.Realm + " " + req.Trust.Direction // never the password
	}
	log.Info("admin", "op", req.Op, "principal", target, "names", req.Names, "error", resp.Error)
	if ev, ok := auditEvent(&req, &resp, fmt.Sprintf("uid:%d", uid), "admin-socket "+s.path); ok {
		s.Audit.Log(ev)
	}
	json.NewEncoder(c).Encode(resp)
}

// safeDispatchAdmin is dispatchAdmin that turns a panic (a store failing in an
// unexpected way) into an error for this request, as the KDC's request path
// does: an admin command must never take the server down.
func safeDispatchAdmin(ctx context.Context, a Admin, req *adminRequest, log *slog.Logger) (resp adminResponse) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("admin operation panicked", "op", req.Op, "panic", fmt.Sprint(r))
			resp = adminResponse{Error: fmt.Sprintf("kdc: admin operation %q failed inside the server: %v", req.Op, r)}
		}
	}()
	return dispatchAdmin(ctx, a, req)
}

// checkPeer lets in only the user who owns the server process (or root), or
// whom allow accepts when it is set: the socket mode already says so,
// SO_PEERCRED makes sure.
func checkPeer(c *net.UnixConn, allow func(uint32) bool) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	if allow == nil {
		allow = func(uid uint32) bool { return uid == uint32(os.Getuid()) || uid == 0 }
	}
	if !allow(cred.Uid) {
		return cred.Uid, fmt.Errorf("kdc: uid %d may not administer this database", cred.Uid)
	}
	return cred.Uid, nil
}

func dispatchAdmin(ctx context.Context, a Admin, req *adminRequest) adminResponse {
	var resp adminResponse
	var err error
	var info PrincipalInfo
	switch req.Op {
	case "realm":
		resp.Realm, err = a.Realm(ctx)
	case "add":
		if req.Add == nil {
			err = errors.New("kdc: add without a principal")
			break
		}
		info, err = a.Add(ctx, *req.Add)
		resp.Info = &info
	case "list":
		resp.Names, err = a.List(ctx)
	case "show":
		info, err = a.Show(ctx, req.Name)
		resp.Info = &info
	case "delete":
		err = a.Delete(ctx, req.Name)
	case "passwd":
		if pa, ok := a.(PolicyAdmin); ok {
			info, err = pa.SetPassword(ctx, req.Name, req.Password, req.Random, req.IgnorePolicy)
		} else {
			info, err = a.ChangeKeys(ctx, req.Name, req.Password, req.Random)
		}
		resp.Info = &info
	case "disable":
		info, err = a.SetDisabled(ctx, req.Name, req.Disabled)
		resp.Info = &info
	case "keytab":
		var entries []ticket.KeytabEntry
		entries, err = a.Keytab(ctx, req.Names)
		for _, e := range entries {
			resp.Keytab = append(resp.Keytab, wireKeytabEntry{Principal: toWirePrincipal(e.Principal), Timestamp: e.Timestamp, KVNO: e.KVNO, Etype: e.Key.KeyType, Key: e.Key.KeyValue})
		}
	case "purgekeys":
		info, err = a.PurgeKeys(ctx, req.Name, req.Keep)
		resp.Info = &info
	case "check":
		err = a.Check(ctx)
	case "trust-add", "trust-list", "trust-delete":
		resp, err = dispatchTrust(ctx, a, req)
	case "alias-add", "alias-delete", "alias-list", "modify":
		resp, err = dispatchNames(ctx, a, req)
	case "policy-add", "policy-modify", "policy-show", "policy-list", "policy-delete", "unlock":
		resp, err = dispatchPolicy(ctx, a, req)
	default:
		err = fmt.Errorf("kdc: unknown admin operation %q", req.Op)
	}
	if err != nil {
		resp = adminResponse{Error: err.Error()}
		switch {
		case errors.Is(err, principal.ErrNotFound):
			resp.Kind = "not_found"
		case errors.Is(err, principal.ErrExists):
			resp.Kind = "exists"
		case errors.Is(err, principal.ErrPasswordQuality):
			resp.Kind = "password_quality"
		case errors.Is(err, principal.ErrPolicyInUse):
			resp.Kind = "policy_in_use"
		}
	}
	return resp
}

// AdminClient administers a running server through its admin socket.
type AdminClient struct {
	Path string
	// local, when set, answers requests in this process (LocalClient).
	local func(context.Context, adminRequest) adminResponse
}

var _ Admin = (*AdminClient)(nil)

// DialAdmin returns a client if a server answers on path.
func DialAdmin(path string) (*AdminClient, bool) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, false
	}
	c.Close()
	return &AdminClient{Path: path}, true
}

// remoteError keeps the server's message and, for the errors callers test for, the
// sentinel underneath.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func (c *AdminClient) call(ctx context.Context, req adminRequest) (adminResponse, error) {
	if c.local != nil {
		return remoteResult(c.local(ctx, req))
	}
	d := net.Dialer{Timeout: AdminTimeout}
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return adminResponse{}, fmt.Errorf("kdc: admin socket %s: %w", c.Path, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(AdminTimeout))
	werr := json.NewEncoder(conn).Encode(req)
	// Read the answer even when the write failed: a server that refused this
	// peer has said why before closing.
	var resp adminResponse
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		if werr != nil {
			return adminResponse{}, fmt.Errorf("kdc: admin request: %w", werr)
		}
		return adminResponse{}, fmt.Errorf("kdc: admin response: %w", err)
	}
	return remoteResult(resp)
}

// remoteResult turns a response's error into an error value.
func remoteResult(resp adminResponse) (adminResponse, error) {
	if resp.Error != "" {
		re := &remoteError{msg: resp.Error}
		switch resp.Kind {
		case "not_found":
			re.kind = principal.ErrNotFound
		case "exists":
			re.kind = principal.ErrExists
		case "password_quality":
			re.kind = principal.ErrPasswordQuality
		case "policy_in_use":
			re.kind = principal.ErrPolicyInUse
		}
		return resp, re
	}
	return resp, nil
}

func infoResult(resp adminResponse, err error) (PrincipalInfo, error) {
	if err != nil || resp.Info == nil {
		return PrincipalInfo{}, err
	}
	return *resp.Info, nil
}

// Realm implements Admin.
func (c *AdminClient) Realm(ctx context.Context) (string, error) {
	resp, err := c.call(ctx, adminRequest{Op: "realm"})
	return resp.Realm, err
}

// Add implements Admin.
func (c *AdminClient) Add(ctx context.Context, req AddRequest) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "add", Add: &req}))
}

// List implements Admin.
func (c *AdminClient) List(ctx context.Context) ([]string, error) {
	resp, err := c.call(ctx, adminRequest{Op: "list"})
	return resp.Names, err
}

// Show implements Admin.
func (c *AdminClient) Show(ctx context.Context, name string) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "show", Name: name}))
}

// Delete implements Admin.
func (c *AdminClient) Delete(ctx context.Context, name string) error {
	_, err := c.call(ctx, adminRequest{Op: "delete", Name: name})
	return err
}

// ChangeKeys implements Admin.
func (c *AdminClient) ChangeKeys(ctx context.Context, name, password string, random bool) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "passwd", Name: name, Password: password, Random: random}))
}

// SetDisabled implements Admin.
func (c *AdminClient) SetDisabled(ctx context.Context, name string, disabled bool) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "disable", Name: name, Disabled: disabled}))
}

// PurgeKeys implements Admin.
func (c *AdminClient) PurgeKeys(ctx context.Context, name string, keep int) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "purgekeys", Name: name, Keep: keep}))
}

// Check implements Admin.
func (c *AdminClient) Check(ctx context.Context) error {
	_, err := c.call(ctx, adminRequest{Op: "check"})
	return err
}

// Keytab implements Admin.
func (c *AdminClient) Keytab(ctx context.Context, names []string) ([]ticket.KeytabEntry, error) {
	resp, err := c.call(ctx, adminRequest{Op: "keytab", Names: names})
	if err != nil {
		return nil, err
	}
	out := make([]ticket.KeytabEntry, len(resp.Keytab))
	for i, e := range resp.Keytab {
		out[i] = ticket.KeytabEntry{Principal: e.Principal.name(), Timestamp: e.Timestamp, KVNO: e.KVNO,
			Key: types.EncryptionKey{KeyType: e.Etype, KeyValue: e.Key}}
	}
	return out, nil
}
