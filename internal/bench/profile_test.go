package bench

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/app"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
	"github.com/podmedic/podmedic/rules"
)

// TestProfileDaemon runs the daemon in-process (app.Run) against a real kube-apiserver holding
// $PODMEDIC_BENCH_PODS pods (default 5000) and writes heap and CPU profiles of its cold start
// into $PODMEDIC_BENCH_PROFILE. It only runs when that variable names a directory:
//
//	PODMEDIC_BENCH_PROFILE=/tmp/prof go test ./internal/bench -run TestProfileDaemon -v -timeout 15m
//	go tool pprof -sample_index=inuse_space -top /tmp/prof/heap.pprof
func TestProfileDaemon(t *testing.T) {
	dir := os.Getenv("PODMEDIC_BENCH_PROFILE")
	if dir == "" {
		t.Skip("set PODMEDIC_BENCH_PROFILE to a directory to profile the daemon")
	}
	ctx, env, pods, took := clusterWithPods(t, 5000)
	t.Logf("%d pods created in %s", pods, took)

	reg := rules.NewDefaultRegistry()
	cfg, err := config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), reg)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := heap()
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	ready := make(chan *app.Handle, 1)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- app.Run(rctx, app.Options{Config: cfg, Registry: reg, Kubeconfig: env.Kubeconfig, DataDir: t.TempDir(),
			Out: io.Discard, ConsoleFormat: "json", Logger: zap.NewNop(), Ready: func(h *app.Handle) { ready <- h }})
	}()
	var h *app.Handle
	select {
	case h = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Logf("ready after %s", time.Since(start))
	// The live heap while the first resync pass publishes every pod.
	for i := range 6 {
		time.Sleep(300 * time.Millisecond)
		runtime.GC()
		t.Logf("%s after ready: live heap %.1f MB", time.Duration(i+1)*300*time.Millisecond, float64(heap())/mb)
		if i == 1 {
			writeHeap(t, filepath.Join(dir, "heap-pass.pprof"))
		}
	}
	if err := h.WaitIdle(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("settled after %s", time.Since(start))
	pprof.StopCPUProfile()
	cpu.Close()
	runtime.GC()
	after := heap()
	t.Logf("heap in use: %.1f MB before, %.1f MB after: %.0f B/pod", float64(before)/mb, float64(after)/mb,
		float64(after-before)/float64(pods))
	writeHeap(t, filepath.Join(dir, "heap.pprof"))
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// clusterWithPods starts a kube-apiserver (stopped with the test) holding
// $PODMEDIC_BENCH_PODS running pods (def when unset) in namespace airflow, and says how many
// it holds and how long creating them took.
func clusterWithPods(t *testing.T, def int) (context.Context, *kubeenv.Env, int, time.Duration) {
	t.Helper()
	pods := def
	if s := os.Getenv("PODMEDIC_BENCH_PODS"); s != "" {
		pods, _ = strconv.Atoi(s)
	}
	kubeenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	t.Cleanup(cancel)
	env, err := kubeenv.Start(ctx, kubeenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	client, err := FastClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureNamespace(ctx, client, "airflow"); err != nil {
		t.Fatal(err)
	}
	took, err := CreatePods(ctx, client, "airflow", 0, pods, 32, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, env, pods, took
}

func heap() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestGCTraceDaemon runs the podmedic binary $PODMEDIC_BENCH_BIN with GODEBUG=gctrace=1
// against a real kube-apiserver holding $PODMEDIC_BENCH_PODS pods and logs its GC trace and
// memory as it starts, syncs and settles. It only runs when PODMEDIC_BENCH_BIN is set.
func TestGCTraceDaemon(t *testing.T) {
	bin := os.Getenv("PODMEDIC_BENCH_BIN")
	if bin == "" {
		t.Skip("set PODMEDIC_BENCH_BIN to a podmedic binary")
	}
	_, env, _, _ := clusterWithPods(t, 20000)
	d, err := StartDaemon(DaemonOptions{Bin: bin, Kubeconfig: env.Kubeconfig, DataDir: t.TempDir(), Env: append([]string{"GODEBUG=gctrace=1"}, strings.Fields(os.Getenv("PODMEDIC_BENCH_ENV"))...)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	for i := 0; i < 40; i++ {
		time.Sleep(500 * time.Millisecond)
		m, _ := ProcMemory(d.Pid())
		t.Logf("t=%4.1fs rss=%.1fMB anon=%.1fMB", time.Since(d.Started).Seconds(), kib(m.RSSKiB), kib(m.AnonKiB))
	}
	for _, l := range strings.Split(d.Log(), "\n") {
		if strings.HasPrefix(l, "gc ") {
			t.Log(l)
		}
	}
}

func writeHeap(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}
