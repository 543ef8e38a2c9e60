package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
)

// Options configure Run.
type Options struct {
	// Bin is the podmedic binary to measure.
	Bin string
	// BinDir holds kube-apiserver and etcd (kubeenv.BinDir() when empty).
	BinDir string
	// Pods is how many Airflow worker pods the cluster holds for the memory and cold-start
	// figures. Default 20000.
	Pods int
	// Observations through the bus for the throughput figure. Default 200000 (a few seconds
	// of each run, so that the heap's growth from nothing does not dominate).
	Observations int
	// Publishers and Workers of the throughput run. Default 8 and 4.
	Publishers, Workers int
	// Storm is the number of pods OOM-killed at once for the latency and storm figures.
	Storm int
	// AdmissionRate is the pod creations per second of the admission figure. Default 200.
	AdmissionRate int
	// DaemonArgs are added to every `podmedic run` (e.g. --workers 16).
	DaemonArgs []string
	// Skip names figures not to take: "throughput", "slack", "admission".
	Skip []string
	// MemoryEnvs are environment settings (e.g. GOMEMLIMIT=40MiB) to measure the memory with,
	// besides the default.
	MemoryEnvs []string
	// Settle is how long the daemon runs after its initial observations are handled before
	// its memory is read again. Default 10s.
	Settle time.Duration
	// Log receives progress lines.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.Pods <= 0 {
		o.Pods = 20000
	}
	if o.Observations <= 0 {
		o.Observations = 200000
	}
	if o.Publishers <= 0 {
		o.Publishers = 8
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Storm <= 0 {
		o.Storm = 500
	}
	if o.AdmissionRate <= 0 {
		o.AdmissionRate = 200
	}
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Report is the one JSON object `make bench` prints.
type Report struct {
	Machine    Machine         `json:"machine"`
	Pods       int             `json:"pods"`
	Setup      *Setup          `json:"setup,omitempty"`
	Memory     *MemoryFigure   `json:"memory"`
	ColdStart  *ColdStart      `json:"cold_start"`
	Throughput *ThroughputPair `json:"pipeline_throughput"`
	Latency    *Latency        `json:"latency"`
	Storm      *Storm          `json:"storm"`
	Admission  *Admission      `json:"admission"`
	// Pending says why a figure is null.
	Pending map[string]string `json:"pending,omitempty"`
	Errors  []string          `json:"errors,omitempty"`
}

// Machine describes where the figures were taken.
type Machine struct {
	CPUs int    `json:"cpus"`
	Go   string `json:"go"`
	Note string `json:"note"`
}

// Setup is how the cluster was filled.
type Setup struct {
	CreateSeconds  float64 `json:"create_seconds"`
	PodsPerSecond  float64 `json:"pods_per_s"`
	CreateBodySize int     `json:"create_body_bytes_per_pod"`
	StoredSize     int     `json:"stored_bytes_per_pod"`
}

// MemoryFigure is item (a).
type MemoryFigure struct {
	BaselineMB float64 `json:"baseline_rss_mb"`
	ReadyMB    float64 `json:"rss_at_ready_mb"`
	SettledMB  float64 `json:"rss_settled_mb"`
	PeakMB     float64 `json:"peak_rss_mb"`
	KBPerPod   float64 `json:"kb_per_pod"`
	TargetMB   float64 `json:"target_mb"`
	TargetKB   float64 `json:"target_kb_per_pod"`
	// Where the settled RSS goes: anonymous memory (heap, stacks), the mapped binary, and the
	// Go runtime's view (go_memstats_*): heap in use, the heap size the next GC starts at.
	SettledAnonMB  float64 `json:"rss_settled_anon_mb"`
	SettledFileMB  float64 `json:"rss_settled_file_mb"`
	BaselineAnonMB float64 `json:"baseline_rss_anon_mb"`
	GoHeapMB       float64 `json:"go_heap_inuse_mb"`
	GoNextGCMB     float64 `json:"go_next_gc_mb"`
	Note           string  `json:"note"`
	// Variants are the same measure with the Go runtime's memory settings in the environment.
	Variants []MemoryVariant `json:"variants,omitempty"`
}

// MemoryVariant is the memory of the daemon with the pods, run with Env.
type MemoryVariant struct {
	Env          string  `json:"env"`
	SettledMB    float64 `json:"rss_settled_mb"`
	AnonMB       float64 `json:"rss_settled_anon_mb"`
	PeakMB       float64 `json:"peak_rss_mb"`
	ReadySeconds float64 `json:"seconds_to_ready"`
}

// ColdStart is item (b).
type ColdStart struct {
	ReadySeconds   float64 `json:"seconds_to_ready"`
	SyncedSeconds  float64 `json:"seconds_to_synced_log"`
	HandledSeconds float64 `json:"seconds_to_initial_observations_handled"`
}

// ThroughputPair is item (c).
type ThroughputPair struct {
	// BusAndRules publishes in batches (the watchers' resync passes); BusAndRulesOneByOne one
	// observation per round trip (their change queue).
	BusAndRules         Throughput `json:"bus_and_rules"`
	BusAndRulesOneByOne Throughput `json:"bus_and_rules_one_at_a_time"`
	RulesOnly           Throughput `json:"rules_only"`
	TargetPerS          float64    `json:"target_obs_per_s"`
}

// Latency is item (d): a burst of OOM kills of one mapped Airflow task against a
// Slack-compatible server that does not throttle.
type Latency struct {
	Pods int `json:"pods"`
	// P50ms, P99ms and Maxms are, over the pods, the time from the status write (sent to the
	// apiserver) to the first chat call naming the pod.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
	// P50AfterAnswerMs and P99AfterAnswerMs are the same from the apiserver's answer to the
	// write (0 when the pod was named before its writer had the answer): without the
	// apiserver's queueing of 50 concurrent writers on the same 2 cores.
	P50AfterAnswerMs float64 `json:"p50_after_write_answered_ms"`
	P99AfterAnswerMs float64 `json:"p99_after_write_answered_ms"`
	// FirstMessageMs is from the first status write to the first chat message.
	FirstMessageMs float64 `json:"first_message_ms"`
	// DetectP50ms and DetectP99ms are from the status write to the finding on the console:
	// the pipeline without the Slack notifier's pacing and grouping.
	DetectP50ms float64 `json:"detect_p50_ms"`
	DetectP99ms float64 `json:"detect_p99_ms"`
	// WriteP99ms is the apiserver's answer time to the status writes (50 writers at once),
	// included in the figures above; WritesSeconds the time to write them all.
	WriteP99ms          float64 `json:"write_p99_ms"`
	WritesSeconds       float64 `json:"writes_s"`
	AllRepresentedAfter float64 `json:"all_represented_after_s"`
	ChatCalls           int     `json:"chat_calls"`
}

// Storm is item (e): the same burst with the server enforcing one message per second per
// channel, answering 429 beyond it.
type Storm struct {
	Pods int `json:"pods"`
	// AllRepresentedAfter is from the first status write until every pod is named in the
	// channel (0: not all of them within 60s).
	AllRepresentedAfter float64 `json:"all_represented_after_s"`
	// ChatCalls counts chat.postMessage and chat.update calls, the 429s among them too.
	ChatCalls      int     `json:"chat_calls"`
	RateLimited    int     `json:"rate_limited_429"`
	Lost           int     `json:"lost"`
	Duplicates     int     `json:"duplicates"`
	FirstMessageMs float64 `json:"first_message_ms"`
	DetectP99ms    float64 `json:"detect_p99_ms"`
}

const mb = 1 << 20

// Run takes every figure it can and returns the report; a figure that fails is null and its
// error listed.
func Run(ctx context.Context, o Options) *Report {
	o.defaults()
	r := &Report{
		Machine: Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(),
			Note: "shared machine: other work runs on the same cores, so rates and times are noisy (a few tens of %)"},
		Pods:    o.Pods,
		Pending: map[string]string{},
	}
	fail := func(what string, err error) {
		r.Errors = append(r.Errors, what+": "+err.Error())
		fmt.Fprintf(o.Log, "bench: %s: %v\n", what, err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(o.Log, "bench: "+format+"\n", args...) }

	tmp, err := os.MkdirTemp("", "podmedic-bench-")
	if err != nil {
		fail("setup", err)
		return r
	}
	defer os.RemoveAll(tmp)

	// (c) first, on a quiet machine.
	if slices.Contains(o.Skip, "throughput") {
		r.Pending["pipeline_throughput"] = "skipped"
	} else {
		logf("pipeline throughput: %d observations", o.Observations)
		if t, err := throughput(ctx, filepath.Join(tmp, "nats-throughput"), o); err != nil {
			fail("pipeline throughput", err)
		} else {
			r.Throughput = t
		}
	}

	binDir := o.BinDir
	if binDir == "" {
		if binDir, err = kubeenv.BinDir(); err != nil {
			fail("kube-apiserver", err)
			return r
		}
	}
	logf("starting etcd and kube-apiserver")
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	env, err := kubeenv.Start(sctx, kubeenv.Options{BinDir: binDir, Dir: filepath.Join(tmp, "kube")})
	cancel()
	if err != nil {
		fail("kube-apiserver", err)
		return r
	}
	defer env.Stop()

	// (a) baseline: an empty cluster.
	logf("baseline: podmedic with no pods")
	base, err := measureDaemon(ctx, o, env, filepath.Join(tmp, "nats-baseline"), 0, "")
	if err != nil {
		fail("baseline memory", err)
	}

	logf("creating %d pods", o.Pods)
	client, err := FastClient(env.Config)
	if err == nil {
		err = EnsureNamespace(ctx, client, "airflow")
	}
	if err != nil {
		fail("create pods", err)
		return r
	}
	took, err := CreatePods(ctx, client, "airflow", 0, o.Pods, 32, true, func(n int) { logf("  %d pods", n) })
	if err != nil {
		fail("create pods", err)
		return r
	}
	r.Setup = &Setup{CreateSeconds: took.Seconds(), PodsPerSecond: float64(o.Pods) / took.Seconds(),
		CreateBodySize: jsonSize(podgen.AirflowWorker("airflow", 7)), StoredSize: jsonSize(podgen.Stored("airflow", 7, false))}
	logf("created in %s", took.Round(time.Millisecond))

	// (a) and (b) with the pods.
	logf("cold start with %d pods", o.Pods)
	full, err := measureDaemon(ctx, o, env, filepath.Join(tmp, "nats-full"), o.Pods, "")
	if err != nil {
		fail("memory and cold start", err)
	} else {
		r.ColdStart = &full.cold
		r.Memory = &MemoryFigure{
			SettledMB: kib(full.settled.RSSKiB), ReadyMB: kib(full.ready.RSSKiB), PeakMB: kib(full.settled.PeakKiB),
			TargetMB: 80, TargetKB: 2.5, GoHeapMB: full.heapInuse / mb, GoNextGCMB: full.nextGC / mb,
			SettledAnonMB: kib(full.settled.AnonKiB), SettledFileMB: kib(full.settled.FileKiB),
			Note: "RSS of the podmedic process (embedded NATS included) from /proc/<pid>/status; kb_per_pod = (settled - baseline) / pods",
		}
		if base != nil {
			r.Memory.BaselineMB, r.Memory.BaselineAnonMB = kib(base.settled.RSSKiB), kib(base.settled.AnonKiB)
			r.Memory.KBPerPod = float64(full.settled.RSSKiB-base.settled.RSSKiB) * 1024 / 1000 / float64(o.Pods)
		}
		for i, e := range o.MemoryEnvs {
			logf("memory with %s", e)
			v, err := measureDaemon(ctx, o, env, filepath.Join(tmp, fmt.Sprintf("nats-variant-%d", i)), o.Pods, e)
			if err != nil {
				fail("memory with "+e, err)
				continue
			}
			r.Memory.Variants = append(r.Memory.Variants, MemoryVariant{Env: e, SettledMB: kib(v.settled.RSSKiB),
				AnonMB: kib(v.settled.AnonKiB), PeakMB: kib(v.settled.PeakKiB), ReadySeconds: v.cold.ReadySeconds})
		}
	}

	// (d) and (e), through the Slack notifier.
	if slices.Contains(o.Skip, "slack") {
		r.Pending["latency"], r.Pending["storm"] = "skipped", "skipped"
	} else {
		logf("latency and storm: %d OOM kills at once, twice", o.Storm)
		if lat, storm, err := slackFigures(ctx, o, env, client, filepath.Join(tmp, "slack")); err != nil {
			fail("latency and storm", err)
		} else {
			r.Latency, r.Storm = lat, storm
		}
	}
	// The webhook's admission figure, last: it adds pods to the cluster.
	if slices.Contains(o.Skip, "admission") {
		r.Pending["admission"] = "skipped"
	} else {
		logf("admission: %d pod creations/s without and with the webhook", o.AdmissionRate)
		a, err := admission(ctx, o, env, client, filepath.Join(tmp, "nats-admission"))
		if err != nil {
			fail("admission", err)
		}
		r.Admission = a
	}
	if len(r.Pending) == 0 {
		r.Pending = nil
	}
	return r
}

func kib(n int64) float64 { return float64(n) / 1024 }

func jsonSize(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

func throughput(ctx context.Context, dir string, o Options) (*ThroughputPair, error) {
	c, err := NewCorpus(2000, 50)
	if err != nil {
		return nil, err
	}
	e, err := DefaultEngine()
	if err != nil {
		return nil, err
	}
	out := &ThroughputPair{TargetPerS: 50000}
	if out.BusAndRules, err = Pipeline(ctx, dir+"-batched", c, e, o.Observations, 2, 256, o.Workers); err != nil {
		return nil, err
	}
	if out.BusAndRulesOneByOne, err = Pipeline(ctx, dir, c, e, o.Observations, o.Publishers, 0, o.Workers); err != nil {
		return nil, err
	}
	if out.RulesOnly, err = RulesOnly(c, e, 4*o.Observations, runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	return out, nil
}

type daemonRun struct {
	ready, settled    Memory
	heapInuse, nextGC float64
	cold              ColdStart
}

// measureDaemon starts podmedic against env, waits until it is ready and has handled the
// initial observation of every pod, lets it settle, and reads its memory.
func measureDaemon(ctx context.Context, o Options, env *kubeenv.Env, dataDir string, pods int, extraEnv string) (*daemonRun, error) {
	var envs []string
	if extraEnv != "" {
		envs = strings.Fields(extraEnv)
	}
	d, err := StartDaemon(DaemonOptions{Bin: o.Bin, Kubeconfig: env.Kubeconfig, DataDir: dataDir, Env: envs, Args: o.DaemonArgs})
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	readyAt, err := d.WaitReady(ctx, 3*time.Minute)
	if err != nil {
		return nil, err
	}
	run := &daemonRun{}
	run.cold.ReadySeconds = readyAt.Sub(d.Started).Seconds()
	if s := d.Synced(); !s.IsZero() {
		run.cold.SyncedSeconds = s.Sub(d.Started).Seconds()
	}
	if run.ready, err = ProcMemory(d.Pid()); err != nil {
		return nil, err
	}
	handled := `podmedic_bus_handled_total{outcome="ack"}`
	if err := d.WaitMetric(ctx, 3*time.Minute, func(m map[string]float64) bool { return m[handled] >= float64(pods) }); err != nil {
		return nil, fmt.Errorf("initial observations: %w\n%s", err, d.Log())
	}
	run.cold.HandledSeconds = time.Since(d.Started).Seconds()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.Settle):
	}
	if run.settled, err = ProcMemory(d.Pid()); err != nil {
		return nil, err
	}
	m := d.Metrics(ctx)
	run.heapInuse, run.nextGC = m["go_memstats_heap_inuse_bytes"], m["go_memstats_next_gc_bytes"]
	if strings.Contains(d.Log(), `"level":"error"`) {
		return run, fmt.Errorf("podmedic logged errors:\n%s", d.Log())
	}
	return run, nil
}
