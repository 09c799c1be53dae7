package kdc

import (
	"context"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/kerbkit/kerbkit/ticket"
)

// handleTGS runs the TGS exchange (RFC 4120 §3.3).
func (k *KDC) handleTGS(ctx context.Context, req *ticket.KDCRequest, out *outcome) ([]byte, error) {
	return nil, kerr(errorcode.KRB_ERR_GENERIC, "TGS_NOT_IMPLEMENTED", nil)
}
