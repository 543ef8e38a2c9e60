package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// Namespaces and channels of the two bursts: each burst is one Airflow task mapped over its
// pods (one storm group in the Slack notifier), in its own namespace and channel, so that the
// notifier's pacing of one does not hold back the other.
const (
	latencyNS, latencyChannel = "bench-latency", "bench-latency"
	stormNS, stormChannel     = "bench-storm", "bench-storm"
)

// benchRules routes the OOM kills of each burst to its channel; notify only, so every OOM kill
// is a finding notice (proposals are never folded into storm groups).
func benchRules(apiURL string) string {
	return `version: 1
cluster: bench
slack:
  api_url: ` + apiURL + `
  default_channel: "#` + latencyChannel + `"
  socket_mode: false
rules:
  - name: oom-storm
    description: Airflow task killed for exceeding its memory limit (OOMKilled).
    detect:
      kind: OOMKilled
    match:
      namespaces:
        include: [` + stormNS + `]
    notify:
      channel: "#` + stormChannel + `"
  - name: oom
    description: Airflow task killed for exceeding its memory limit (OOMKilled).
    detect:
      kind: OOMKilled
    notify:
      channel: "#` + latencyChannel + `"
`
}

// slackFigures runs a daemon with the Slack notifier against a Slack-compatible server and
// takes (d), a burst against the server unthrottled, and (e), a burst against the server
// enforcing one message per second per channel.
func slackFigures(ctx context.Context, o Options, env *kubeenv.Env, client kubernetes.Interface, dir string) (*Latency, *Storm, error) {
	t := &harnessTB{}
	defer t.close()
	var srv *slackenv.Server
	if err := t.run(func() { srv = slackenv.Start(t) }); err != nil {
		return nil, nil, err
	}
	config := filepath.Join(dir, "rules.yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(config, []byte(benchRules(srv.URL())), 0o644); err != nil {
		return nil, nil, err
	}
	out := &stampedLines{}
	d, err := StartDaemon(DaemonOptions{Bin: o.Bin, Kubeconfig: env.Kubeconfig, DataDir: filepath.Join(dir, "nats"), Stdout: out,
		Args: append([]string{"--config", config}, o.DaemonArgs...),
		Env:  []string{"SLACK_BOT_TOKEN=" + slackenv.DefaultBotToken, "SLACK_SIGNING_SECRET=podmedic-bench"}})
	if err != nil {
		return nil, nil, err
	}
	defer d.Stop()
	if _, err := d.WaitReady(ctx, 3*time.Minute); err != nil {
		return nil, nil, err
	}
	for _, ns := range []string{latencyNS, stormNS} {
		if err := EnsureNamespace(ctx, client, ns); err != nil {
			return nil, nil, err
		}
	}

	lat, err := burst(ctx, client, d, out, srv, latencyNS, latencyChannel, o.Storm)
	if err != nil {
		return nil, nil, fmt.Errorf("latency burst: %w", err)
	}
	srv.SetRateLimit(time.Second, 1)
	storm, err := burst(ctx, client, d, out, srv, stormNS, stormChannel, o.Storm)
	if err != nil {
		return nil, nil, fmt.Errorf("storm: %w", err)
	}
	return &Latency{
			Pods: lat.pods, P50ms: lat.chat.p(50), P99ms: lat.chat.p(99), Maxms: lat.chat.p(100),
			P50AfterAnswerMs: lat.chatAfterAnswer.p(50), P99AfterAnswerMs: lat.chatAfterAnswer.p(99),
			FirstMessageMs: lat.firstMessageMs, DetectP50ms: lat.detect.p(50), DetectP99ms: lat.detect.p(99),
			WriteP99ms: lat.write.p(99), WritesSeconds: lat.writesSeconds,
			AllRepresentedAfter: lat.allRepresented, ChatCalls: lat.chatCalls,
		}, &Storm{
			Pods: storm.pods, AllRepresentedAfter: storm.allRepresented, ChatCalls: storm.chatCalls,
			RateLimited: storm.rateLimited, Lost: storm.lost, Duplicates: storm.duplicates,
			DetectP99ms: storm.detect.p(99), FirstMessageMs: storm.firstMessageMs,
		}, nil
}

// burstResult is what one burst of OOM kills gave.
type burstResult struct {
	pods int
	// chat is, per pod, the time from its status write to the first chat call naming it;
	// detect the time to its finding on the console.
	chat, detect           millis
	chatAfterAnswer        millis  // from the write's answer to the first chat call (>= 0)
	write                  millis  // each status write, sent to answered
	writesSeconds          float64 // from the first write sent to the last answered
	firstMessageMs         float64 // from the first status write to the first chat call
	allRepresented         float64 // seconds from the first status write until every pod is named
	chatCalls, rateLimited int     // chat.postMessage and chat.update calls; those answered 429
	lost, duplicates       int
}

// burst creates n running Airflow workers of one mapped task in namespace, waits until the
// daemon has seen them, OOM-kills them all at once through the status subresource, and
// watches the chat calls until every pod is named and the channel is quiet.
func burst(ctx context.Context, client kubernetes.Interface, d *Daemon, out *stampedLines, srv *slackenv.Server, namespace, channel string, n int) (*burstResult, error) {
	pods := make([]*corev1.Pod, n)
	if err := eachIndex(n, 32, func(i int) error {
		p := burstPod(namespace, i)
		created, err := retry(ctx, func() (*corev1.Pod, error) {
			return client.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{})
		})
		if err == nil {
			created.Status = podgen.RunningStatus(i)
			created, err = retry(ctx, func() (*corev1.Pod, error) {
				return client.CoreV1().Pods(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
			})
		}
		if err != nil {
			return err
		}
		pods[i] = created
		return nil
	}); err != nil {
		return nil, err
	}
	// Let the daemon publish and handle the new pods, so the burst meets an idle pipeline.
	if err := waitQuiet(ctx, d, 2*time.Second, time.Minute); err != nil {
		return nil, err
	}

	before := len(srv.Calls())
	stdoutBefore := out.len()
	// Latencies count from when each status write was sent: conservative, the apiserver's own
	// handling of the concurrent writes is included (the daemon may see a write before its
	// writer has the answer).
	sent, acked := make([]time.Time, n), make([]time.Time, n)
	start := time.Now()
	if err := eachIndex(n, 50, func(i int) error {
		p := pods[i].DeepCopy()
		p.Status = podgen.OOMKilledStatus(i, time.Now())
		sent[i] = time.Now()
		if _, err := retry(ctx, func() (*corev1.Pod, error) {
			return client.CoreV1().Pods(namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}); err != nil {
			return err
		}
		acked[i] = time.Now()
		return nil
	}); err != nil {
		return nil, err
	}

	r := &burstResult{pods: n}
	var lastAck time.Time
	for i := range n {
		r.write = append(r.write, ms(acked[i].Sub(sent[i])))
		if acked[i].After(lastAck) {
			lastAck = acked[i]
		}
	}
	r.writesSeconds = lastAck.Sub(start).Seconds()
	names := make([]string, n)
	index := map[string]int{}
	for i, p := range pods {
		names[i] = p.Name
		index[p.Name] = i
	}
	chatAt := make([]time.Time, n)
	represented, seen := 0, before
	deadline := time.Now().Add(60 * time.Second)
	var lastCall time.Time
	for {
		calls := srv.Calls()
		for _, c := range calls[seen:] {
			if c.Method != "chat.postMessage" && c.Method != "chat.update" {
				continue
			}
			r.chatCalls++
			lastCall = c.At
			if c.Status == 429 {
				r.rateLimited++
				continue
			}
			if !c.OK() {
				continue
			}
			if r.firstMessageMs == 0 {
				r.firstMessageMs = ms(c.At.Sub(start))
			}
			for i, name := range names {
				if chatAt[i].IsZero() && mentions(c.Text, c.Blocks, name) {
					chatAt[i] = c.At
					represented++
				}
			}
		}
		seen = len(calls)
		// Done when every pod is named and the channel has been quiet for longer than the
		// notifier's update interval (5s), or at the deadline.
		if (represented == n && time.Since(lastCall) > 6*time.Second) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	var last time.Time
	for i := range n {
		if !chatAt[i].IsZero() {
			r.chat = append(r.chat, ms(chatAt[i].Sub(sent[i])))
			r.chatAfterAnswer = append(r.chatAfterAnswer, max(0, ms(chatAt[i].Sub(acked[i]))))
			if chatAt[i].After(last) {
				last = chatAt[i]
			}
		}
	}
	if represented == n {
		r.allRepresented = last.Sub(start).Seconds()
	}

	// Findings on the console: the pipeline's own latency, without Slack's pacing.
	for _, l := range out.since(stdoutBefore) {
		var f struct {
			Pod string `json:"pod"`
		}
		if json.Unmarshal(l.text, &f) == nil {
			if i, ok := index[f.Pod]; ok && !sent[i].IsZero() {
				r.detect = append(r.detect, ms(l.at.Sub(sent[i])))
				sent[i] = time.Time{} // the first line only
			}
		}
	}

	// The channel as it stands: every pod named in exactly one message (the group message or a
	// thread reply).
	id := srv.ChannelID(channel)
	count := make([]int, n)
	for _, m := range srv.Messages() {
		if m.Channel != id {
			continue
		}
		for i, name := range names {
			if mentions(m.Text, m.Blocks, name) {
				count[i]++
			}
		}
	}
	for _, c := range count {
		switch {
		case c == 0:
			r.lost++
		case c > 1:
			r.duplicates++
		}
	}
	return r, nil
}

// mentions tells whether a message's text or blocks name a pod.
func mentions(text string, blocks []byte, pod string) bool {
	return strings.Contains(text, pod) || bytes.Contains(blocks, []byte(pod))
}

// burstPod is the i-th pod of a burst: one Airflow task mapped over the burst's pods.
func burstPod(namespace string, i int) *corev1.Pod {
	p := podgen.AirflowWorker(namespace, i)
	p.Name = fmt.Sprintf("%s-explode-%04d", namespace, i)
	p.Spec.NodeName = podgen.Node(i)
	for _, m := range []map[string]string{p.Labels, p.Annotations} {
		m["dag_id"], m["task_id"], m["map_index"] = "nightly_backfill", "explode_partitions", fmt.Sprint(i)
	}
	p.Annotations["run_id"] = "manual__2026-11-20T02:00:00+00:00"
	return p
}

// waitQuiet waits until the daemon's handled observations have not changed for quiet.
func waitQuiet(ctx context.Context, d *Daemon, quiet, within time.Duration) error {
	const handled = `podmedic_bus_handled_total{outcome="ack"}`
	last, since := -1.0, time.Now()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if v := d.Metrics(ctx)[handled]; v != last {
			last, since = v, time.Now()
		} else if time.Since(since) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the daemon did not settle within %s", within)
}

// millis are durations in milliseconds.
type millis []float64

// p is the q-th percentile (nearest rank); 0 when empty.
func (m millis) p(q float64) float64 {
	if len(m) == 0 {
		return 0
	}
	s := slices.Clone(m)
	sort.Float64s(s)
	k := int(q/100*float64(len(s))+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// stampedLines is an io.Writer that keeps the lines written to it with their arrival time.
type stampedLines struct {
	mu    sync.Mutex
	buf   []byte
	lines []stampedLine
}

type stampedLine struct {
	at   time.Time
	text []byte
}

func (s *stampedLines) Write(p []byte) (int, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	consumed := 0
	for {
		i := bytes.IndexByte(s.buf[consumed:], '\n')
		if i < 0 {
			break
		}
		s.lines = append(s.lines, stampedLine{at: now, text: bytes.Clone(s.buf[consumed : consumed+i])})
		consumed += i + 1
	}
	s.buf = append(s.buf[:0], s.buf[consumed:]...)
	return len(p), nil
}

func (s *stampedLines) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

func (s *stampedLines) since(i int) []stampedLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines[i:])
}

// harnessTB lets the harness, which is not a test, start slackenv's server: it keeps the
// cleanups, and turns a fatal error into a panic that run recovers.
type harnessTB struct {
	testing.TB
	cleanups []func()
}

func (t *harnessTB) Helper()             {}
func (t *harnessTB) Cleanup(f func())    { t.cleanups = append(t.cleanups, f) }
func (t *harnessTB) Logf(string, ...any) {}
func (t *harnessTB) Fatalf(format string, args ...any) {
	panic(harnessFatal(fmt.Sprintf(format, args...)))
}
func (t *harnessTB) Fatal(args ...any) { panic(harnessFatal(fmt.Sprint(args...))) }

type harnessFatal string

func (t *harnessTB) run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if msg, ok := r.(harnessFatal); ok {
				err = fmt.Errorf("%s", string(msg))
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

func (t *harnessTB) close() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
