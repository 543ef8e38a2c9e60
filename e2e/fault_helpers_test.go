//go:build faults

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
)

// stormClient is a client for storms: the shared one is limited to 100 QPS.
func stormClient(t *testing.T, env *kubeenv.Env) kubernetes.Interface {
	t.Helper()
	rc := rest.CopyConfig(env.Config)
	rc.QPS, rc.Burst = 2000, 4000
	c, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	return c
}

// storm runs fn for every index in [0, n) on workers goroutines, in the background,
// retrying each call (the apiserver may be restarting) for up to a minute. It returns the
// count of calls done so far and a channel that receives nil once all are done, or the error
// of a call that never succeeded.
func storm(n, workers int, fn func(ctx context.Context, i int) error) (*atomic.Int64, <-chan error) {
	ctx := context.Background()
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		errMu      sync.Mutex
		firstErr   error
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				deadline := time.Now().Add(time.Minute)
				for {
					err := fn(ctx, i)
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						errMu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("item %d: %w", i, err)
						}
						errMu.Unlock()
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
				done.Add(1)
			}
		})
	}
	result := make(chan error, 1)
	go func() {
		wg.Wait()
		result <- firstErr
	}()
	return &done, result
}

// stormWait runs storm and waits for it; at is called once from the test's goroutine when
// the storm has done half of its calls (the storm goes on meanwhile).
func stormWait(t *testing.T, n, workers int, fn func(ctx context.Context, i int) error, half func()) {
	t.Helper()
	done, result := storm(n, workers, fn)
	if half != nil {
		for done.Load() < int64(n/2) {
			select {
			case err := <-result:
				require.NoError(t, err)
				half()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		half()
	}
	require.NoError(t, <-result)
}

// createStorm creates n pods, pod(i) for each index, from 16 goroutines (retrying as storm
// does), logs how long that took, and returns the UIDs of the pods.
func createStorm(t *testing.T, c kubernetes.Interface, n int, pod func(i int) *corev1.Pod) []string {
	t.Helper()
	uids := make([]string, n)
	start := time.Now()
	stormWait(t, n, 16, func(ctx context.Context, i int) error {
		p, err := createPodRetrying(ctx, c, pod(i))
		if err == nil {
			uids[i] = string(p.UID)
		}
		return err
	}, nil)
	t.Logf("created %d pods in %s", n, time.Since(start).Round(time.Millisecond))
	return uids
}

// createPodsRetrying creates a pod, treating AlreadyExists as done (a retried create whose
// first attempt got through).
func createPodRetrying(ctx context.Context, c kubernetes.Interface, p *corev1.Pod) (*corev1.Pod, error) {
	got, err := c.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return c.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	}
	return got, err
}

// writeStatusOnce writes a pod's status through the status subresource, as the kubelet does.
func writeStatusOnce(ctx context.Context, c kubernetes.Interface, ns, name string, mutate func(*corev1.PodStatus)) error {
	cur, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	mutate(&cur.Status)
	_, err = c.CoreV1().Pods(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	return err
}

// kill9 kills the podmedic process with SIGKILL and waits until it is gone.
func (p *podmedic) kill9() {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
		p.t.Fatal("podmedic did not exit after SIGKILL")
	}
}

// metricSum sums a metric over every label set (the lines "name{...} v" and "name v").
func (p *podmedic) metricSum(name string) float64 {
	_, body := p.get("/metrics")
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		var v float64
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			fmt.Sscanf(line[i+1:], "%g", &v)
		}
		sum += v
	}
	return sum
}

// loggedExecutions returns the targets of the executed actions podmedic logged, in order.
func (p *podmedic) loggedExecutions() []string {
	var out []string
	for _, line := range strings.Split(p.logs(), "\n") {
		var l struct {
			Msg, Target, Result string
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "action" && l.Result == finding.ResultExecuted {
			out = append(out, l.Target)
		}
	}
	return out
}

// findingCount is how many findings of kind each pod UID got, over several processes.
func findingCount(kind finding.Kind, procs ...*podmedic) map[string]int {
	out := map[string]int{}
	for _, p := range procs {
		for _, f := range p.all() {
			if f.Kind == kind {
				out[f.UID]++
			}
		}
	}
	return out
}

// tally compares findings per UID with the failures written: missing (no finding) and
// duplicated (more than one) failures, and the total of findings.
type tally struct {
	failures, findings, missing, duplicated, extra int
	// missingUIDs and duplicatedUIDs name the first few.
	missingUIDs, duplicatedUIDs []string
}

func countFindings(uids []string, got map[string]int) tally {
	tl := tally{failures: len(uids)}
	want := map[string]bool{}
	for _, u := range uids {
		want[u] = true
		switch n := got[u]; {
		case n == 0:
			tl.missing++
			if len(tl.missingUIDs) < 10 {
				tl.missingUIDs = append(tl.missingUIDs, u)
			}
		case n > 1:
			tl.duplicated++
			if len(tl.duplicatedUIDs) < 10 {
				tl.duplicatedUIDs = append(tl.duplicatedUIDs, u)
			}
		}
	}
	for u, n := range got {
		tl.findings += n
		if !want[u] {
			tl.extra += n
		}
	}
	return tl
}

func (tl tally) String() string {
	s := fmt.Sprintf("failures in %d, findings out %d, missing %d, duplicated %d, unexpected %d",
		tl.failures, tl.findings, tl.missing, tl.duplicated, tl.extra)
	if len(tl.missingUIDs) > 0 {
		s += fmt.Sprintf(" (missing uids %v)", tl.missingUIDs)
	}
	if len(tl.duplicatedUIDs) > 0 {
		s += fmt.Sprintf(" (duplicated uids %v)", tl.duplicatedUIDs)
	}
	return s
}

// waitCounted polls count until it returns want or within passes, logging the progress every
// 15s; it returns the last count.
func waitCounted(t *testing.T, within time.Duration, want int, count func() int) int {
	t.Helper()
	start := time.Now()
	deadline, report := start.Add(within), start.Add(15*time.Second)
	n := count()
	for n < want && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		n = count()
		if time.Now().After(report) {
			t.Logf("... %d of %d after %s", n, want, time.Since(start).Round(time.Second))
			report = report.Add(15 * time.Second)
		}
	}
	return n
}

// oomRules is a notify-only configuration: OOMKilled findings on the console.
const oomRules = `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: oom
    detect: {kind: OOMKilled}
`

// oomStorm creates n Airflow workers (healthy at first), then writes an OOMKilled status to
// each from 16 goroutines, at most perSecond a second (0: as fast as the apiserver takes
// them); half, when set, is called once half of the statuses are written (the storm goes on
// meanwhile). It returns the UIDs of the failed pods.
func oomStorm(t *testing.T, c kubernetes.Interface, ns string, n, perSecond int, half func()) []string {
	t.Helper()
	uids := createStorm(t, c, n, func(i int) *corev1.Pod {
		return airflowWorker(ns, fmt.Sprintf("etl-load-%05d", i), "etl_daily", fmt.Sprintf("load_%d", i%50))
	})
	start := time.Now()
	failed := time.Now().Add(-3 * time.Minute).Truncate(time.Second)
	var tick <-chan time.Time
	if perSecond > 0 {
		tk := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tk.Stop()
		tick = tk.C
	}
	stormWait(t, n, 16, func(ctx context.Context, i int) error {
		if tick != nil {
			<-tick
		}
		return writeStatusOnce(ctx, c, ns, fmt.Sprintf("etl-load-%05d", i), oomKilled(failed))
	}, half)
	t.Logf("wrote %d OOMKilled statuses in %s", n, time.Since(start).Round(time.Millisecond))
	return uids
}

// summary logs a test's closing figures on one line that starts with "FAULT <test>:".
func summary(t *testing.T, start time.Time, format string, args ...any) {
	t.Helper()
	t.Logf("FAULT %s: %s (took %s)", t.Name(), fmt.Sprintf(format, args...), time.Since(start).Round(time.Second))
}
