package kubeenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// etcdTimeout bounds the wait for etcd to answer /health.
	etcdTimeout = 30 * time.Second
	// readyTimeout bounds the wait for kube-apiserver's /readyz.
	readyTimeout = 60 * time.Second
	// usableTimeout bounds the wait for pods to be creatable.
	usableTimeout = 30 * time.Second
	// stopGrace is how long a process gets between SIGTERM and SIGKILL.
	stopGrace = 15 * time.Second
	// startAttempts is how often Start tries fresh ports when one it picked
	// was taken by someone else before the process bound it.
	startAttempts = 3
	// serviceAccountIssuer is the issuer of the service account tokens.
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
)

// Options configures Start.
type Options struct {
	// BinDir holds the etcd and kube-apiserver binaries; BinDir() when
	// empty.
	BinDir string
	// Dir is the work directory: etcd data, apiserver certificates and
	// keys, the kubeconfig. When empty a temporary directory is made, and
	// Stop removes it; a given Dir is kept.
	Dir string
	// Logf receives the output of etcd and kube-apiserver, one line per
	// call, prefixed with "[etcd] " or "[kube-apiserver] ". Nil discards it.
	// It is not called any more once Stop has returned.
	Logf func(format string, args ...any)
}

// Env is a running etcd and kube-apiserver, bound to 127.0.0.1.
type Env struct {
	// Kubeconfig is the path of a kubeconfig file for the apiserver: token
	// authentication as a member of system:masters,
	// insecure-skip-tls-verify, server https://127.0.0.1:<port>.
	Kubeconfig string
	// Config is the client configuration the kubeconfig describes.
	Config *rest.Config
	// Client is a clientset for Config.
	Client kubernetes.Interface

	dir       string
	removeDir bool
	logf      func(string, ...any)
	apiBin    string
	apiArgs   []string
	apiURL    string
	token     string
	probe     *http.Client

	mu        sync.Mutex
	stopped   bool
	etcd      *proc
	apiserver *proc
}

// Start starts etcd, then kube-apiserver on free loopback ports, and returns
// once the apiserver is ready and pods can be created. The processes run
// until Stop, independently of ctx, which only bounds the start. On error
// nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	if err := missingBinaries(binDir); err != nil {
		return nil, fmt.Errorf("kubeenv: test binaries missing (run `make testbins`): %w", err)
	}

	e := &Env{
		logf:   opts.Logf,
		apiBin: filepath.Join(binDir, "kube-apiserver"),
		probe: &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				// The apiserver's serving certificate is self-signed.
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
				DisableKeepAlives: true,
			},
		},
	}
	if opts.Dir == "" {
		if e.dir, err = os.MkdirTemp("", "kubeenv-"); err != nil {
			return nil, fmt.Errorf("kubeenv: %w", err)
		}
		e.removeDir = true
	} else {
		if e.dir, err = filepath.Abs(opts.Dir); err != nil {
			return nil, fmt.Errorf("kubeenv: %w", err)
		}
		if err := os.MkdirAll(e.dir, 0o755); err != nil {
			return nil, fmt.Errorf("kubeenv: %w", err)
		}
	}
	defer func() {
		if err != nil {
			_ = e.Stop()
		}
	}()

	etcdURL, err := e.startEtcd(ctx, filepath.Join(binDir, "etcd"))
	if err != nil {
		return nil, err
	}
	if err := e.prepareAPIServer(etcdURL); err != nil {
		return nil, err
	}
	if err := e.startAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := e.writeKubeconfig(); err != nil {
		return nil, err
	}
	if err := e.waitUsable(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Stop stops kube-apiserver, then etcd (SIGTERM, then SIGKILL after a grace
// period), and removes the work directory if Start made it. It may be
// called more than once.
func (e *Env) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	e.stopped = true
	errs := []error{e.apiserver.stop(stopGrace), e.etcd.stop(stopGrace)}
	if e.removeDir {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	return errors.Join(errs...)
}

// RestartAPIServer stops kube-apiserver and starts it again on the same port
// with the same etcd and flags, and waits until it is ready again. Env's
// Kubeconfig, Config and Client stay valid.
func (e *Env) RestartAPIServer(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("kubeenv: RestartAPIServer after Stop")
	}
	if err := e.apiserver.stop(stopGrace); err != nil {
		return err
	}
	p, err := startProc("kube-apiserver", e.apiBin, e.apiArgs, e.dir, e.logf)
	if err != nil {
		return err
	}
	e.apiserver = p
	if err := e.waitReady(ctx); err != nil {
		return err
	}
	return e.waitUsable(ctx)
}

// startEtcd starts etcd on two free ports, retrying with fresh ports when
// one was taken meanwhile, and waits until it is healthy. It returns the
// client URL.
func (e *Env) startEtcd(ctx context.Context, bin string) (string, error) {
	dataDir := filepath.Join(e.dir, "etcd")
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return "", err
		}
		// A failed attempt may have left a member with other peer URLs.
		if err := os.RemoveAll(dataDir); err != nil {
			return "", fmt.Errorf("kubeenv: %w", err)
		}
		clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		args := []string{
			"--name=default",
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=default=" + peerURL,
			"--initial-cluster-state=new",
			"--unsafe-no-fsync",
			"--log-level=warn",
		}
		p, err := startProc("etcd", bin, args, e.dir, e.logf)
		if err != nil {
			return "", err
		}
		e.etcd = p
		err = e.waitFor(ctx, p, etcdTimeout, func(ctx context.Context) bool {
			body, ok := e.get(ctx, clientURL+"/health", "")
			return ok && strings.Contains(body, `"health":"true"`)
		})
		if err == nil {
			return clientURL, nil
		}
		lastErr = err
		if !p.exited() || !strings.Contains(p.out.tail(), "address already in use") {
			break
		}
		e.note("etcd: a port was taken, retrying with other ports")
	}
	return "", lastErr
}

// prepareAPIServer writes the token file and service account keys and sets
// the apiserver's flags, except the port.
func (e *Env) prepareAPIServer(etcdURL string) error {
	dir := filepath.Join(e.dir, "apiserver")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	e.token = hex.EncodeToString(tok)
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(e.token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("kubeenv: service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("kubeenv: service account key: %w", err)
	}
	keyFile := filepath.Join(dir, "sa.key")
	pubFile := filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}

	e.apiArgs = []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		// Without it the apiserver advertises the address of the default
		// route, and fails when there is none.
		"--advertise-address=127.0.0.1",
		// The Endpoints reconciler would keep failing: 127.0.0.1 is not a
		// valid endpoint address.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + pubFile,
		"--service-account-signing-key-file=" + keyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		// There is no service account controller to make the "default"
		// service account of new namespaces.
		"--disable-admission-plugins=ServiceAccount",
	}
	return nil
}

// startAPIServer starts kube-apiserver on a free port, retrying with another
// port when the one picked was taken meanwhile, and waits for /readyz.
func (e *Env) startAPIServer(ctx context.Context) error {
	base := e.apiArgs
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		e.apiURL = "https://127.0.0.1:" + strconv.Itoa(ports[0])
		e.apiArgs = append(base[:len(base):len(base)], "--secure-port="+strconv.Itoa(ports[0]))
		p, err := startProc("kube-apiserver", e.apiBin, e.apiArgs, e.dir, e.logf)
		if err != nil {
			return err
		}
		e.apiserver = p
		if lastErr = e.waitReady(ctx); lastErr == nil {
			return nil
		}
		if !p.exited() || !strings.Contains(p.out.tail(), "address already in use") {
			break
		}
		e.note("kube-apiserver: its port was taken, retrying with another one")
	}
	return lastErr
}

// waitReady waits until kube-apiserver answers /readyz with ok.
func (e *Env) waitReady(ctx context.Context) error {
	return e.waitFor(ctx, e.apiserver, readyTimeout, func(ctx context.Context) bool {
		body, ok := e.get(ctx, e.apiURL+"/readyz", e.token)
		return ok && strings.TrimSpace(body) == "ok"
	})
}

// waitUsable waits until the "default" namespace exists and a pod passes
// admission in it (a server-side dry run), so that tests can create
// namespaces and pods.
func (e *Env) waitUsable(ctx context.Context) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeenv-probe", Namespace: metav1.NamespaceDefault},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "busybox"}}},
	}
	var lastErr error
	err := e.waitFor(ctx, e.apiserver, usableTimeout, func(ctx context.Context) bool {
		if _, lastErr = e.Client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); lastErr != nil {
			return false
		}
		_, lastErr = e.Client.CoreV1().Pods(metav1.NamespaceDefault).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return lastErr == nil
	})
	if err != nil && lastErr != nil {
		return fmt.Errorf("%w\nlast API error: %v", err, lastErr)
	}
	return err
}

// waitFor polls ready every 200ms until it reports true, p exits, timeout
// passes or ctx ends. Its error describes p with the tail of its output.
func (e *Env) waitFor(ctx context.Context, p *proc, timeout time.Duration, ready func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("kubeenv: %s", p.describe())
		case <-ctx.Done():
			return fmt.Errorf("kubeenv: %s not ready within %v: %w; %s", p.name, timeout, context.Cause(ctx), p.describe())
		case <-tick.C:
		}
	}
}

// get fetches url and reports its body when the status is 200.
func (e *Env) get(ctx context.Context, url, token string) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.probe.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", false
	}
	return string(body), true
}

// writeKubeconfig writes the kubeconfig and makes Config and Client from it.
func (e *Env) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubeenv"] = &clientcmdapi.Cluster{Server: e.apiURL, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: e.token}
	cfg.Contexts["kubeenv"] = &clientcmdapi.Context{Cluster: "kubeenv", AuthInfo: "admin", Namespace: metav1.NamespaceDefault}
	cfg.CurrentContext = "kubeenv"
	e.Kubeconfig = filepath.Join(e.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, e.Kubeconfig); err != nil {
		return fmt.Errorf("kubeenv: write kubeconfig: %w", err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeenv: read kubeconfig back: %w", err)
	}
	// Tests create objects in bursts; the client defaults (5 QPS) would
	// throttle them.
	rc.QPS, rc.Burst = 100, 200
	e.Config = rc
	if e.Client, err = kubernetes.NewForConfig(rc); err != nil {
		return fmt.Errorf("kubeenv: %w", err)
	}
	return nil
}

func (e *Env) note(format string, args ...any) {
	if e.logf != nil {
		e.logf("kubeenv: "+format, args...)
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. They are free
// when it returns; a process may take one before the caller binds it, which
// Start handles by retrying.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubeenv: free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
