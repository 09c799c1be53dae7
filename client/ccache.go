package client

import (
	"context"
	"fmt"
	"os"

	"github.com/kerbkit/kerbkit/ticket"
)

// CCache returns a new credential cache holding the result's ticket as its only credential, with the result's
// client as the default principal and the KDC time offset in the header: what kinit stores after a login.
func (r *ASResult) CCache() *ticket.CCache {
	return &ticket.CCache{
		Version:          4,
		KDCOffset:        r.KDCOffset,
		DefaultPrincipal: r.Credential.Client,
		Credentials:      []ticket.Credential{r.Credential},
	}
}

// LoginToCCache runs the AS exchange (Login) and stores the new ticket in the credential cache named ccache,
// replacing whatever the cache held, as kinit does. ccache is a name as in KRB5CCNAME (ticket.ParseCCacheName):
// "FILE:/path" or a bare path, "DIR:dir" (the collection's primary cache) or "DIR::dir/tktX"; the empty name
// is MIT's default for the user, FILE:/tmp/krb5cc_<uid>. The file is written atomically with mode 0600; a
// failed login leaves the cache as it was.
//
//	c, _ := client.New(cfg)
//	res, err := c.LoginToCCache(ctx, client.ASRequest{Client: alice, Secret: client.PasswordSecret(pw)}, "FILE:/tmp/cc")
func (c *Client) LoginToCCache(ctx context.Context, r ASRequest, ccache string) (*ASResult, error) {
	name, err := ticket.ParseCCacheName(ccache, currentUID())
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	res, err := c.Login(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := StoreCCache(name, res.CCache()); err != nil {
		return res, err
	}
	return res, nil
}

// StoreCCache writes cc to the cache file of name, creating the directory of a DIR: collection if needed.
func StoreCCache(name ticket.CCacheName, cc *ticket.CCache) error {
	if err := ticket.PrepareCCacheDir(name); err != nil {
		return fmt.Errorf("client: storing credentials in %s: %w", name, err)
	}
	if err := ticket.WriteCCacheFile(name.Path, cc); err != nil {
		return fmt.Errorf("client: storing credentials in %s: %w", name, err)
	}
	return nil
}

// currentUID is the user id of MIT's default cache name.
func currentUID() int { return os.Getuid() }
