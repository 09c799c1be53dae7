package kdc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kerbkit/kerbkit/principal"
)

// NamesAdmin manages principal aliases and delegation settings. LocalAdmin and
// AdminClient implement it; `kdc principal alias` and `kdc principal modify`
// use it.
type NamesAdmin interface {
	// AliasAdd makes alias another name of the principal name.
	AliasAdd(ctx context.Context, name, alias string) (PrincipalInfo, error)
	// AliasDelete removes an alias and returns the principal it named.
	AliasDelete(ctx context.Context, alias string) (string, error)
	// AliasList returns "alias principal" pairs: name's aliases, or every
	// alias of the realm when name is empty.
	AliasList(ctx context.Context, name string) ([]AliasInfo, error)
	// Modify changes the delegation settings of a principal.
	Modify(ctx context.Context, name string, m ModifyRequest) (PrincipalInfo, error)
}

// AliasInfo is one alias and the principal it names.
type AliasInfo struct {
	Alias     string `json:"alias"`
	Principal string `json:"principal"`
}

// ModifyRequest changes delegation settings; nil fields stay as they are.
type ModifyRequest struct {
	OKAsDelegate       *bool `json:"ok_as_delegate,omitempty"`
	OKToAuthAsDelegate *bool `json:"ok_to_auth_as_delegate,omitempty"`
	// AddDelegateTo and DeleteDelegateTo edit the allowed-to-delegate-to
	// list (S4U2Proxy targets); ClearDelegateTo empties it first.
	AddDelegateTo    []string `json:"add_delegate_to,omitempty"`
	DeleteDelegateTo []string `json:"delete_delegate_to,omitempty"`
	ClearDelegateTo  bool     `json:"clear_delegate_to,omitempty"`
	// PasswordExpires, when set, is the new password expiry; the zero time
	// means never (MIT modprinc -pwexpire).
	PasswordExpires *time.Time `json:"password_expires,omitempty"`
	// Policy, when set, names the principal's policy; "" clears it.
	Policy *string `json:"policy,omitempty"`
	// RequiresFAST sets or clears Record.RequiresFAST (fast.go).
	RequiresFAST *bool `json:"requires_fast,omitempty"`
}

// MaxDelegateTo bounds a principal's allowed-to-delegate-to list.
const MaxDelegateTo = 64

var (
	_ NamesAdmin = (*LocalAdmin)(nil)
	_ NamesAdmin = (*AdminClient)(nil)
)

// AliasAdd implements NamesAdmin.
func (a *LocalAdmin) AliasAdd(ctx context.Context, name, alias string) (PrincipalInfo, error) {
	n, err := a.parse(name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	an, err := a.parse(alias)
	if err != nil {
		return PrincipalInfo{}, err
	}
	var info PrincipalInfo
	err = a.Store.Update(ctx, n, func(r *principal.Record) error {
		if err := r.AddAlias(an); err != nil {
			return err
		}
		r.Modified = a.now().UTC()
		info = infoOf(r)
		return nil
	})
	if err != nil {
		return PrincipalInfo{}, fmt.Errorf("kdc: alias %s of %s: %w", an, n, err)
	}
	return info, nil
}

// AliasDelete implements NamesAdmin.
func (a *LocalAdmin) AliasDelete(ctx context.Context, alias string) (string, error) {
	an, err := a.parse(alias)
	if err != nil {
		return "", err
	}
	rec, err := a.Store.Get(ctx, an)
	if err != nil {
		return "", fmt.Errorf("kdc: alias %s: %w", an, err)
	}
	if rec.Name.Equal(an) {
		return "", fmt.Errorf("kdc: %s is a principal, not an alias (delete it with `kdc principal delete`)", an)
	}
	err = a.Store.Update(ctx, rec.Name, func(r *principal.Record) error {
		r.Modified = a.now().UTC()
		return r.RemoveAlias(an)
	})
	if err != nil {
		return "", fmt.Errorf("kdc: alias %s: %w", an, err)
	}
	return rec.Name.String(), nil
}

// AliasList implements NamesAdmin.
func (a *LocalAdmin) AliasList(ctx context.Context, name string) ([]AliasInfo, error) {
	var names []principal.Name
	if name != "" {
		n, err := a.parse(name)
		if err != nil {
			return nil, err
		}
		names = []principal.Name{n}
	} else {
		var err error
		if names, err = a.Store.List(ctx); err != nil {
			return nil, err
		}
	}
	var out []AliasInfo
	for _, n := range names {
		rec, err := a.Store.Get(ctx, n)
		if err != nil {
			if name == "" && errors.Is(err, principal.ErrNotFound) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		for _, al := range rec.Aliases {
			out = append(out, AliasInfo{Alias: al.String(), Principal: rec.Name.String()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out, nil
}

// Modify implements NamesAdmin.
func (a *LocalAdmin) Modify(ctx context.Context, name string, m ModifyRequest) (PrincipalInfo, error) {
	n, err := a.parse(name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	var add, del []principal.Name
	for _, s := range m.AddDelegateTo {
		t, err := a.parse(s)
		if err != nil {
			return PrincipalInfo{}, err
		}
		add = append(add, t)
	}
	for _, s := range m.DeleteDelegateTo {
		t, err := a.parse(s)
		if err != nil {
			return PrincipalInfo{}, err
		}
		del = append(del, t)
	}
	var info PrincipalInfo
	if m.Policy != nil && *m.Policy != "" {
		if err := a.checkPolicyExists(ctx, *m.Policy); err != nil {
			return PrincipalInfo{}, err
		}
	}
	err = a.Store.Update(ctx, n, func(r *principal.Record) error {
		if m.PasswordExpires != nil {
			r.PasswordExpires = m.PasswordExpires.UTC()
		}
		if m.Policy != nil {
			r.Policy = *m.Policy
		}
		d := &r.Delegation
		if m.RequiresFAST != nil {
			r.RequiresFAST = *m.RequiresFAST
		}
		if m.OKAsDelegate != nil {
			d.OKAsDelegate = *m.OKAsDelegate
		}
		if m.OKToAuthAsDelegate != nil {
			d.OKToAuthAsDelegate = *m.OKToAuthAsDelegate
		}
		if m.ClearDelegateTo {
			d.AllowedTo = nil
		}
		for _, t := range del {
			if !r.MayDelegateTo(t) {
				return fmt.Errorf("kdc: %s may not delegate to %s already: %w", n, t, principal.ErrNotFound)
			}
			kept := d.AllowedTo[:0:0]
			for _, x := range d.AllowedTo {
				if !x.Equal(t) {
					kept = append(kept, x)
				}
			}
			d.AllowedTo = kept
		}
		for _, t := range add {
			if !r.MayDelegateTo(t) {
				d.AllowedTo = append(d.AllowedTo, t)
			}
		}
		if len(d.AllowedTo) > MaxDelegateTo {
			return fmt.Errorf("kdc: %s: %d delegation targets (at most %d)", n, len(d.AllowedTo), MaxDelegateTo)
		}
		r.Modified = a.now().UTC()
		info = infoOf(r)
		return nil
	})
	return info, err
}

// AliasAdd implements NamesAdmin.
func (c *AdminClient) AliasAdd(ctx context.Context, name, alias string) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "alias-add", Name: name, Alias: alias}))
}

// AliasDelete implements NamesAdmin.
func (c *AdminClient) AliasDelete(ctx context.Context, alias string) (string, error) {
	resp, err := c.call(ctx, adminRequest{Op: "alias-delete", Alias: alias})
	if len(resp.Names) == 1 {
		return resp.Names[0], err
	}
	return "", err
}

// AliasList implements NamesAdmin.
func (c *AdminClient) AliasList(ctx context.Context, name string) ([]AliasInfo, error) {
	resp, err := c.call(ctx, adminRequest{Op: "alias-list", Name: name})
	return resp.Aliases, err
}

// Modify implements NamesAdmin.
func (c *AdminClient) Modify(ctx context.Context, name string, m ModifyRequest) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "modify", Name: name, Modify: &m}))
}

// dispatchNames serves the alias and modify operations of the admin socket.
func dispatchNames(ctx context.Context, a Admin, req *adminRequest) (adminResponse, error) {
	var resp adminResponse
	na, ok := a.(NamesAdmin)
	if !ok {
		return resp, errors.New("kdc: this server does not manage aliases")
	}
	var err error
	var info PrincipalInfo
	switch req.Op {
	case "alias-add":
		info, err = na.AliasAdd(ctx, req.Name, req.Alias)
		resp.Info = &info
	case "alias-delete":
		var canon string
		canon, err = na.AliasDelete(ctx, req.Alias)
		resp.Names = []string{canon}
	case "alias-list":
		resp.Aliases, err = na.AliasList(ctx, req.Name)
	case "modify":
		if req.Modify == nil {
			return resp, errors.New("kdc: modify without changes")
		}
		info, err = na.Modify(ctx, req.Name, *req.Modify)
		resp.Info = &info
	}
	return resp, err
}
