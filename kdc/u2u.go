package kdc

import (
	"context"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/kerbkit/kerbkit/principal"
)

// User-to-user (RFC 4120 §2.9.2, §3.3.3): with ENC-TKT-IN-SKEY the ticket is
// sealed in the session key of a TGT the server sent along (the additional
// ticket) instead of the server's long-term key, so a server without a keytab,
// a user, can accept it (MIT `kvno --u2u`).

// openKrbtgtTicket decrypts a TGT of this realm presented as an additional
// ticket; what names it in the errors.
func (k *KDC) openKrbtgtTicket(ctx context.Context, t messages.Ticket) (messages.EncTicketPart, *principal.Record, error) {
	var part messages.EncTicketPart
	name := wireName(t.SName, t.Realm)
	if !isTGSName(name) || name.Components[1] != k.realm || t.Realm != k.realm {
		return part, nil, kerr(errorcode.KDC_ERR_POLICY, "2ND_TKT_NOT_TGS", fmt.Errorf("second ticket for %s", name))
	}
	rec, err := k.store.Get(ctx, name)
	if err != nil {
		return part, nil, kerr(errorcode.KRB_ERR_GENERIC, "DB_ERROR", err)
	}
	key, ok := rec.FindKey(t.EncPart.EType, uint32(t.EncPart.KVNO))
	if !ok {
		return part, nil, kerr(errorcode.KRB_AP_ERR_BADKEYVER, "2ND_TKT_KEY_UNKNOWN", fmt.Errorf("no %s key of kvno %d", principal.EnctypeName(t.EncPart.EType), t.EncPart.KVNO))
	}
	if part, err = k.keys.OpenTicket(t, key.EncryptionKey()); err != nil {
		return part, nil, kerr(errorcode.KRB_AP_ERR_BAD_INTEGRITY, "2ND_TKT_DECRYPT", err)
	}
	return part, rec, nil
}

// checkU2U opens the second ticket and checks it names the requested server
// as its client (MIT do_tgs_req: KDC_ERR_SERVER_NOMATCH otherwise).
func (k *KDC) checkU2U(ctx context.Context, tr *tgsRequest) error {
	add := tr.req.Body.AdditionalTickets
	if len(add) == 0 {
		return kerr(errorcode.KDC_ERR_BADOPTION, "NO_2ND_TKT", nil)
	}
	second, _, err := k.openKrbtgtTicket(ctx, add[0])
	if err != nil {
		return err
	}
	if !tr.now.Before(second.EndTime) {
		return kerr(errorcode.KRB_AP_ERR_TKT_EXPIRED, "2ND_TKT_EXPIRED", nil)
	}
	owner := wireName(second.CName, second.CRealm)
	if second.CRealm != k.realm || !(owner.Equal(tr.sname) || (tr.server != nil && owner.Equal(tr.server.Name))) {
		return kerr(errorcode.KDC_ERR_SERVER_NOMATCH, "2ND_TKT_MISMATCH", fmt.Errorf("second ticket of %s for server %s", owner, tr.sname))
	}
	tr.deleg.u2u = true
	tr.deleg.second = second
	return nil
}
