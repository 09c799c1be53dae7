//go:build !linux

package testenv

import (
	"os"
	"syscall"
)

// childAttr returns nil: process groups and parent-death signals are set up on
// Linux only, where the peers run.
func childAttr(newGroup bool) *syscall.SysProcAttr { return nil }

// killGroup kills the process pid.
func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// lockFile is a no-op outside Linux.
func lockFile(path string) (func(), error) { return func() {}, nil }
