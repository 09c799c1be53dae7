package kdc

import (
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/kerbkit/kerbkit/ticket/der"
)

// PA-ENCRYPTED-CHALLENGE (RFC 6113 §5.4.6), the pre-authentication of an
// armored AS exchange: the client encrypts a PA-ENC-TS-ENC in the client
// challenge key, KRB-FX-CF2(armor key, client long-term key,
// "clientchallengearmor", "challengelongterm"), usage 54; the KDC proves
// itself in the reply with its own timestamp in the KDC challenge key,
// KRB-FX-CF2(armor key, client key, "kdcchallengearmor",
// "challengelongterm"), usage 55. Unlike PA-ENC-TIMESTAMP, nobody without the
// armor key can run an offline password guess on what is sent.

// checkEncChallenge verifies PA-ENCRYPTED-CHALLENGE v of an armored request.
func (k *KDC) checkEncChallenge(as *asRequest, v []byte) error {
	var ed types.EncryptedData
	if err := der.DecodeEncryptedData(v, &ed); err != nil {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", fmt.Errorf("PA-ENCRYPTED-CHALLENGE: %w", err))
	}
	key, ok := as.client.FindKey(ed.EType, 0)
	if !ok {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", fmt.Errorf("no %s key", principal.EnctypeName(ed.EType)))
	}
	fs := as.fast
	ck, err := ticket.CF2(fs.armorKey, key.EncryptionKey(), "clientchallengearmor", "challengelongterm")
	if err != nil {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", err)
	}
	plain, err := fs.keys.Decrypt(ed, ck, usageEncChallengeCli)
	clear(ck.KeyValue)
	if err != nil {
		return k.preauthError(as, errorcode.KDC_ERR_PREAUTH_FAILED, "PREAUTH_FAILED", errors.New("encrypted challenge does not decrypt (wrong password?)"))
	}
	if err := k.checkPATimestamp(as, plain); err != nil {
		return err
	}
	kc, err := ticket.CF2(fs.armorKey, key.EncryptionKey(), "kdcchallengearmor", "challengelongterm")
	if err != nil {
		return kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	fs.kdcChallenge = &kc
	as.preauthed = true
	return nil
}

// kdcChallengePA is the KDC's half of the challenge for the armored reply:
// the KDC's time in the KDC challenge key (usage 55).
func (k *KDC) kdcChallengePA(fs *fastState) (types.PAData, error) {
	now := k.now().UTC()
	b, err := der.AppendPAEncTSEnc(nil, now.Truncate(time.Second), now.Nanosecond()/1000)
	if err != nil {
		return types.PAData{}, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	ed, err := fs.keys.Encrypt(*fs.kdcChallenge, usageEncChallengeKDC, b, 0)
	if err != nil {
		return types.PAData{}, kerr(errorcode.KRB_ERR_GENERIC, "ENCODING_ERROR", err)
	}
	return types.PAData{PADataType: paEncryptedChallenge, PADataValue: der.AppendEncryptedData(nil, &ed)}, nil
}
