package kubeenv

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// tailLines is how many lines of a process's output are kept for error
// messages.
const tailLines = 40

// proc is one running child process: etcd or kube-apiserver.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lineWriter
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid once done is closed
}

// startProc starts bin with args, its output going to logf line by line and
// to a tail kept for errors. The process is in its own process group and, on
// Linux, is killed when the test process dies.
func startProc(name, bin string, args []string, dir string, logf func(string, ...any)) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out := &lineWriter{prefix: "[" + name + "] ", logf: logf}
	cmd.Stdout = out
	cmd.Stderr = out
	// Wait copies the output through a pipe; do not let a stray holder of
	// the pipe keep Wait from returning.
	cmd.WaitDelay = 5 * time.Second
	setProcAttr(cmd)
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("kubeenv: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.flush()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the process to exit. Calling it again is harmless. An exit caused
// by those signals is not an error.
func (p *proc) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	if !p.exited() {
		_ = terminate(p.cmd)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = kill(p.cmd)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("kubeenv: %s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
			}
		}
	}
	p.out.mute()
	var exitErr *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exitErr) {
		return fmt.Errorf("kubeenv: %s: %w", p.name, p.err)
	}
	return nil
}

// describe says how the process ended, with the tail of its output.
func (p *proc) describe() string {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Sprintf("%s (%s); last lines of its output:\n%s", p.name, state, p.out.tail())
}

// spawnReq asks the spawner goroutine to start a command.
type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

// spawn starts cmd from one OS thread that lives as long as the test
// process. On Linux the parent-death signal (Pdeathsig) fires when the
// thread that forked the child exits, not the process; the Go runtime ends a
// thread when a goroutine locked to it returns, so starting children from an
// arbitrary goroutine could kill them early.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays for good
			for req := range spawnCh {
				req.err <- req.cmd.Start()
			}
		}()
	})
	req := spawnReq{cmd: cmd, err: make(chan error, 1)}
	spawnCh <- req
	return <-req.err
}

// lineWriter splits a process's output into lines, passes each to logf and
// keeps the last tailLines of them.
type lineWriter struct {
	prefix string

	mu    sync.Mutex
	logf  func(string, ...any) // nil discards
	part  []byte
	lines []string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part = append(w.part, b...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	// A process that never ends its line must not grow the buffer forever.
	if len(w.part) > 64<<10 {
		w.line(string(w.part))
		w.part = nil
	}
	return len(b), nil
}

// line must be called with mu held.
func (w *lineWriter) line(s string) {
	s = strings.TrimRight(s, "\r")
	w.lines = append(w.lines, s)
	if len(w.lines) > tailLines {
		w.lines = w.lines[len(w.lines)-tailLines:]
	}
	if w.logf != nil {
		w.logf("%s%s", w.prefix, s)
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.part) > 0 {
		w.line(string(w.part))
		w.part = nil
	}
}

// mute stops passing output to logf: once Stop has returned, a test's
// t.Logf must no longer be called.
func (w *lineWriter) mute() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.logf = nil
}

func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := w.lines
	if len(w.part) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(w.part))
	}
	if len(lines) == 0 {
		return "  (no output)"
	}
	return "  " + strings.Join(lines, "\n  ")
}
