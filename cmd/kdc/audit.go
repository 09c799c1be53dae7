package main

import (
	"fmt"
	"io"
	"os"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/store"
)

// The audit log (kdc.AuditLog): --audit-log FILE, by default FILE.audit.log
// beside a bbolt database, so that `kdc serve` (for changes through its
// admin socket and for lockouts) and the kdc commands run without a server
// write to the same file. An etcd database has no default: give every KDC
// and admin host its own --audit-log.

// auditPath is the audit log file, or "" for none.
func (e *env) auditPath() string {
	switch {
	case e.auditLog == "none":
		return ""
	case e.auditLog != "":
		return e.auditLog
	case store.IsEtcdURL(e.db):
		return ""
	}
	return e.db + ".audit.log"
}

// openAudit opens the audit log; with none it returns a nil log, which
// writes nothing.
func (e *env) openAudit() (*kdc.AuditLog, io.Closer, error) {
	p := e.auditPath()
	if p == "" {
		return nil, io.NopCloser(nil), nil
	}
	return kdc.OpenAuditLog(p)
}

// withLocalAdmin runs fn on db in this process, each change audited as the
// admin socket would.
func (e *env) withLocalAdmin(db store.DB, fn func(kdc.Admin) error) error {
	audit, closer, err := e.openAudit()
	if err != nil {
		return err
	}
	defer closer.Close()
	return fn(kdc.LocalClient(&kdc.LocalAdmin{Store: db}, audit, fmt.Sprintf("uid:%d", os.Getuid()), "database "+db.Location()))
}
