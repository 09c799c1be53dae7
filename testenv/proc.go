package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopGrace is how long a stopped daemon gets between SIGTERM (or SIGINT) and
// SIGKILL.
const StopGrace = 10 * time.Second

// logBuffer collects a daemon's combined output and wakes up waiters on every
// write.
type logBuffer struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed and replaced on every write
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns the current contents and a channel closed on the next write.
func (b *logBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf), b.changed
}

func (b *logBuffer) String() string {
	s, _ := b.snapshot()
	return s
}

// Process is a long-running child (a KDC) whose stdout and stderr are captured
// together into a buffer.
type Process struct {
	Name string // short name for messages
	Cmd  *exec.Cmd

	log     *logBuffer
	done    chan struct{} // closed when Wait has returned
	waitErr error         // valid after done is closed

	stopOnce sync.Once
	stopErr  error
}

// StartProcess starts name with args in env. The child gets its own process
// group and is killed if the test binary dies. It never reads stdin.
func StartProcess(env []string, name string, args ...string) (*Process, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	p := &Process{Name: filepath.Base(name), Cmd: cmd, log: newLogBuffer(), done: make(chan struct{})}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	cmd.SysProcAttr = childAttr(true)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the child's process ID.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Output returns everything the child has written so far.
func (p *Process) Output() string { return p.log.String() }

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitOutput waits up to timeout for the child's output to match re and returns
// the submatches of the first match. It fails early if the child exits.
func (p *Process) WaitOutput(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		out, changed := p.log.snapshot()
		if m := re.FindStringSubmatch(out); m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-p.done:
			out = p.log.String()
			if m := re.FindStringSubmatch(out); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("%s (pid %d) exited (%v) before printing %q", p.Name, p.PID(), p.waitErr, re)
		case <-deadline.C:
			return nil, fmt.Errorf("%s (pid %d) printed nothing matching %q within %v", p.Name, p.PID(), re, timeout)
		}
	}
}

// Wait waits up to timeout for the child to exit and returns its exit error.
func (p *Process) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.waitErr
	case <-time.After(timeout):
		return false, nil
	}
}

// Signal sends sig to the child's PID (not its group).
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.Cmd.Process.Signal(sig)
}

// Stop sends sig to the child's PID, waits up to [StopGrace], then kills the
// process group with SIGKILL. It returns the exit error (nil for exit 0), or an
// error saying SIGKILL was needed. Only the first call acts.
func (p *Process) Stop(sig os.Signal) error {
	p.stopOnce.Do(func() {
		if p.Exited() {
			p.stopErr = p.waitErr
			return
		}
		if err := p.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("signal %v to %s (pid %d): %w", sig, p.Name, p.PID(), err)
		}
		if exited, err := p.Wait(StopGrace); exited {
			if p.stopErr == nil {
				p.stopErr = err
			}
			return
		}
		_ = killGroup(p.PID())
		if exited, _ := p.Wait(StopGrace); !exited {
			p.stopErr = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID())
			return
		}
		p.stopErr = fmt.Errorf("%s (pid %d) ignored %v for %v and was killed", p.Name, p.PID(), sig, StopGrace)
	})
	return p.stopErr
}

// ExitCode returns the child's exit code after it exited, -1 if it was killed by
// a signal or is still running.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// describeExit renders a Stop result for logs.
func describeExit(err error) string {
	if err == nil {
		return "exit 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return err.Error()
}

// tail returns at most the last n bytes of s, cut at a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…(earlier lines cut)\n" + s
}
