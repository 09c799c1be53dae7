package kdc

import (
	"context"
	"testing"
)

// BenchmarkASPreauth measures one pre-authenticated AS exchange in process: decode,
// store lookups, PA-ENC-TIMESTAMP decryption, ticket and reply encryption and
// encoding. The lookaside cache is off so every iteration does the full work.
func BenchmarkASPreauth(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	req, _ := r.preauthASReq("alice", 18, 18)
	pkt := marshalAS(b, req)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := r.kdc.Handle(ctx, pkt, UDP, nil); !ok {
			b.Fatal("no reply")
		}
	}
}

// BenchmarkPreauthRequired measures the cheapest decoded path: a KRB-ERROR with
// METHOD-DATA.
func BenchmarkPreauthRequired(b *testing.B) {
	r := newTestRealm(b, func(c *Config) { c.LookasideTTL = -1 })
	pkt := marshalAS(b, asReq("alice", 18))
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := r.kdc.Handle(ctx, pkt, UDP, nil); !ok {
			b.Fatal("no reply")
		}
	}
}
