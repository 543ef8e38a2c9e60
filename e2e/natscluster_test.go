//go:build faults

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
)

// natsCluster is one or three nats-server processes (the binary hack/testbins.sh builds from
// the module proxy) with JetStream on file storage, on 127.0.0.1 ports, joined by cluster
// routes when there are several. Nodes can be killed (SIGKILL) and started again on the same
// ports and store.
type natsCluster struct {
	t     *testing.T
	bin   string
	nodes []*natsNode
}

type natsNode struct {
	name       string
	conf       string
	clientPort int
	httpPort   int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// startNATS starts n nats-server nodes (1 or 3) and waits until each reports JetStream
// healthy. They are killed when the test ends.
func startNATS(t *testing.T, n int) *natsCluster {
	t.Helper()
	dir, err := kubeenv.BinDir()
	require.NoError(t, err)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err != nil {
		kubeenv.Require(t)
		t.Skipf("nats-server missing (run `make testbins`): %v", err)
	}
	c := &natsCluster{t: t, bin: bin}
	ports := make([][3]int, n)
	for i := range ports {
		for j := range ports[i] {
			ports[i][j] = freePort(t)
		}
	}
	root := t.TempDir()
	for i := range n {
		node := &natsNode{name: fmt.Sprintf("n%d", i), clientPort: ports[i][0], httpPort: ports[i][2]}
		store := filepath.Join(root, node.name)
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n", node.name, node.clientPort, node.httpPort)
		fmt.Fprintf(&conf, "jetstream {\n  store_dir: %q\n  max_memory_store: 64MB\n  max_file_store: 2GB\n}\n", store)
		if n > 1 {
			var routes []string
			for j := range n {
				if j != i {
					routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[j][1]))
				}
			}
			fmt.Fprintf(&conf, "cluster {\n  name: podmedic-e2e\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n",
				ports[i][1], strings.Join(routes, ", "))
		}
		node.conf = filepath.Join(root, node.name+".conf")
		require.NoError(t, os.WriteFile(node.conf, []byte(conf.String()), 0o600))
		c.nodes = append(c.nodes, node)
	}
	for i := range c.nodes {
		c.start(i)
	}
	for i := range c.nodes {
		c.waitHealthy(i, 60*time.Second)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.kill(i)
		}
		if t.Failed() {
			for _, node := range c.nodes {
				t.Logf("nats-server %s output (tail):\n%s", node.name, tail(node.out.String(), 30))
			}
		}
	})
	return c
}

// URL is the comma separated client URLs of every node.
func (c *natsCluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort)
	}
	return strings.Join(urls, ",")
}

// start starts node i (again), with its config and store.
func (c *natsCluster) start(i int) {
	c.t.Helper()
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd := exec.Command(c.bin, "-c", n.conf)
	if n.out == nil {
		n.out = &syncBuffer{}
	}
	cmd.Stdout, cmd.Stderr = n.out, n.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(c.t, spawnChild(cmd), "start nats-server %s", n.name)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
}

// kill sends SIGKILL to node i and waits until it is gone (no-op when it is not running).
func (c *natsCluster) kill(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("nats-server %s did not exit after SIGKILL", n.name)
	}
}

// waitHealthy waits until node i answers /healthz (JetStream enabled, streams and consumers
// current) with 200.
func (c *natsCluster) waitHealthy(i int, within time.Duration) {
	c.t.Helper()
	n := c.nodes[i]
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.httpPort)
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nats-server %s not healthy within %s: %v\n%s", n.name, within, err, tail(n.out.String(), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// restart kills node i, waits down, starts it again and waits until it is healthy; it
// returns how long the node was unreachable.
func (c *natsCluster) restart(i int, down time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.kill(i)
	time.Sleep(down)
	c.start(i)
	c.waitHealthy(i, 60*time.Second)
	return time.Since(start)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 4<<20 { // keep the tail only
		rest := append([]byte(nil), s.b.Bytes()[s.b.Len()-(1<<20):]...)
		s.b.Reset()
		s.b.Write(rest)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// spawnChild starts cmd from one OS thread that lives as long as the test process, so that
// Pdeathsig (sent when the forking thread exits) kills the child only when the test process
// dies: a test killed by its timeout leaves no nats-server behind.
func spawnChild(cmd *exec.Cmd) error {
	spawnerOnce.Do(func() {
		spawner = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays for good
			for r := range spawner {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := spawnRequest{cmd: cmd, err: make(chan error, 1)}
	spawner <- r
	return <-r.err
}

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

var (
	spawnerOnce sync.Once
	spawner     chan spawnRequest
)

// streamLeader returns the index of the node that leads stream (asked of any live node's
// /jsz), or -1 when no node says.
func (c *natsCluster) streamLeader(stream string) int {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, n := range c.nodes {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?streams=true", n.httpPort))
		if err != nil {
			continue
		}
		var jsz struct {
			AccountDetails []struct {
				StreamDetail []struct {
					Name    string `json:"name"`
					Cluster struct {
						Leader string `json:"leader"`
					} `json:"cluster"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, a := range jsz.AccountDetails {
			for _, s := range a.StreamDetail {
				if s.Name == stream && s.Cluster.Leader != "" {
					for i, m := range c.nodes {
						if m.name == s.Cluster.Leader {
							return i
						}
					}
				}
			}
		}
	}
	return -1
}
