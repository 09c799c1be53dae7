package kdc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
)

// Trust directions of `kdc trust add --direction`.
const (
	// TrustOut lets our clients reach the other realm: krbtgt/OTHER@OURS.
	TrustOut = "out"
	// TrustIn lets the other realm's clients reach our services: krbtgt/OURS@OTHER.
	TrustIn = "in"
	// TrustBoth is both keys.
	TrustBoth = "both"
)

// MinTrustPassword is the shortest shared password `kdc trust add` accepts: an
// inter-realm key derived from it seals every cross-realm TGT, and a captured
// one can be attacked offline.
const MinTrustPassword = 16

// TrustRequest describes a trust to add: inter-realm keys derived from a
// password both realms' administrators know, with the default salt, so that
// MIT's `kadmin.local addprinc krbtgt/B@A` with the same password and kvno
// gives the same keys.
type TrustRequest struct {
	Realm     string  `json:"realm"`
	Direction string  `json:"direction"`
	Password  string  `json:"password,omitempty"`
	Enctypes  []int32 `json:"enctypes,omitempty"`
	// KVNO is the key version both sides must agree on; 0 means 1 (MIT's
	// addprinc gives kvno 1).
	KVNO uint32 `json:"kvno,omitempty"`
}

// TrustInfo is one trusted realm as `kdc trust list` shows it: the keys of
// each direction present (never key material).
type TrustInfo struct {
	Realm string         `json:"realm"`
	Out   *PrincipalInfo `json:"out,omitempty"` // krbtgt/REALM@OURS
	In    *PrincipalInfo `json:"in,omitempty"`  // krbtgt/OURS@REALM
}

// Direction is "in", "out" or "both".
func (t TrustInfo) Direction() string {
	switch {
	case t.In != nil && t.Out != nil:
		return TrustBoth
	case t.In != nil:
		return TrustIn
	}
	return TrustOut
}

// TrustAdmin manages cross-realm trust. LocalAdmin and AdminClient implement it.
type TrustAdmin interface {
	// TrustAdd creates the inter-realm keys of the direction asked for; it
	// fails with principal.ErrExists, writing nothing, if one exists.
	TrustAdd(ctx context.Context, req TrustRequest) ([]PrincipalInfo, error)
	// TrustList returns the realms this realm holds inter-realm keys with.
	TrustList(ctx context.Context) ([]TrustInfo, error)
	// TrustDelete removes the inter-realm keys of the direction and returns
	// their names; principal.ErrNotFound if there is none.
	TrustDelete(ctx context.Context, realm, direction string) ([]string, error)
}

var (
	_ TrustAdmin = (*LocalAdmin)(nil)
	_ TrustAdmin = (*AdminClient)(nil)
)

// trustNames returns the inter-realm key names of a direction.
func trustNames(ours, other, direction string) ([]principal.Name, error) {
	out, in := principal.CrossRealmKrbtgt(other, ours), principal.CrossRealmKrbtgt(ours, other)
	switch direction {
	case TrustOut:
		return []principal.Name{out}, nil
	case TrustIn:
		return []principal.Name{in}, nil
	case TrustBoth, "":
		return []principal.Name{out, in}, nil
	}
	return nil, fmt.Errorf("kdc: trust direction %q: want in, out or both", direction)
}

// checkTrustRealm refuses our own realm and names no KDC could carry.
func checkTrustRealm(ours, other string) error {
	switch {
	case other == "":
		return errors.New("kdc: no realm to trust")
	case other == ours:
		return fmt.Errorf("kdc: %s is this realm; a trust is with another realm", ours)
	case strings.ContainsAny(other, "/@\\\n\t ") || !principal.InBounds(types.PrincipalName{NameString: []string{"krbtgt", other}}, other):
		return fmt.Errorf("kdc: %q is not a realm name", other)
	}
	return nil
}

// TrustAdd implements TrustAdmin.
func (a *LocalAdmin) TrustAdd(ctx context.Context, req TrustRequest) ([]PrincipalInfo, error) {
	ours := a.Store.Realm()
	if err := checkTrustRealm(ours, req.Realm); err != nil {
		return nil, err
	}
	names, err := trustNames(ours, req.Realm, req.Direction)
	if err != nil {
		return nil, err
	}
	if len(req.Password) < MinTrustPassword {
		return nil, fmt.Errorf("kdc: the shared password of a trust must have at least %d characters", MinTrustPassword)
	}
	enctypes := req.Enctypes
	if len(enctypes) == 0 {
		enctypes = principal.DefaultEnctypes
	}
	kvno := req.KVNO
	if kvno == 0 {
		kvno = 1
	}
	for _, n := range names {
		if _, err := a.Store.Get(ctx, n); err == nil {
			return nil, fmt.Errorf("kdc: %s: %w (kdc trust delete %s first)", n, principal.ErrExists, req.Realm)
		} else if !errors.Is(err, principal.ErrNotFound) {
			return nil, err
		}
	}
	var infos []PrincipalInfo
	for i, n := range names {
		keys, err := principal.KeysFromPassword(n, req.Password, enctypes, kvno)
		if err == nil {
			rec := principal.NewRecord(n, keys, a.now())
			// A krbtgt is never a client: no AS exchange uses its key.
			err = a.Store.Create(ctx, rec)
			if err == nil {
				infos = append(infos, infoOf(rec))
				continue
			}
		}
		// Leave nothing half made.
		for _, made := range names[:i] {
			_ = a.Store.Delete(ctx, made)
		}
		return nil, err
	}
	return infos, nil
}

// TrustList implements TrustAdmin.
func (a *LocalAdmin) TrustList(ctx context.Context) ([]TrustInfo, error) {
	ours := a.Store.Realm()
	names, err := a.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	byRealm := map[string]*TrustInfo{}
	get := func(r string) *TrustInfo {
		if t, ok := byRealm[r]; ok {
			return t
		}
		t := &TrustInfo{Realm: r}
		byRealm[r] = t
		return t
	}
	for _, n := range names {
		var t *TrustInfo
		var slot **PrincipalInfo
		switch {
		case n.IsKrbtgt() && n.Realm == ours && n.Components[1] != ours:
			t = get(n.Components[1])
			slot = &t.Out
		case n.IsIncomingTrust(ours):
			t = get(n.Realm)
			slot = &t.In
		default:
			continue
		}
		rec, err := a.Store.Get(ctx, n)
		if err != nil {
			return nil, err
		}
		info := infoOf(rec)
		*slot = &info
	}
	out := make([]TrustInfo, 0, len(byRealm))
	for _, t := range byRealm {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Realm < out[j].Realm })
	return out, nil
}

// TrustDelete implements TrustAdmin.
func (a *LocalAdmin) TrustDelete(ctx context.Context, realm, direction string) ([]string, error) {
	ours := a.Store.Realm()
	if err := checkTrustRealm(ours, realm); err != nil {
		return nil, err
	}
	names, err := trustNames(ours, realm, direction)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, n := range names {
		err := a.Store.Delete(ctx, n)
		switch {
		case err == nil:
			deleted = append(deleted, n.String())
		case !errors.Is(err, principal.ErrNotFound):
			return deleted, err
		}
	}
	if len(deleted) == 0 {
		return nil, fmt.Errorf("kdc: no trust with %s: %w", realm, principal.ErrNotFound)
	}
	return deleted, nil
}

// TrustAdd implements TrustAdmin.
func (c *AdminClient) TrustAdd(ctx context.Context, req TrustRequest) ([]PrincipalInfo, error) {
	resp, err := c.call(ctx, adminRequest{Op: "trust-add", Trust: &req})
	return resp.Infos, err
}

// TrustList implements TrustAdmin.
func (c *AdminClient) TrustList(ctx context.Context) ([]TrustInfo, error) {
	resp, err := c.call(ctx, adminRequest{Op: "trust-list"})
	return resp.Trusts, err
}

// TrustDelete implements TrustAdmin.
func (c *AdminClient) TrustDelete(ctx context.Context, realm, direction string) ([]string, error) {
	resp, err := c.call(ctx, adminRequest{Op: "trust-delete", Trust: &TrustRequest{Realm: realm, Direction: direction}})
	return resp.Names, err
}

// dispatchTrust serves the trust operations of the admin socket.
func dispatchTrust(ctx context.Context, a Admin, req *adminRequest) (adminResponse, error) {
	var resp adminResponse
	ta, ok := a.(TrustAdmin)
	if !ok {
		return resp, errors.New("kdc: this server does not manage trusts")
	}
	if req.Op != "trust-list" && req.Trust == nil {
		return resp, errors.New("kdc: trust request without a realm")
	}
	var err error
	switch req.Op {
	case "trust-add":
		resp.Infos, err = ta.TrustAdd(ctx, *req.Trust)
	case "trust-list":
		resp.Trusts, err = ta.TrustList(ctx)
	case "trust-delete":
		resp.Names, err = ta.TrustDelete(ctx, req.Trust.Realm, req.Trust.Direction)
	}
	return resp, err
}
