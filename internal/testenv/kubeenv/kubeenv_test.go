package kubeenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestStartOOMKilledPod starts etcd and kube-apiserver, creates a pod and
// writes an OOMKilled status through the status subresource as a kubelet
// would, reads it back, restarts the apiserver and reads it again.
func TestStartOOMKilledPod(t *testing.T) {
	binDir := Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// The processes' output is only shown when the test fails.
	var logMu sync.Mutex
	var log strings.Builder
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(&log, format+"\n", args...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			defer logMu.Unlock()
			t.Logf("process output:\n%s", log.String())
		}
	})

	start := time.Now()
	env, err := Start(ctx, Options{BinDir: binDir, Logf: logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	t.Logf("etcd and kube-apiserver ready in %v at %s", time.Since(start).Round(time.Millisecond), env.Config.Host)

	if !strings.HasPrefix(env.Config.Host, "https://127.0.0.1:") {
		t.Errorf("Config.Host = %q, want https://127.0.0.1:<port>", env.Config.Host)
	}
	checkKubeconfig(ctx, t, env)

	c := env.Client
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kubeenv-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := c.CoreV1().Pods(ns.Name).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hog"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "hog", Image: "busybox"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodPending {
		t.Errorf("new pod phase = %q, want Pending", pod.Status.Phase)
	}

	// What a kubelet writes when the kernel OOM-kills the only container.
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	pod.Status = corev1.PodStatus{
		Phase:     corev1.PodFailed,
		StartTime: &now,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:        "hog",
			Image:       "docker.io/library/busybox:latest",
			ImageID:     "docker.io/library/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
			ContainerID: "containerd://0123456789abcdef",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason:     "OOMKilled",
				ExitCode:   137,
				StartedAt:  now,
				FinishedAt: now,
			}},
		}},
	}
	if _, err := c.CoreV1().Pods(ns.Name).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	checkOOMKilled(ctx, t, c, ns.Name, "hog")

	// The status lives in etcd: it survives an apiserver restart, and the
	// same client works afterwards.
	if err := env.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	checkOOMKilled(ctx, t, c, ns.Name, "hog")

	apiserver, etcd, dir := env.apiserver, env.etcd, env.dir
	host := strings.TrimPrefix(env.Config.Host, "https://")
	if err := env.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := env.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if !apiserver.exited() || !etcd.exited() {
		t.Fatal("processes still running after Stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("work dir %s still there after Stop: %v", dir, err)
	}
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		t.Fatalf("something still listens on %s after Stop", host)
	}
	if err := env.RestartAPIServer(ctx); err == nil {
		t.Fatal("RestartAPIServer after Stop succeeded")
	}
}

// checkKubeconfig makes a client from the kubeconfig file alone and lists
// namespaces with it.
func checkKubeconfig(ctx context.Context, t *testing.T, env *Env) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Insecure || cfg.BearerToken == "" || cfg.Host != env.Config.Host {
		t.Errorf("kubeconfig: insecure=%v token set=%v host=%q, want insecure, a token and %q",
			cfg.Insecure, cfg.BearerToken != "", cfg.Host, env.Config.Host)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
		t.Fatalf("client from kubeconfig: %v", err)
	}
}

func checkOOMKilled(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, name string) {
	t.Helper()
	got, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodFailed {
		t.Errorf("phase = %q, want Failed", got.Status.Phase)
	}
	if len(got.Status.ContainerStatuses) != 1 || got.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("container statuses = %+v, want one terminated", got.Status.ContainerStatuses)
	}
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("terminated = reason %q exit %d, want OOMKilled 137", term.Reason, term.ExitCode)
	}
}

// TestStartReportsAPIServerLog checks that when kube-apiserver dies, Start
// says so with the end of its output, and leaves nothing behind.
func TestStartReportsAPIServerLog(t *testing.T) {
	binDir := Require(t)
	fake := t.TempDir()
	if err := os.Symlink(filepath.Join(binDir, "etcd"), filepath.Join(fake, "etcd")); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho 'fake apiserver: starting'\necho 'fake apiserver: boom' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(fake, "kube-apiserver"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	_, err := Start(t.Context(), Options{BinDir: fake, Dir: work})
	if err == nil {
		t.Fatal("Start with a failing kube-apiserver succeeded")
	}
	for _, want := range []string{"kube-apiserver", "exit status 3", "fake apiserver: starting", "fake apiserver: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error does not mention %q:\n%v", want, err)
		}
	}
	// A given Dir is kept, with what etcd wrote.
	if _, err := os.Stat(filepath.Join(work, "etcd")); err != nil {
		t.Errorf("work dir: %v", err)
	}
}
