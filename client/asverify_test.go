package client

// AS exchange against an in-test fake KDC that builds its replies with gokrb5, so that each check of
// verifyASRep and handleASError can be shown to fire.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/etype"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

const (
	fakeRealm    = "FAKE.TEST"
	fakePassword = "fakepw"
)

// fakeReply holds what the fake AS builds, for a test to tamper with before encoding.
type fakeReply struct {
	rep    messages.ASRep
	enc    messages.EncKDCRepPart
	encTag int // 25 or 26
	key    types.EncryptionKey
}

// fakeAS answers AS-REQs for user@FAKE.TEST (key from fakePassword, default salt, aes256). mutate may change
// the reply; answer may replace it entirely (return nil to build the normal AS-REP).
type fakeAS struct {
	t      *testing.T
	mu     sync.Mutex
	reqs   []messages.ASReq
	mutate func(req *messages.ASReq, r *fakeReply)
	answer func(req *messages.ASReq, round int) []byte
}

// requests returns a copy of the AS-REQs received so far.
func (f *fakeAS) requests() []messages.ASReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]messages.ASReq(nil), f.reqs...)
}

func (f *fakeAS) handle(b []byte) []byte {
	var req messages.ASReq
	if err := req.Unmarshal(b); err != nil {
		f.t.Errorf("fake KDC: bad AS-REQ: %v", err)
		return nil
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	round := len(f.reqs)
	f.mu.Unlock()
	if f.answer != nil {
		if out := f.answer(&req, round); out != nil {
			return out
		}
	}
	return f.asRep(&req)
}

func (f *fakeAS) asRep(req *messages.ASReq) []byte {
	t := f.t
	cname := req.ReqBody.CName
	key, _, err := crypto.GetKeyFromPassword(fakePassword, cname, fakeRealm, etypeID.AES256_CTS_HMAC_SHA1_96, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	fl := types.NewKrbFlags()
	types.SetFlag(&fl, flags.Initial)
	sk, err := types.GenerateEncryptionKey(mustEtype(t, etypeID.AES256_CTS_HMAC_SHA1_96))
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeReply{
		encTag: 25,
		key:    key,
		enc: messages.EncKDCRepPart{
			Key:      sk,
			LastReqs: []messages.LastReq{},
			Nonce:    req.ReqBody.Nonce,
			Flags:    fl,
			AuthTime: now,
			EndTime:  now.Add(time.Hour),
			SRealm:   req.ReqBody.Realm,
			SName:    req.ReqBody.SName,
		},
		rep: messages.ASRep{KDCRepFields: messages.KDCRepFields{
			PVNO: iana.PVNO, MsgType: msgtype.KRB_AS_REP, CRealm: req.ReqBody.Realm, CName: cname,
			Ticket: messages.Ticket{TktVNO: iana.PVNO, Realm: req.ReqBody.Realm, SName: req.ReqBody.SName,
				EncPart: types.EncryptedData{EType: etypeID.AES256_CTS_HMAC_SHA1_96, KVNO: 1, Cipher: []byte("opaque ticket cipher")}},
		}},
	}
	if f.mutate != nil {
		f.mutate(req, r)
	}
	plain, err := asn1.Marshal(r.enc)
	if err != nil {
		t.Fatal(err)
	}
	plain = asn1tools.AddASNAppTag(plain, r.encTag)
	r.rep.EncPart, err = crypto.GetEncryptedData(plain, r.key, keyusage.AS_REP_ENCPART, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.rep.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEtype(t *testing.T, id int32) etype.EType {
	t.Helper()
	e, err := crypto.GetEtype(id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// runFake logs in user@FAKE.TEST against a fake AS and returns the result.
func runFake(t *testing.T, f *fakeAS, mod func(*Config)) (*ASResult, error) {
	t.Helper()
	f.t = t
	kdc := startFakeKDC(t, f.handle, nil)
	// Generous: the fake KDC derives keys from the password per request, which
	// takes seconds under -race on a loaded machine.
	cfg := testConfig(10*time.Second, kdc.addr)
	cfg.Realm = fakeRealm
	cfg.KDCs = map[string][]string{fakeRealm: {kdc.addr}}
	cfg.Etypes = []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96}
	if mod != nil {
		mod(cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ParsePrincipal("user", fakeRealm)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.Login(ctx, ASRequest{Client: p, Secret: PasswordSecret(fakePassword)})
}

func TestASReplyChecks(t *testing.T) {
	other := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", "EVIL"}}
	for _, tc := range []struct {
		name   string
		mutate func(*messages.ASReq, *fakeReply)
		ok     bool
	}{
		{"baseline", nil, true},
		{"EncTGSRepPart tag 26", func(_ *messages.ASReq, r *fakeReply) { r.encTag = 26 }, true},
		{"starttime absent uses authtime", func(_ *messages.ASReq, r *fakeReply) { r.enc.StartTime = time.Time{} }, true},
		{"nonce", func(_ *messages.ASReq, r *fakeReply) { r.enc.Nonce++ }, false},
		{"enc-part sname", func(_ *messages.ASReq, r *fakeReply) { r.enc.SName = other }, false},
		{"enc-part srealm", func(_ *messages.ASReq, r *fakeReply) { r.enc.SRealm = "EVIL" }, false},
		{"ticket sname", func(_ *messages.ASReq, r *fakeReply) { r.rep.Ticket.SName = other }, false},
		{"cname", func(_ *messages.ASReq, r *fakeReply) {
			r.rep.CName = types.PrincipalName{NameType: 1, NameString: []string{"mallory"}}
		}, false},
		{"crealm", func(_ *messages.ASReq, r *fakeReply) { r.rep.CRealm = "EVIL" }, false},
		{"endtime after till", func(req *messages.ASReq, r *fakeReply) { r.enc.EndTime = req.ReqBody.Till.Add(time.Hour) }, false},
		{"endtime before start", func(_ *messages.ASReq, r *fakeReply) { r.enc.EndTime = r.enc.AuthTime.Add(-time.Hour) }, false},
		{"renew-till beyond till via renewable-ok", func(req *messages.ASReq, r *fakeReply) {
			types.SetFlag(&r.enc.Flags, flags.Renewable)
			r.enc.RenewTill = req.ReqBody.Till.Add(time.Hour)
		}, false},
		{"renew-till at till via renewable-ok", func(req *messages.ASReq, r *fakeReply) {
			types.SetFlag(&r.enc.Flags, flags.Renewable)
			r.enc.RenewTill = req.ReqBody.Till
		}, true},
		{"etype not requested", func(_ *messages.ASReq, r *fakeReply) {
			r.key = types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA256_128, KeyValue: make([]byte, 16)}
		}, false},
		// RFC 6806 §11: the request asked for PA-REQ-ENC-PA-REP.
		{"enc-pa-rep with the checksum over the request", func(req *messages.ASReq, r *fakeReply) {
			encPARep(t, req, r, nil, 16, true)
		}, true},
		{"enc-pa-rep without the checksum", func(req *messages.ASReq, r *fakeReply) {
			types.SetFlag(&r.enc.Flags, flags.EncPARep)
		}, false},
		{"enc-pa-rep with the checksum over another request", func(req *messages.ASReq, r *fakeReply) {
			encPARep(t, req, r, func(q *messages.ASReq) { q.ReqBody.EType = []int32{etypeID.AES128_CTS_HMAC_SHA1_96} }, 16, true)
		}, false},
		{"enc-pa-rep with a checksum of another type", func(req *messages.ASReq, r *fakeReply) {
			encPARep(t, req, r, nil, 15, true)
		}, false},
		{"a checksum without enc-pa-rep is not checked", func(req *messages.ASReq, r *fakeReply) {
			encPARep(t, req, r, func(q *messages.ASReq) { q.ReqBody.Nonce++ }, 16, false)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runFake(t, &fakeAS{mutate: tc.mutate}, nil)
			if tc.ok {
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				if !res.Credential.StartTime.Equal(res.Credential.AuthTime) && tc.name == "starttime absent uses authtime" {
					t.Errorf("starttime %v authtime %v", res.Credential.StartTime, res.Credential.AuthTime)
				}
				var tkt messages.Ticket
				if err := tkt.Unmarshal(res.Credential.Ticket); err != nil || string(tkt.EncPart.Cipher) != "opaque ticket cipher" {
					t.Errorf("raw ticket not kept: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrReplyMismatch) {
				t.Fatalf("err = %v, want ErrReplyMismatch", err)
			}
		})
	}
}

// encPARep puts into the fake reply the KDC's PA-REQ-ENC-PA-REP: a checksum of type ctype in the reply key, key
// usage 56, over req as the client encoded it (after change, if any), and the flag enc-pa-rep if flag.
func encPARep(t *testing.T, req *messages.ASReq, r *fakeReply, change func(*messages.ASReq), ctype int32, flag bool) {
	t.Helper()
	q := *req
	if change != nil {
		change(&q)
	}
	raw, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	et, err := crypto.GetChksumEtype(ctype)
	if err != nil {
		t.Fatal(err)
	}
	key := r.key
	if ctype != 16 { // a checksum of aes128's type needs a key of that size
		key = types.EncryptionKey{KeyType: etypeID.AES128_CTS_HMAC_SHA1_96, KeyValue: r.key.KeyValue[:16]}
	}
	sum, err := et.GetChecksumHash(key.KeyValue, raw, keyusage.KEY_USAGE_AS_REQ)
	if err != nil {
		t.Fatal(err)
	}
	v, err := asn1.Marshal(types.PAReqEncPARep{ChksumType: ctype, Chksum: sum})
	if err != nil {
		t.Fatal(err)
	}
	r.enc.EncPAData = types.PADataSequence{{PADataType: patype.PA_REQ_ENC_PA_REP, PADataValue: v}, {PADataType: patype.PA_FX_FAST}}
	if flag {
		types.SetFlag(&r.enc.Flags, flags.EncPARep)
	}
}

func TestASReplyWrongKey(t *testing.T) {
	_, err := runFake(t, &fakeAS{mutate: func(_ *messages.ASReq, r *fakeReply) {
		r.key = types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	}}, nil)
	var ke *KDCError
	if !errors.As(err, &ke) || !ke.Local || ke.Code != errorcode.KRB_AP_ERR_BAD_INTEGRITY || ke.Text() != "Password incorrect" {
		t.Fatalf("err = %v", err)
	}
}

func TestASGarbageReplies(t *testing.T) {
	for name, b := range map[string][]byte{
		"not kerberos":      []byte("hello"),
		"truncated AS-REP":  {0x6b, 0x82, 0x01, 0x00, 0x30},
		"truncated error":   {0x7e, 0x05, 0x30, 0x03, 0xa0, 0x01},
		"AS-REP wrong type": {0x6b, 0x03, 0x30, 0x01, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runFake(t, &fakeAS{answer: func(*messages.ASReq, int) []byte { return b }}, nil)
			if err == nil || !strings.HasPrefix(err.Error(), "client: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// preauthError builds KDC_ERR_PREAUTH_REQUIRED with the given METHOD-DATA (nil: no e-data) and stime.
func preauthError(t *testing.T, md types.PADataSequence, stime time.Time) []byte {
	t.Helper()
	e := messages.NewKRBError(types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", fakeRealm}}, fakeRealm,
		errorcode.KDC_ERR_PREAUTH_REQUIRED, "NEEDED_PREAUTH")
	e.STime = stime.UTC().Truncate(time.Second)
	e.Susec = 0
	if md != nil {
		b, err := asn1.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		e.EData = b
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func etypeInfo2(t *testing.T, entries ...types.ETypeInfo2Entry) types.PAData {
	t.Helper()
	b, err := asn1.Marshal(types.ETypeInfo2(entries))
	if err != nil {
		t.Fatal(err)
	}
	return types.PAData{PADataType: patype.PA_ETYPE_INFO2, PADataValue: b}
}

func TestASPreauth(t *testing.T) {
	encTS := types.PAData{PADataType: patype.PA_ENC_TIMESTAMP}
	cookie := types.PAData{PADataType: patype.PA_FX_COOKIE, PADataValue: []byte("MIT")}

	t.Run("enc-timestamp with kdc offset", func(t *testing.T) {
		kdcSkew := 30 * time.Minute
		f := &fakeAS{}
		var gotTS time.Time
		f.answer = func(req *messages.ASReq, round int) []byte {
			if round == 1 {
				if len(req.PAData) != 1 || req.PAData[0].PADataType != patype.PA_REQ_ENC_PA_REP || len(req.PAData[0].PADataValue) != 0 {
					t.Errorf("first AS-REQ carries padata %v, want only an empty PA-REQ-ENC-PA-REP", padataTypes(req.PAData))
				}
				return preauthError(t, types.PADataSequence{etypeInfo2(t, types.ETypeInfo2Entry{EType: 18}), encTS, cookie},
					time.Now().Add(kdcSkew))
			}
			if len(req.PAData) != 3 || req.PAData[0].PADataType != patype.PA_FX_COOKIE ||
				string(req.PAData[0].PADataValue) != "MIT" || req.PAData[1].PADataType != patype.PA_ENC_TIMESTAMP ||
				req.PAData[2].PADataType != patype.PA_REQ_ENC_PA_REP {
				t.Errorf("second AS-REQ padata %v", padataTypes(req.PAData))
				return nil
			}
			key, _, _ := crypto.GetKeyFromPassword(fakePassword, req.ReqBody.CName, fakeRealm, 18, nil)
			var ed types.EncryptedData
			if err := ed.Unmarshal(req.PAData[1].PADataValue); err != nil {
				t.Errorf("PA-ENC-TIMESTAMP: %v", err)
				return nil
			}
			plain, err := crypto.DecryptEncPart(ed, key, keyusage.AS_REQ_PA_ENC_TIMESTAMP)
			if err != nil {
				t.Errorf("PA-ENC-TIMESTAMP does not decrypt with usage 1: %v", err)
				return nil
			}
			var ts types.PAEncTSEnc
			if _, err := asn1.Unmarshal(plain, &ts); err != nil {
				t.Errorf("PA-ENC-TS-ENC: %v", err)
			}
			gotTS = ts.PATimestamp
			return nil
		}
		res, err := runFake(t, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := gotTS.Sub(time.Now().Add(kdcSkew)); d < -3*time.Second || d > 3*time.Second {
			t.Errorf("timestamp %v is not on the KDC's clock (off by %v)", gotTS, d)
		}
		if len(f.requests()) != 2 || f.requests()[0].ReqBody.Nonce == f.requests()[1].ReqBody.Nonce {
			t.Errorf("%d requests; nonces must differ per request", len(f.requests()))
		}
		// The till of the second request is on the KDC clock too.
		if d := f.requests()[1].ReqBody.Till.Sub(time.Now().Add(kdcSkew + DefaultTicketLifetime)); d < -3*time.Second || d > 3*time.Second {
			t.Errorf("till %v off by %v", f.requests()[1].ReqBody.Till, d)
		}
		if !res.Preauthenticated {
			t.Error("not preauthenticated")
		}
		opts := f.requests()[0].ReqBody.KDCOptions
		if !types.IsFlagSet(&opts, flags.RenewableOK) || types.IsFlagSet(&opts, flags.Renewable) || types.IsFlagSet(&opts, flags.Forwardable) {
			t.Errorf("kdc-options %x", opts.Bytes)
		}
	})

	t.Run("options", func(t *testing.T) {
		f := &fakeAS{}
		_, err := runFake(t, f, func(c *Config) {
			c.Forwardable, c.Proxiable, c.RenewLifetime, c.TicketLifetime = true, true, 48*time.Hour, 2*time.Hour
		})
		if err != nil {
			t.Fatal(err)
		}
		b := f.requests()[0].ReqBody
		for _, fl := range []int{flags.Forwardable, flags.Proxiable, flags.Renewable} {
			if !types.IsFlagSet(&b.KDCOptions, fl) {
				t.Errorf("kdc-option %d not set", fl)
			}
		}
		if types.IsFlagSet(&b.KDCOptions, flags.RenewableOK) {
			t.Error("renewable-ok set together with renewable")
		}
		if d := b.RTime.Sub(b.Till); d < 46*time.Hour-time.Second || d > 46*time.Hour+time.Second {
			t.Errorf("rtime - till = %v", d)
		}
		if len(b.EType) != 2 || b.EType[0] != 18 || b.EType[1] != 17 || len(b.Addresses) != 0 {
			t.Errorf("etypes %v addresses %v", b.EType, b.Addresses)
		}
		if b.CName.NameString[0] != "user" || b.SName.NameString[0] != "krbtgt" || b.SName.NameString[1] != fakeRealm {
			t.Errorf("cname %v sname %v", b.CName, b.SName)
		}
	})

	t.Run("no e-data", func(t *testing.T) {
		f := &fakeAS{answer: func(*messages.ASReq, int) []byte { return preauthError(t, nil, time.Now()) }}
		_, err := runFake(t, f, nil)
		var ke *KDCError
		if !errors.As(err, &ke) || ke.Code != errorcode.KDC_ERR_PREAUTH_REQUIRED || len(f.requests()) != 1 {
			t.Fatalf("err = %v after %d requests", err, len(f.requests()))
		}
	})

	t.Run("no enc-timestamp offered", func(t *testing.T) {
		f := &fakeAS{answer: func(*messages.ASReq, int) []byte {
			return preauthError(t, types.PADataSequence{etypeInfo2(t, types.ETypeInfo2Entry{EType: 18})}, time.Now())
		}}
		_, err := runFake(t, f, nil)
		if !IsCode(err, errorcode.KDC_ERR_PREAUTH_REQUIRED) || len(f.requests()) != 1 {
			t.Fatalf("err = %v after %d requests", err, len(f.requests()))
		}
	})

	t.Run("preauth required forever", func(t *testing.T) {
		f := &fakeAS{answer: func(*messages.ASReq, int) []byte {
			return preauthError(t, types.PADataSequence{etypeInfo2(t, types.ETypeInfo2Entry{EType: 18}), encTS}, time.Now())
		}}
		_, err := runFake(t, f, nil)
		if !IsCode(err, errorcode.KDC_ERR_PREAUTH_REQUIRED) || len(f.requests()) != 2 {
			t.Fatalf("err = %v after %d requests", err, len(f.requests()))
		}
	})

	t.Run("etype-info2 with salt and params", func(t *testing.T) {
		// The KDC names aes128 with salt "othersalt" and 4097 iterations: the key must be derived exactly so.
		salt, params := "othersalt", []byte{0, 0, 0x10, 0x01}
		f := &fakeAS{}
		f.answer = func(req *messages.ASReq, round int) []byte {
			if round == 1 {
				return preauthError(t, types.PADataSequence{encTS,
					etypeInfo2(t, types.ETypeInfo2Entry{EType: 23}, types.ETypeInfo2Entry{EType: 17, Salt: salt, S2KParams: params})}, time.Now())
			}
			return nil
		}
		f.mutate = func(_ *messages.ASReq, r *fakeReply) {
			et := mustEtype(t, 17)
			kv, err := et.StringToKey(fakePassword, salt, "00001001")
			if err != nil {
				t.Fatal(err)
			}
			r.key = types.EncryptionKey{KeyType: 17, KeyValue: kv}
		}
		res, err := runFake(t, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.ReplyEtype != 17 {
			t.Errorf("reply etype %d", res.ReplyEtype)
		}
	})

	t.Run("other errors", func(t *testing.T) {
		for code, text := range map[int32]string{
			errorcode.KDC_ERR_ETYPE_NOSUPP:        "KDC has no support for encryption type",
			errorcode.KRB_AP_ERR_SKEW:             "Clock skew too great",
			errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN: "Client 'user@FAKE.TEST' not found in Kerberos database",
			errorcode.KDC_ERR_CLIENT_REVOKED:      "Client's credentials have been revoked",
			errorcode.KDC_ERR_KEY_EXPIRED:         "Password has expired",
		} {
			f := &fakeAS{answer: func(*messages.ASReq, int) []byte {
				e := messages.NewKRBError(types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", fakeRealm}}, fakeRealm, code, "ETEXT")
				b, _ := e.Marshal()
				return b
			}}
			_, err := runFake(t, f, nil)
			var ke *KDCError
			if !errors.As(err, &ke) || ke.Code != code || ke.Text() != text || ke.EText != "ETEXT" || ke.Msg == nil {
				t.Errorf("code %d: err = %v", code, err)
			}
		}
	})
}

func TestKDCErrorText(t *testing.T) {
	e := &KDCError{Code: errorcode.KDC_ERR_PREAUTH_FAILED, EText: "PREAUTH_FAILED"}
	if got := e.Error(); got != `client: Password incorrect (KDC_ERR_PREAUTH_FAILED, code 24, e-text "PREAUTH_FAILED")` {
		t.Errorf("Error() = %s", got)
	}
	if got := (&KDCError{Code: errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, Server: "host/x@R"}).Text(); got != "Server host/x@R not found in Kerberos database" {
		t.Errorf("code 7: %s", got)
	}
	if got := (&KDCError{Code: errorcode.KDC_ERR_TRTYPE_NOSUPP}).Text(); got != "KDC has no support for transited type" {
		t.Errorf("table fallback: %s", got)
	}
	if got := (&KDCError{Code: 9999}).Text(); got != "Kerberos error 9999" {
		t.Errorf("unknown: %s", got)
	}
	if (&KDCError{Code: errorcode.KRB_AP_ERR_BAD_INTEGRITY}).Text() != "Decrypt integrity check failed" {
		t.Error("remote code 31 text")
	}
	if (&KDCError{Code: 9999}).Name() != "KRB_ERROR_9999" {
		t.Error("unknown name")
	}
}
