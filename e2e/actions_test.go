package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/finding"
)

// TestActionAutoDeletesInitStuckPod runs the podmedic binary with an auto-mode rule: the
// stuck worker is deleted (it stays Terminating: there is no kubelet), the healthy one is not,
// the pod carries a PodmedicExecuted Event, and what the deleted pod does next — it gets stuck
// terminating — is neither reported nor acted on again.
func TestActionAutoDeletesInitStuckPod(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "act-auto")
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action: {type: delete-pod, mode: auto, params: {grace_period: 1}}
  - name: stuck-terminating
    detect: {kind: StuckTerminating, terminating_timeout: 1s}
    action: {type: delete-pod, mode: approve, params: {force: true}}
`)
	pm := startPodmedic(t, env, t.TempDir(), "--config", cfg, "--resync", "1s")
	c := env.Client
	now := time.Now().Truncate(time.Second)

	healthy := createPod(t, c, stuckWorker(ns, "spark-submit-ok"))
	writeStatus(t, c, healthy, running(now.Add(-time.Hour)))
	stuck := createPod(t, c, stuckWorker(ns, "spark-submit-stuck"))
	writeStatus(t, c, stuck, initStuck(now.Add(-40*time.Minute)))

	require.Eventually(t, func() bool { return deleted(t, c, ns, stuck.Name) }, 30*time.Second, 50*time.Millisecond,
		"the stuck pod was not deleted\n%s", pm.logs())
	require.Eventually(t, func() bool {
		return pm.metric(`podmedic_actions_total{outcome="executed",type="delete-pod"}`) == 1
	}, 10*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(strings.Join(podmedicEvents(t, c, ns, stuck.Name), ","), actions.EventExecuted)
	}, 10*time.Second, 100*time.Millisecond)
	note := eventNote(t, c, ns, stuck.Name, actions.EventExecuted)
	require.Contains(t, note, "pod "+ns+"/spark-submit-stuck deleted (grace period 1s)")
	require.Contains(t, note, "auto mode")
	require.Contains(t, note, "finding InitStuck, rule init-stuck: init container wait-for-history not complete after 40m")

	// The deleted pod stays Terminating past its grace period (no kubelet confirms it): the
	// StuckTerminating rule would propose a forced delete of it. podmedic knows it deleted
	// that pod itself and leaves it alone.
	require.Eventually(t, func() bool { return pm.metric("podmedic_findings_after_action_total") >= 1 },
		30*time.Second, 100*time.Millisecond, "the terminating pod was not re-evaluated\n%s", pm.logs())
	require.Zero(t, pm.metric(`podmedic_proposal_transitions_total{state="pending"}`), "a second action was proposed")
	require.Equal(t, 1.0, pm.metric(`podmedic_actions_total{outcome="executed",type="delete-pod"}`))
	require.False(t, deleted(t, c, ns, healthy.Name), "the healthy pod was deleted")
	require.Empty(t, podmedicEvents(t, c, ns, healthy.Name))
	pm.stop()
}

// TestActionApproveModeWaitsForApproval: in approve mode the stuck pod is only proposed for
// deletion; it is deleted after a human approves, once, with the Events of each step.
func TestActionApproveModeWaitsForApproval(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "act-approve")
	pm := runInProcess(t, env, writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck}
    action: {type: delete-pod, mode: approve}
`))
	c := env.Client
	stuck := createStuckWorker(t, c, ns, "spark-submit-stuck")

	p := pm.waitProposal(ns, stuck.Name, 30*time.Second)
	require.Equal(t, finding.StatePending, p.State)
	require.Equal(t, string(stuck.UID), p.Target.UID)
	require.NotEmpty(t, p.Target.ResourceVersion)
	pm.settle()
	require.Never(t, func() bool { return deleted(t, c, ns, stuck.Name) }, 2*time.Second, 100*time.Millisecond,
		"approve mode deleted the pod without an approval")
	n := pm.ofType(finding.NoticeFinding)
	require.Len(t, n, 1)
	require.Equal(t, p.ID, n[0].Proposal.ID)

	got, err := pm.h.Decide(context.Background(), p.ID, "inbox:alice", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, got.State)
	require.Equal(t, "inbox:alice", got.DecidedBy)
	require.Equal(t, "pod "+ns+"/spark-submit-stuck deleted", got.Outcome.Message)
	require.True(t, deleted(t, c, ns, stuck.Name))

	_, err = pm.h.Decide(context.Background(), p.ID, "inbox:bob", true)
	require.ErrorIs(t, err, actions.ErrAlreadyDecided)
	require.Contains(t, err.Error(), "was already approved by inbox:alice")

	require.Eventually(t, func() bool {
		return strings.Join(podmedicEvents(t, c, ns, stuck.Name), ",") == "PodmedicProposed,PodmedicApproved,PodmedicExecuted"
	}, 10*time.Second, 100*time.Millisecond, "events: %v", podmedicEvents(t, c, ns, stuck.Name))
	require.Contains(t, eventNote(t, c, ns, stuck.Name, actions.EventApproved), "Approved by inbox:alice")
	var states []finding.ProposalState
	for _, d := range pm.ofType(finding.NoticeDecision) {
		states = append(states, d.Proposal.State)
	}
	require.Equal(t, []finding.ProposalState{finding.StateApproved, finding.StateExecuted}, states)
}

// TestActionMemoryLimitPatchesDeployment: the approved proposal for an OOM-killed pod of a
// Deployment patches the Deployment's pod template: limit and request of that container.
func TestActionMemoryLimitPatchesDeployment(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "act-oom")
	pm := runInProcess(t, env, writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: oom
    detect: {kind: OOMKilled}
    action: {type: propose-memory-limit, mode: approve}
`))
	c := env.Client
	d, pod := deploymentWithPod(t, c, ns, "reports-api", "2Gi", "1Gi")
	writeStatus(t, c, pod, restartedAfterOOM(time.Now().Add(-10*time.Minute)))

	p := pm.waitProposal(ns, pod.Name, 30*time.Second)
	require.Equal(t, finding.Target{Kind: "Deployment", Namespace: ns, Name: "reports-api", UID: string(d.UID)}, p.Target)
	require.Equal(t, map[string]string{"container": "base", "limit": "3Gi", "request": "2Gi"}, p.Action.Params)
	require.Empty(t, p.Advice, "a Deployment is patched, not advised")
	limit, request := memoryOf(t, c, ns, "reports-api", "base")
	require.Equal(t, []string{"2Gi", "1Gi"}, []string{limit, request}, "patched before the approval")

	got, err := pm.h.Decide(context.Background(), p.ID, "U012AB3CD", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, got.State, got.Outcome.Message)
	limit, request = memoryOf(t, c, ns, "reports-api", "base")
	require.Equal(t, "3Gi", limit)
	require.Equal(t, "2Gi", request)
	proxyLimit, _ := memoryOf(t, c, ns, "reports-api", "proxy")
	require.Equal(t, "0", proxyLimit, "the other container was changed")
	require.Eventually(t, func() bool {
		return strings.Contains(strings.Join(podmedicEvents(t, c, ns, "reports-api"), ","), actions.EventExecuted)
	}, 10*time.Second, 100*time.Millisecond, "no PodmedicExecuted Event on the Deployment")
}

// TestActionBudgetHoldsUnderAStorm: 50 stuck pods against a rule budget of 5 per window:
// exactly 5 are deleted, and one refusal notice counts the other 45.
func TestActionBudgetHoldsUnderAStorm(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "act-budget")
	pm := runInProcess(t, env, writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck}
    action:
      type: delete-pod
      mode: auto
      budget: {max: 5, window: 1h}
`))
	c := env.Client
	// The pods are created first and become stuck together, as when a volume stops mounting.
	var names []string
	var pods []*corev1.Pod
	for i := range 50 {
		p := createPod(t, c, stuckWorker(ns, fmt.Sprintf("spark-submit-%02d", i)))
		pods, names = append(pods, p), append(names, p.Name)
	}
	started := time.Now().Add(-40 * time.Minute)
	for _, p := range pods {
		writeStatus(t, c, p, initStuck(started))
	}

	require.Eventually(t, func() bool { return len(pm.ofType(finding.NoticeRefusal)) > 0 }, 60*time.Second, 100*time.Millisecond,
		"no refusal notice")
	pm.settle()
	count := 0
	for _, name := range names {
		if deleted(t, c, ns, name) {
			count++
		}
	}
	require.Equal(t, 5, count, "the budget did not hold at 5")
	refusals := pm.ofType(finding.NoticeRefusal)
	require.Len(t, refusals, 1, "refusals are reported once, not once per pod")
	require.Equal(t, 45, refusals[0].Count)
	require.Contains(t, refusals[0].Outcome.Message, "budget exhausted: 5 actions of rule init-stuck in the last 1h0m0s")
	require.Len(t, pm.ofType(finding.NoticeFinding), 50, "every finding is reported")
}

// TestActionReplacedPodIsNotDeleted: a pod replaced (same name, new UID) between the
// proposal and its approval is not deleted; the proposal fails and says why.
func TestActionReplacedPodIsNotDeleted(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "act-replaced")
	pm := runInProcess(t, env, writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck}
    action: {type: delete-pod, mode: approve}
`))
	c := env.Client
	ctx := context.Background()
	old := createStuckWorker(t, c, ns, "spark-submit-0")
	p := pm.waitProposal(ns, old.Name, 30*time.Second)

	// Airflow (or an operator) replaces the pod under the same name.
	zero := int64(0)
	require.NoError(t, c.CoreV1().Pods(ns).Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
	require.Eventually(t, func() bool {
		_, err := c.CoreV1().Pods(ns).Get(ctx, old.Name, metav1.GetOptions{})
		return err != nil
	}, 10*time.Second, 50*time.Millisecond)
	fresh := createPod(t, c, stuckWorker(ns, "spark-submit-0"))
	require.NotEqual(t, old.UID, fresh.UID)

	got, err := pm.h.Decide(ctx, p.ID, "U012AB3CD", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateFailed, got.State)
	require.Equal(t, finding.ResultRefused, got.Outcome.Result)
	require.Equal(t, fmt.Sprintf("Pod %s/spark-submit-0 was replaced (uid %s -> %s); not touched", ns, old.UID, fresh.UID), got.Outcome.Message)
	require.False(t, deleted(t, c, ns, fresh.Name), "the new pod was deleted")
}

// TestActionDryRunChangesNothing runs the binary with --dry-run and auto-mode rules: the
// actions are reported as dry runs, the pod stays, the Deployment keeps its limits, and no
// Event is written.
func TestActionDryRunChangesNothing(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "act-dryrun")
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck}
    action: {type: delete-pod, mode: auto}
  - name: oom
    detect: {kind: OOMKilled}
    action: {type: propose-memory-limit, mode: auto}
`)
	pm := startPodmedic(t, env, t.TempDir(), "--config", cfg, "--dry-run", "--resync", "1s")
	c := env.Client
	stuck := createStuckWorker(t, c, ns, "spark-submit-stuck")
	_, pod := deploymentWithPod(t, c, ns, "reports-api", "2Gi", "1Gi")
	writeStatus(t, c, pod, restartedAfterOOM(time.Now().Add(-10*time.Minute)))

	require.Eventually(t, func() bool {
		return pm.metric(`podmedic_actions_total{outcome="dry-run",type="delete-pod"}`) == 1 &&
			pm.metric(`podmedic_actions_total{outcome="dry-run",type="propose-memory-limit"}`) == 1
	}, 30*time.Second, 100*time.Millisecond, "the actions were not taken as dry runs\n%s", pm.logs())
	require.Never(t, func() bool { return deleted(t, c, ns, stuck.Name) }, 2*time.Second, 100*time.Millisecond,
		"dry-run deleted the pod (resyncs included)")
	limit, request := memoryOf(t, c, ns, "reports-api", "base")
	require.Equal(t, []string{"2Gi", "1Gi"}, []string{limit, request}, "dry-run patched the Deployment")
	list, err := c.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, e := range list.Items {
		require.NotEqual(t, "podmedic", e.ReportingController, "dry-run wrote an Event: %s %s", e.Reason, e.Note)
	}
	require.Zero(t, pm.metric(`podmedic_actions_total{outcome="executed",type="delete-pod"}`))
	pm.stop()
}
