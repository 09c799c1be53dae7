package der

import (
	"math/rand"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// gen makes random values of the gokrb5 types for the differential tests:
// every optional field absent, present-but-empty or filled, lengths on both
// sides of the DER short/long length boundary, negative and 64-bit integers.
type gen struct{ r *rand.Rand }

func newGen(seed int64) *gen { return &gen{r: rand.New(rand.NewSource(seed))} }

func (g *gen) coin() bool { return g.r.Intn(2) == 0 }

func (g *gen) bytes(max int) []byte {
	switch g.r.Intn(6) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	n := g.r.Intn(max + 1)
	if g.r.Intn(8) == 0 {
		n = 120 + g.r.Intn(300) // across the 128-byte boundary of short lengths
	}
	b := make([]byte, n)
	g.r.Read(b)
	return b
}

func (g *gen) str() string {
	if g.r.Intn(5) == 0 {
		return ""
	}
	b := make([]byte, 1+g.r.Intn(20))
	for i := range b {
		b[i] = byte(g.r.Intn(256))
	}
	return string(b)
}

func (g *gen) i32() int32 {
	switch g.r.Intn(4) {
	case 0:
		return 0
	case 1:
		return int32(g.r.Intn(256)) - 128
	}
	return int32(g.r.Uint32())
}

func (g *gen) int() int {
	switch g.r.Intn(5) {
	case 0:
		return 0
	case 1:
		return g.r.Intn(300) - 150
	case 2:
		return int(g.r.Uint32()) // a UInt32 nonce or seq-number above 2^31
	}
	return int(g.r.Uint64())
}

func (g *gen) time() time.Time {
	if g.r.Intn(4) == 0 {
		return time.Time{}
	}
	return time.Unix(g.r.Int63n(253402300799), 0).UTC() // up to 9999-12-31
}

func (g *gen) flags() asn1.BitString {
	n := 4
	if g.r.Intn(6) == 0 {
		n = 5 + g.r.Intn(4)
	}
	b := make([]byte, n)
	g.r.Read(b)
	return asn1.BitString{Bytes: b, BitLength: 8 * n}
}

func (g *gen) principalName() types.PrincipalName {
	if g.r.Intn(6) == 0 {
		return types.PrincipalName{}
	}
	pn := types.PrincipalName{NameType: g.i32()}
	if g.r.Intn(6) != 0 {
		pn.NameString = make([]string, g.r.Intn(4))
		for i := range pn.NameString {
			pn.NameString[i] = g.str()
		}
	}
	return pn
}

func (g *gen) encryptedData() types.EncryptedData {
	return types.EncryptedData{EType: g.i32(), KVNO: g.int(), Cipher: g.bytes(200)}
}

func (g *gen) key() types.EncryptionKey {
	return types.EncryptionKey{KeyType: g.i32(), KeyValue: g.bytes(32)}
}

func (g *gen) addresses() []types.HostAddress {
	if g.coin() {
		return nil
	}
	a := make([]types.HostAddress, g.r.Intn(3))
	for i := range a {
		a[i] = types.HostAddress{AddrType: g.i32(), Address: g.bytes(16)}
	}
	return a
}

func (g *gen) authData() types.AuthorizationData {
	if g.coin() {
		return nil
	}
	a := make(types.AuthorizationData, g.r.Intn(3))
	for i := range a {
		a[i] = types.AuthorizationDataEntry{ADType: g.i32(), ADData: g.bytes(40)}
	}
	return a
}

func (g *gen) paData() []types.PAData {
	if g.r.Intn(3) == 0 {
		return nil
	}
	p := make([]types.PAData, g.r.Intn(4))
	for i := range p {
		p[i] = types.PAData{PADataType: g.i32(), PADataValue: g.bytes(60)}
	}
	return p
}

func (g *gen) ticket() messages.Ticket {
	return messages.Ticket{TktVNO: g.int(), Realm: g.str(), SName: g.principalName(), EncPart: g.encryptedData()}
}

func (g *gen) encTicketPart() messages.EncTicketPart {
	return messages.EncTicketPart{
		Flags: g.flags(), Key: g.key(), CRealm: g.str(), CName: g.principalName(),
		Transited: messages.TransitedEncoding{TRType: g.i32(), Contents: g.bytes(20)},
		AuthTime:  g.time(), StartTime: g.time(), EndTime: g.time(), RenewTill: g.time(),
		CAddr: g.addresses(), AuthorizationData: g.authData(),
	}
}

func (g *gen) encKDCRepPart() messages.EncKDCRepPart {
	p := messages.EncKDCRepPart{
		Key: g.key(), Nonce: g.int(), KeyExpiration: g.time(), Flags: g.flags(),
		AuthTime: g.time(), StartTime: g.time(), EndTime: g.time(), RenewTill: g.time(),
		SRealm: g.str(), SName: g.principalName(), CAddr: g.addresses(), EncPAData: g.paData(),
	}
	for i := g.r.Intn(3); i > 0; i-- {
		p.LastReqs = append(p.LastReqs, messages.LastReq{LRType: g.i32(), LRValue: g.time()})
	}
	return p
}

func (g *gen) authenticator() types.Authenticator {
	a := types.Authenticator{
		AVNO: g.int(), CRealm: g.str(), CName: g.principalName(), Cusec: g.int(), CTime: g.time(),
		SeqNumber: int64(g.int()), AuthorizationData: g.authData(),
	}
	if g.coin() {
		a.Cksum = types.Checksum{CksumType: g.i32(), Checksum: g.bytes(24)}
	}
	if g.coin() {
		a.SubKey = g.key()
	}
	return a
}

func (g *gen) kdcReqBody() messages.KDCReqBody {
	b := messages.KDCReqBody{
		KDCOptions: g.flags(), CName: g.principalName(), Realm: g.str(), SName: g.principalName(),
		From: g.time(), Till: g.time(), RTime: g.time(), Nonce: g.int(), Addresses: g.addresses(),
	}
	b.EType = make([]int32, g.r.Intn(9))
	for i := range b.EType {
		b.EType[i] = g.i32()
	}
	if g.coin() {
		b.EncAuthData = g.encryptedData()
	}
	if g.r.Intn(4) == 0 {
		for i := 1 + g.r.Intn(2); i > 0; i-- {
			b.AdditionalTickets = append(b.AdditionalTickets, g.ticket())
		}
	}
	return b
}

func (g *gen) krbError() messages.KRBError {
	return messages.KRBError{
		PVNO: g.int(), MsgType: g.int(), CTime: g.time(), Cusec: g.int(), STime: g.time(), Susec: g.int(),
		ErrorCode: g.i32(), CRealm: g.str(), CName: g.principalName(), Realm: g.str(), SName: g.principalName(),
		EText: g.str(), EData: g.bytes(100),
	}
}

func (g *gen) etypeInfo2() types.ETypeInfo2 {
	e := make(types.ETypeInfo2, g.r.Intn(4))
	for i := range e {
		e[i] = types.ETypeInfo2Entry{EType: g.i32(), Salt: g.str(), S2KParams: g.bytes(4)}
	}
	return e
}
