//go:build faults

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/finding"
)

// TestFaultBudgetHoldsUnder10000StuckPods: 10,000 workers get stuck in Init at once (a shared
// volume stops mounting) against an auto-mode rule with a budget of 20 deletions per 10
// minutes. Exactly 20 pods are deleted in the window; every one of the 10,000 failures is
// reported once; the 9,980 refused deletions are reported in one refusal notice with their
// count.
func TestFaultBudgetHoldsUnder10000StuckPods(t *testing.T) {
	const pods, budget = 10000, 20
	begin := time.Now()
	env := cluster(t)
	ns := actionNamespace(t, env, "fault-budget")
	cfg := writeRules(t, ns, fmt.Sprintf(`version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action:
      type: delete-pod
      mode: auto
      params: {grace_period: 30}
      budget: {max: %d, window: 10m}
`, budget))
	pm := startPodmedic(t, env, t.TempDir(), "--config", cfg, "--resync", "10m")
	c := stormClient(t, env)
	uids := createStorm(t, c, pods, func(i int) *corev1.Pod {
		return stuckWorker(ns, fmt.Sprintf("spark-submit-%05d", i))
	})

	start := time.Now()
	var stuck corev1.PodStatus
	initStuck(time.Now().Add(-40 * time.Minute))(&stuck)
	stormWait(t, pods, 16, func(ctx context.Context, i int) error {
		return patchStatus(ctx, c, ns, fmt.Sprintf("spark-submit-%05d", i), stuck)
	}, nil)
	stormEnd := time.Now()
	t.Logf("wrote %d Init-stuck statuses in %s", pods, stormEnd.Sub(start).Round(time.Millisecond))

	n := waitCounted(t, 5*time.Minute, pods, func() int { return len(pm.all()) })
	t.Logf("%d findings %s after the storm", n, time.Since(stormEnd).Round(time.Millisecond))
	waitCounted(t, 90*time.Second, 1, func() int { return len(pm.noticesOf(finding.NoticeRefusal)) })
	time.Sleep(6 * time.Second) // a second refusal notice or late duplicates would show now
	tl := countFindings(uids, findingCount(finding.InitStuck, pm))

	list, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	deleted := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			deleted++
		}
	}
	deleted += pods - len(list.Items)
	executed := len(pm.findingNoticesWith(finding.ResultExecuted))
	events := countEvents(t, c, ns, actions.EventExecuted)
	refusals := pm.noticesOf(finding.NoticeRefusal)
	refused := 0
	for _, r := range refusals {
		refused += r.Count
	}
	t.Logf("%s; pods deleted %d, executed outcomes %d, PodmedicExecuted Events %d; refusal notices %d counting %d refusals",
		tl, deleted, executed, events, len(refusals), refused)
	for _, r := range refusals {
		t.Logf("refusal notice: count %d: %s", r.Count, r.Outcome.Message)
	}
	summary(t, begin, "%s; deleted %d (budget %d/10m), refusal notices %d counting %d; storm of statuses %s",
		tl, deleted, budget, len(refusals), refused, stormEnd.Sub(start).Round(time.Millisecond))
	require.Zero(t, tl.missing, "failures without a finding")
	require.Zero(t, tl.duplicated, "failures reported twice")
	require.Equal(t, budget, deleted, "the budget did not hold")
	require.Equal(t, budget, executed)
	require.Equal(t, budget, events)
	require.Len(t, refusals, 1, "refusals are reported once, not once per pod")
	require.Equal(t, pods-budget, refusals[0].Count)
	require.Contains(t, refusals[0].Outcome.Message, fmt.Sprintf("budget exhausted: %d actions of rule init-stuck in the last 10m0s", budget))
	pm.stop()
}

// patchStatus writes a pod's status in one merge patch of the status subresource.
func patchStatus(ctx context.Context, c kubernetes.Interface, ns, name string, st corev1.PodStatus) error {
	data, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{}, "status")
	return err
}

// findingNoticesWith are the finding notices whose action outcome has this result.
func (p *podmedic) findingNoticesWith(result string) []finding.Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	return noticesWhere(p.findingNotices, func(n finding.Notice) bool { return n.Outcome != nil && n.Outcome.Result == result })
}

// countEvents counts podmedic's Events of one reason in a namespace (series included).
func countEvents(t *testing.T, c kubernetes.Interface, ns, reason string) int {
	t.Helper()
	list, err := c.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	n := 0
	for _, e := range list.Items {
		if e.ReportingController == "podmedic" && e.Reason == reason {
			n++
			if e.Series != nil {
				n += int(e.Series.Count) - 1
			}
		}
	}
	return n
}
