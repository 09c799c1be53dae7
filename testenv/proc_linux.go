//go:build linux

package testenv

import (
	"os"
	"syscall"
)

// childAttr returns the attributes for every child process: its own process
// group when newGroup (so a timeout can kill the command and its children), and
// SIGKILL when the test process dies, so no peer outlives a crashed test binary.
func childAttr(newGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: newGroup, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		return syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// lockFile takes an exclusive advisory lock on path (created if needed) and
// returns the function that releases it. It serialises the Heimdal download
// between test processes that share the cache directory.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
