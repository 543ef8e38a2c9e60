package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
)

// suite is shared by every test of the package: one apiserver, one podmedic binary.
var suite struct {
	env    *kubeenv.Env
	bin    string
	err    error
	reason string
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := kubeenv.BinDir()
	if err == nil {
		if _, err = os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
			_, err = os.Stat(filepath.Join(dir, "etcd"))
		}
	}
	if err != nil {
		suite.reason = fmt.Sprintf("test binaries missing (run `make testbins`): %v", err)
		return m.Run() // each test skips, or fails under PODMEDIC_REQUIRE_E2E=1
	}
	tmp, err := os.MkdirTemp("", "podmedic-e2e-")
	if err != nil {
		suite.err = err
		return m.Run()
	}
	defer os.RemoveAll(tmp)
	suite.bin = filepath.Join(tmp, "podmedic")
	build := exec.Command("go", "build", "-o", suite.bin, "../cmd/podmedic")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if suite.err = build.Run(); suite.err != nil {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	suite.env, suite.err = kubeenv.Start(ctx, kubeenv.Options{BinDir: dir})
	if suite.err != nil {
		return m.Run()
	}
	fmt.Fprintf(os.Stderr, "e2e: kube-apiserver ready in %s\n", time.Since(start).Round(time.Millisecond))
	defer suite.env.Stop()
	return m.Run()
}

// cluster returns the shared apiserver, skipping or failing the test when it is not there.
func cluster(t *testing.T) *kubeenv.Env {
	t.Helper()
	if suite.reason != "" {
		kubeenv.Require(t)
		t.Skip(suite.reason)
	}
	require.NoError(t, suite.err, "e2e setup")
	return suite.env
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, env *kubeenv.Env, name string) string {
	t.Helper()
	_, err := env.Client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return name
}

// podmedic is a running `podmedic run` process.
type podmedic struct {
	t        *testing.T
	cmd      *exec.Cmd
	httpAddr string
	done     chan error

	mu       sync.Mutex
	findings []finding.Finding
	notices  []finding.Notice // decisions and refusals
	stderr   strings.Builder

	// findingNotices are the finding notices whole: with their proposal or action outcome.
	findingNotices []finding.Notice
}

// startPodmedic runs `podmedic run` against the shared apiserver with the embedded NATS server
// in dataDir and the console notifier in JSON, and waits until /readyz answers 200.
func startPodmedic(t *testing.T, env *kubeenv.Env, dataDir string, args ...string) *podmedic {
	t.Helper()
	return startPodmedicEnv(t, env, dataDir, nil, args...)
}

// startPodmedicEnv is startPodmedic with extra environment variables (secrets).
func startPodmedicEnv(t *testing.T, env *kubeenv.Env, dataDir string, extraEnv []string, args ...string) *podmedic {
	t.Helper()
	addr := freeAddr(t)
	all := append([]string{"run", "--kubeconfig", env.Kubeconfig, "--data-dir", dataDir, "--http-addr", addr,
		"--inbox-addr", "127.0.0.1:0", "--console-format", "json"}, args...)
	cmd := exec.Command(suite.bin, all...)
	cmd.Env = append(os.Environ(), extraEnv...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	p := &podmedic{t: t, cmd: cmd, httpAddr: addr, done: make(chan error, 1)}
	require.NoError(t, cmd.Start())
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			// A line is a finding (notify-only rules) or a Notice (a finding with its proposal
			// or outcome, a decision, a refusal).
			var n finding.Notice
			if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
				t.Errorf("stdout line is not JSON: %q: %v", sc.Text(), err)
				continue
			}
			var f finding.Finding
			switch {
			case n.Type == finding.NoticeFinding && n.Finding != nil:
				f = *n.Finding
				p.mu.Lock()
				p.findingNotices = append(p.findingNotices, n)
				p.mu.Unlock()
			case n.Type != "":
				p.mu.Lock()
				p.notices = append(p.notices, n)
				p.mu.Unlock()
				continue
			default:
				if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
					t.Errorf("stdout line is not a finding: %q: %v", sc.Text(), err)
					continue
				}
			}
			p.mu.Lock()
			p.findings = append(p.findings, f)
			p.mu.Unlock()
		}
	}()
	go func() {
		// As it comes, so that a test can wait for a line.
		defer readers.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := stderr.Read(buf)
			p.mu.Lock()
			p.stderr.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		readers.Wait()
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("podmedic stderr:\n%s", p.logs())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := p.get("/readyz"); code == http.StatusOK {
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("podmedic exited before it was ready: %v\n%s", err, p.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("podmedic not ready within 60s\n%s", p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *podmedic) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *podmedic) get(path string) (int, string) {
	resp, err := http.Get("http://" + p.httpAddr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stop sends SIGTERM and requires a clean exit.
func (p *podmedic) stop() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(p.t, err, "podmedic exit after SIGTERM\n%s", p.logs())
	case <-time.After(30 * time.Second):
		p.t.Fatalf("podmedic did not stop within 30s of SIGTERM\n%s", p.logs())
	}
}

// waitFinding waits (bounded) for a finding of kind about pod and returns it.
func (p *podmedic) waitFinding(kind finding.Kind, namespace, pod string, within time.Duration) finding.Finding {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, f := range p.all() {
			if f.Kind == kind && f.Namespace == namespace && f.Pod == pod {
				return f
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("no %s finding for %s/%s within %s; findings: %+v\n%s", kind, namespace, pod, within, p.all(), p.logs())
	return finding.Finding{}
}

func (p *podmedic) all() []finding.Finding {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]finding.Finding(nil), p.findings...)
}

// metric returns the value of an unlabelled (or fully labelled) metric line from /metrics.
func (p *podmedic) metric(name string) float64 {
	_, body := p.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscanf(strings.TrimPrefix(line, name+" "), "%g", &v)
			return v
		}
	}
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
