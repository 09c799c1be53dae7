module github.com/kerbkit/kerbkit

go 1.26.8

require (
	github.com/jcmturner/gokrb5/v8 v8.4.4
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/jcmturner/aescts/v2 v2.0.0 // indirect
	github.com/jcmturner/gofork v1.7.6 // indirect
	golang.org/x/crypto v0.6.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
