package walkthrough

import (
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/testenv"
	"github.com/kerbkit/kerbkit/ticket"
)

// TestExplainEncPARep: in the committed capture of MIT kinit against MIT's KDC, the client checks the KDC's
// PA-REQ-ENC-PA-REP checksum over its AS-REQ [RFC 6806 §11] and it verifies; had the request been changed on the
// way (its till one second later), the same reply fails that check and only that one.
func TestExplainEncPARep(t *testing.T) {
	var msgs [][]byte
	for _, m := range captureMessages(t, mitCapture).msgs {
		switch ticket.MessageType(m.data) {
		case msgtype.KRB_AS_REQ, msgtype.KRB_AS_REP, msgtype.KRB_ERROR:
			msgs = append(msgs, m.data)
		}
	}
	if len(msgs) < 4 || ticket.MessageType(msgs[2]) != msgtype.KRB_AS_REQ || ticket.MessageType(msgs[3]) != msgtype.KRB_AS_REP {
		t.Fatalf("the capture does not start with AS-REQ, KRB-ERROR, AS-REQ, AS-REP")
	}
	var req messages.ASReq
	if err := req.Unmarshal(msgs[2]); err != nil {
		t.Fatal(err)
	}
	req.ReqBody.Till = req.ReqBody.Till.Add(time.Second)
	changed, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	kt, err := client.LoadKeytab(mitKeytab)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		sent    []byte
		result  string
		failing int
	}{{"as sent", msgs[2], CheckPass, 0}, {"changed on the way", changed, CheckFail, 1}} {
		t.Run(c.name, func(t *testing.T) {
			rec := NewRecorder(Options{View: ViewCapture, RealmKey: keytabKeys(kt), Password: testenv.UserPassword, HasPassword: true})
			rec.Add(Wire{Data: msgs[0], Sent: true})
			rec.Add(Wire{Data: msgs[1]})
			rec.Add(Wire{Data: c.sent, Sent: true})
			rec.Add(Wire{Data: msgs[3]})
			rec.Flush()
			var rep *Step
			for _, s := range rec.Steps() {
				if s.ID == "as-rep" {
					rep = &s
				}
			}
			if rep == nil {
				t.Fatal("no as-rep step")
			}
			if !hasCheck(rep, c.result, "PA-REQ-ENC-PA-REP in A") {
				t.Fatalf("no %s check of PA-REQ-ENC-PA-REP: %+v", c.result, rep.Checks)
			}
			failing := 0
			for _, ch := range rep.Checks {
				if ch.Result == CheckFail {
					failing++
				}
			}
			if failing != c.failing {
				t.Fatalf("%d failed checks, want %d: %+v", failing, c.failing, rep.Checks)
			}
		})
	}
}
