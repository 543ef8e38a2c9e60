package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Daemon is a running `podmedic run` process, observed from outside: /proc, HTTP, its log.
type Daemon struct {
	cmd      *exec.Cmd
	HTTPAddr string
	Started  time.Time
	done     chan error

	mu     sync.Mutex
	synced time.Time // when the watchers logged that their caches synced
	log    []string  // the last lines of stderr
}

// DaemonOptions configure StartDaemon.
type DaemonOptions struct {
	Bin        string
	Kubeconfig string
	DataDir    string
	// Stdout receives the console notices (nil: discarded).
	Stdout io.Writer
	Env    []string
	Args   []string
}

// StartDaemon runs `podmedic run` with the embedded NATS server in DataDir, health and
// metrics on a free 127.0.0.1 port, and console notices in JSON.
func StartDaemon(o DaemonOptions) (*Daemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"run", "--kubeconfig", o.Kubeconfig, "--data-dir", o.DataDir, "--http-addr", addr,
		"--console-format", "json"}, o.Args...)
	cmd := exec.Command(o.Bin, args...)
	cmd.Env = append(os.Environ(), o.Env...)
	if o.Stdout != nil {
		cmd.Stdout = o.Stdout
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	d := &Daemon{cmd: cmd, HTTPAddr: addr, done: make(chan error, 1)}
	d.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			if d.synced.IsZero() && strings.Contains(line, "informer caches synced") {
				d.synced = time.Now()
			}
			d.log = append(d.log, line)
			if len(d.log) > 200 {
				d.log = d.log[len(d.log)-100:]
			}
			d.mu.Unlock()
		}
		d.done <- cmd.Wait()
	}()
	return d, nil
}

// Pid is the process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Log returns the last lines of the daemon's log.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.log, "\n")
}

// Synced is when the watchers logged "informer caches synced" (zero: not yet).
func (d *Daemon) Synced() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.synced
}

// WaitReady polls /readyz every 10ms until it answers 200 and returns when that was.
func (d *Daemon) WaitReady(ctx context.Context, within time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	for {
		if code, _ := d.get(ctx, c, "/readyz"); code == http.StatusOK {
			return time.Now(), nil
		}
		select {
		case err := <-d.done:
			d.done <- err
			return time.Time{}, fmt.Errorf("podmedic exited before it was ready: %v\n%s", err, d.Log())
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("podmedic not ready within %s\n%s", within, d.Log())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (d *Daemon) get(ctx context.Context, c *http.Client, path string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.HTTPAddr+path, nil)
	if err != nil {
		return 0, ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Metrics returns the daemon's Prometheus metrics, one value per series line.
func (d *Daemon) Metrics(ctx context.Context) map[string]float64 {
	_, body := d.get(ctx, &http.Client{Timeout: 5 * time.Second}, "/metrics")
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// WaitMetric polls /metrics until cond holds or within passes.
func (d *Daemon) WaitMetric(ctx context.Context, within time.Duration, cond func(m map[string]float64) bool) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond(d.Metrics(ctx)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("condition on metrics not met within %s", within)
}

// Stop sends SIGTERM and waits (then kills after 30s).
func (d *Daemon) Stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		return fmt.Errorf("podmedic did not stop within 30s of SIGTERM")
	}
}

// Memory is what /proc/<pid>/status says about a process's memory, in KiB.
type Memory struct {
	RSSKiB  int64 `json:"rss_kib"`
	PeakKiB int64 `json:"peak_rss_kib"` // VmHWM
	// AnonKiB is RssAnon: the heap and stacks; FileKiB is RssFile: the mapped binary.
	AnonKiB int64 `json:"rss_anon_kib"`
	FileKiB int64 `json:"rss_file_kib"`
}

// ProcMemory reads /proc/<pid>/status.
func ProcMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.RSSKiB = n
		case "VmHWM":
			m.PeakKiB = n
		case "RssAnon":
			m.AnonKiB = n
		case "RssFile":
			m.FileKiB = n
		}
	}
	if m.RSSKiB == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ProcCPU is the CPU time (user + system) process pid has used so far, from
// /proc/<pid>/stat (utime and stime, in clock ticks of 1/100 s on Linux).
func ProcCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields after it.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(u+st) * 10 * time.Millisecond, nil
}
