package kdc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kerbkit/kerbkit/principal"
)

// PolicyAdmin manages password and lockout policies, unlocks principals and
// changes passwords with an administrator's override. LocalAdmin and
// AdminClient implement it; `kdc policy`, `kdc principal unlock` and `kdc
// principal passwd --ignore-policy` use it.
type PolicyAdmin interface {
	PolicyAdd(ctx context.Context, p principal.Policy) (principal.Policy, error)
	// PolicyModify applies the set fields of c.
	PolicyModify(ctx context.Context, name string, c PolicyChange) (principal.Policy, error)
	PolicyShow(ctx context.Context, name string) (principal.Policy, error)
	PolicyList(ctx context.Context) ([]string, error)
	PolicyDelete(ctx context.Context, name string) error
	// Unlock clears a principal's failure count and lockout.
	Unlock(ctx context.Context, name string) (PrincipalInfo, error)
	// SetPassword is ChangeKeys with the policy's password rules skipped
	// when ignorePolicy is set.
	SetPassword(ctx context.Context, name, password string, random, ignorePolicy bool) (PrincipalInfo, error)
}

// PolicyChange holds the fields `kdc policy modify` sets; nil stays.
type PolicyChange struct {
	MinLength       *int           `json:"min_length,omitempty"`
	MinClasses      *int           `json:"min_classes,omitempty"`
	History         *int           `json:"history,omitempty"`
	MaxLife         *time.Duration `json:"max_life,omitempty"`
	MaxFailures     *int           `json:"max_failures,omitempty"`
	FailureInterval *time.Duration `json:"failure_interval,omitempty"`
	LockoutDuration *time.Duration `json:"lockout_duration,omitempty"`
}

// Apply sets p's fields from c.
func (c PolicyChange) Apply(p *principal.Policy) {
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setD := func(dst *time.Duration, v *time.Duration) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.MinLength, c.MinLength)
	set(&p.MinClasses, c.MinClasses)
	set(&p.History, c.History)
	setD(&p.MaxLife, c.MaxLife)
	set(&p.MaxFailures, c.MaxFailures)
	setD(&p.FailureInterval, c.FailureInterval)
	setD(&p.LockoutDuration, c.LockoutDuration)
}

var (
	_ PolicyAdmin = (*LocalAdmin)(nil)
	_ PolicyAdmin = (*AdminClient)(nil)
)

func (a *LocalAdmin) policyStore() (principal.PolicyStore, error) {
	ps, ok := a.Store.(principal.PolicyStore)
	if !ok {
		return nil, errors.New("kdc: this store keeps no policies")
	}
	return ps, nil
}

// newPolicy is the policy a new principal gets (AddRequest.Policy).
func (a *LocalAdmin) newPolicy(ctx context.Context, req AddRequest) (*principal.Policy, error) {
	if req.NoPolicy {
		if req.Policy != "" {
			return nil, errors.New("kdc: give a policy or no policy, not both")
		}
		return nil, nil
	}
	ps, ok := a.Store.(principal.PolicyStore)
	if !ok {
		if req.Policy != "" {
			return nil, errors.New("kdc: this store keeps no policies")
		}
		return nil, nil
	}
	name := req.Policy
	if name == "" {
		name = principal.DefaultPolicyName
	}
	p, err := ps.GetPolicy(ctx, name)
	if errors.Is(err, principal.ErrNotFound) && req.Policy == "" {
		return nil, nil // no default policy in this realm
	}
	if err != nil {
		return nil, fmt.Errorf("kdc: %w", err)
	}
	return p, nil
}

// policyOfRecord returns r's policy; a policy that no longer exists is none.
func (a *LocalAdmin) policyOfRecord(ctx context.Context, r *principal.Record) (*principal.Policy, error) {
	if r.Policy == "" {
		return nil, nil
	}
	ps, ok := a.Store.(principal.PolicyStore)
	if !ok {
		return nil, nil
	}
	p, err := ps.GetPolicy(ctx, r.Policy)
	if errors.Is(err, principal.ErrNotFound) {
		return nil, nil
	}
	return p, err
}

// PolicyAdd implements PolicyAdmin.
func (a *LocalAdmin) PolicyAdd(ctx context.Context, p principal.Policy) (principal.Policy, error) {
	ps, err := a.policyStore()
	if err != nil {
		return p, err
	}
	if err := ps.CreatePolicy(ctx, &p); err != nil {
		return p, err
	}
	a.policyChanged()
	return p, nil
}

// PolicyModify implements PolicyAdmin.
func (a *LocalAdmin) PolicyModify(ctx context.Context, name string, c PolicyChange) (principal.Policy, error) {
	ps, err := a.policyStore()
	if err != nil {
		return principal.Policy{}, err
	}
	var out principal.Policy
	err = ps.UpdatePolicy(ctx, name, func(p *principal.Policy) error {
		c.Apply(p)
		out = *p
		return p.Validate()
	})
	a.policyChanged()
	return out, err
}

// PolicyShow implements PolicyAdmin.
func (a *LocalAdmin) PolicyShow(ctx context.Context, name string) (principal.Policy, error) {
	ps, err := a.policyStore()
	if err != nil {
		return principal.Policy{}, err
	}
	p, err := ps.GetPolicy(ctx, name)
	if err != nil {
		return principal.Policy{}, err
	}
	return *p, nil
}

// PolicyList implements PolicyAdmin.
func (a *LocalAdmin) PolicyList(ctx context.Context) ([]string, error) {
	ps, err := a.policyStore()
	if err != nil {
		return nil, err
	}
	return ps.ListPolicies(ctx)
}

// PolicyDelete implements PolicyAdmin.
func (a *LocalAdmin) PolicyDelete(ctx context.Context, name string) error {
	ps, err := a.policyStore()
	if err != nil {
		return err
	}
	err = ps.DeletePolicy(ctx, name)
	a.policyChanged()
	return err
}

func (a *LocalAdmin) policyChanged() {
	if a.PolicyChanged != nil {
		a.PolicyChanged()
	}
}

// Unlock implements PolicyAdmin.
func (a *LocalAdmin) Unlock(ctx context.Context, name string) (PrincipalInfo, error) {
	n, err := a.parse(name)
	if err != nil {
		return PrincipalInfo{}, err
	}
	var info PrincipalInfo
	err = a.Store.Update(ctx, n, func(r *principal.Record) error {
		r.Unlock()
		r.Modified = a.now().UTC()
		info = infoOf(r)
		return nil
	})
	return info, err
}

// checkPolicyExists is for ModifyRequest.Policy.
func (a *LocalAdmin) checkPolicyExists(ctx context.Context, name string) error {
	ps, err := a.policyStore()
	if err != nil {
		return err
	}
	if _, err := ps.GetPolicy(ctx, name); err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	return nil
}

// PolicyAdd implements PolicyAdmin.
func (c *AdminClient) PolicyAdd(ctx context.Context, p principal.Policy) (principal.Policy, error) {
	return policyResult(c.call(ctx, adminRequest{Op: "policy-add", Policy: &p}))
}

// PolicyModify implements PolicyAdmin.
func (c *AdminClient) PolicyModify(ctx context.Context, name string, ch PolicyChange) (principal.Policy, error) {
	return policyResult(c.call(ctx, adminRequest{Op: "policy-modify", Name: name, PolicyChange: &ch}))
}

// PolicyShow implements PolicyAdmin.
func (c *AdminClient) PolicyShow(ctx context.Context, name string) (principal.Policy, error) {
	return policyResult(c.call(ctx, adminRequest{Op: "policy-show", Name: name}))
}

// PolicyList implements PolicyAdmin.
func (c *AdminClient) PolicyList(ctx context.Context) ([]string, error) {
	resp, err := c.call(ctx, adminRequest{Op: "policy-list"})
	return resp.Names, err
}

// PolicyDelete implements PolicyAdmin.
func (c *AdminClient) PolicyDelete(ctx context.Context, name string) error {
	_, err := c.call(ctx, adminRequest{Op: "policy-delete", Name: name})
	return err
}

// Unlock implements PolicyAdmin.
func (c *AdminClient) Unlock(ctx context.Context, name string) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "unlock", Name: name}))
}

// SetPassword implements PolicyAdmin.
func (c *AdminClient) SetPassword(ctx context.Context, name, password string, random, ignorePolicy bool) (PrincipalInfo, error) {
	return infoResult(c.call(ctx, adminRequest{Op: "passwd", Name: name, Password: password, Random: random, IgnorePolicy: ignorePolicy}))
}

func policyResult(resp adminResponse, err error) (principal.Policy, error) {
	if err != nil || resp.Policy == nil {
		return principal.Policy{}, err
	}
	return *resp.Policy, nil
}

// dispatchPolicy answers the policy operations of the admin socket.
func dispatchPolicy(ctx context.Context, a Admin, req *adminRequest) (adminResponse, error) {
	var resp adminResponse
	pa, ok := a.(PolicyAdmin)
	if !ok {
		return resp, errors.New("kdc: this server does not manage policies")
	}
	var err error
	var p principal.Policy
	switch req.Op {
	case "policy-add":
		if req.Policy == nil {
			return resp, errors.New("kdc: policy-add without a policy")
		}
		p, err = pa.PolicyAdd(ctx, *req.Policy)
		resp.Policy = &p
	case "policy-modify":
		if req.PolicyChange == nil {
			return resp, errors.New("kdc: policy-modify without changes")
		}
		p, err = pa.PolicyModify(ctx, req.Name, *req.PolicyChange)
		resp.Policy = &p
	case "policy-show":
		p, err = pa.PolicyShow(ctx, req.Name)
		resp.Policy = &p
	case "policy-list":
		resp.Names, err = pa.PolicyList(ctx)
	case "policy-delete":
		err = pa.PolicyDelete(ctx, req.Name)
	case "unlock":
		var info PrincipalInfo
		info, err = pa.Unlock(ctx, req.Name)
		resp.Info = &info
	}
	return resp, err
}
