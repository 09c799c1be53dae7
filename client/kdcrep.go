package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
)

// What the AS and TGS exchanges share when they send a request and verify the reply: AS-REP and TGS-REP are
// both KDC-REP [RFC 4120 §5.4.2], under APPLICATION 11 and 13.

// kdcExchange sends req, the request named reqName ("AS-REQ", "TGS-REQ"), to realm's KDCs (traced by exchange)
// and notes when the answer arrived. A KRB-ERROR is returned decoded as ke; the reply named repName ("AS-REP",
// "TGS-REP") is returned as is for the caller to verify; any other answer is an error.
func (c *Client) kdcExchange(ctx context.Context, realm, reqName, repName string, round int, req []byte) (
	rep *Reply, received time.Time, ke *messages.KRBError, err error) {
	rep, err = c.exchange(ctx, realm, reqName, round, req)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	received = c.clock()
	switch messageName(rep.Data) {
	case "KRB-ERROR":
		if ke, err = decodeKRBError(rep.Data); err != nil {
			return nil, time.Time{}, nil, err
		}
		return rep, received, ke, nil
	case repName:
		return rep, received, nil, nil
	}
	return nil, time.Time{}, nil, fmt.Errorf("client: KDC %s answered the %s with %s", rep.KDC, reqName, messageName(rep.Data))
}

// decodeKDCRep decodes the reply named name ("AS-REP" under APPLICATION tag 11, "TGS-REP" under 13) and its
// ticket, and checks pvno, msg-type and that the reply's cname/crealm are client's.
func decodeKDCRep(b []byte, name string, tag, msgType int, client principal.Name) (*ticket.KDCRepWire, *messages.Ticket, error) {
	var rep ticket.KDCRepWire
	if err := unmarshalSafe(func() error {
		rest, err := asn1.UnmarshalWithParams(b, &rep, fmt.Sprintf("application,explicit,tag:%d", tag))
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("%d trailing bytes", len(rest))
		}
		return err
	}); err != nil {
		return nil, nil, fmt.Errorf("client: undecodable %s: %w", name, err)
	}
	if rep.PVNO != iana.PVNO || rep.MsgType != msgType {
		return nil, nil, fmt.Errorf("client: %s with pvno %d msg-type %d: %w", name, rep.PVNO, rep.MsgType, ErrReplyMismatch)
	}
	if rep.CRealm != client.Realm || !rep.CName.Equal(client.PrincipalName()) {
		return nil, nil, fmt.Errorf("client: %s is for %s, not %s: %w",
			name, principal.FromPrincipalName(rep.CName, rep.CRealm), client, ErrReplyMismatch)
	}
	var tkt messages.Ticket
	if err := unmarshalSafe(func() error { return tkt.Unmarshal(rep.Ticket.Bytes) }); err != nil {
		return nil, nil, fmt.Errorf("client: undecodable ticket in %s: %w", name, err)
	}
	return &rep, &tkt, nil
}

// replyMismatch returns the constructor of the ErrReplyMismatch errors about the reply named name.
func replyMismatch(name string) func(format string, args ...any) error {
	return func(format string, args ...any) error {
		return fmt.Errorf("client: "+name+" "+format+": %w", append(args, ErrReplyMismatch)...)
	}
}

// replyStart is the starttime of the ticket a reply enc-part describes: its authtime when starttime is absent
// [RFC 4120 §5.4.2].
func replyStart(enc *messages.EncKDCRepPart) time.Time {
	if enc.StartTime.IsZero() {
		return enc.AuthTime
	}
	return enc.StartTime
}

// checkReplyEndTime checks that the enc-part's endtime is no later than the requested till and after the
// starttime.
func checkReplyEndTime(enc *messages.EncKDCRepPart, till time.Time, mismatch func(string, ...any) error) error {
	if enc.EndTime.After(till) {
		return mismatch("endtime %v is after the requested till %v", enc.EndTime.UTC(), till)
	}
	if start := replyStart(enc); !enc.EndTime.After(start) {
		return mismatch("endtime %v is not after starttime %v", enc.EndTime.UTC(), start.UTC())
	}
	return nil
}

// checkReplyKey checks that the enc-part carries a session key of a supported enctype.
func checkReplyKey(enc *messages.EncKDCRepPart, mismatch func(string, ...any) error) error {
	if len(enc.Key.KeyValue) == 0 {
		return mismatch("enc-part has an empty session key")
	}
	if _, err := crypto.GetEtype(enc.Key.KeyType); err != nil {
		return mismatch("session key enctype %d is not supported", enc.Key.KeyType)
	}
	return nil
}

// replyCredential builds the credential of a verified reply for client: times, flags, key and addresses from
// the enc-part, the ticket as the KDC encoded it, and no renew-till unless the ticket is renewable.
func replyCredential(client principal.Name, enc *messages.EncKDCRepPart, rawTicket []byte) ticket.Credential {
	cred := ticket.Credential{
		Client:    client,
		Server:    principal.FromPrincipalName(enc.SName, enc.SRealm),
		Key:       enc.Key,
		AuthTime:  enc.AuthTime,
		StartTime: replyStart(enc),
		EndTime:   enc.EndTime,
		RenewTill: enc.RenewTill,
		Flags:     ticket.FlagsFromBitString(enc.Flags),
		Addresses: enc.CAddr,
		Ticket:    slices.Clone(rawTicket),
	}
	if cred.Flags&ticket.FlagRenewable == 0 {
		cred.RenewTill = time.Time{}
	}
	return cred
}
