package bench

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/app"
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
	pods := 5000
	if s := os.Getenv("PODMEDIC_BENCH_PODS"); s != "" {
		pods, _ = strconv.Atoi(s)
	}
	kubeenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Minute)
	defer cancel()
	env, err := kubeenv.Start(ctx, kubeenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
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
	t.Logf("%d pods created in %s", pods, took)

	reg := rules.NewDefaultRegistry()
	cfg, err := rules.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), reg)
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
	if err := h.Settle(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("settled after %s", time.Since(start))
	pprof.StopCPUProfile()
	cpu.Close()
	runtime.GC()
	after := heap()
	t.Logf("heap in use: %.1f MB before, %.1f MB after: %.0f B/pod", float64(before)/mb, float64(after)/mb,
		float64(after-before)/float64(pods))
	f, err := os.Create(filepath.Join(dir, "heap.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func heap() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
