package actions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/airflowenv"
	"github.com/podmedic/podmedic/overrides"
)

// overrideStore is the overrides bucket on a real (embedded) NATS server.
func overrideStore(t *testing.T) *overrides.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir(), Name: "actions-overrides", Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	kv, err := overrides.OpenBucket(ctx, b.JetStream(), 1, 0)
	require.NoError(t, err)
	return overrides.NewStore(kv, nil)
}

func airflowOOM(e *serviceEnv, mode finding.Mode) *finding.Finding {
	pod := e.createPod(stuckPod("airflow", "etl-load-1"))
	f := oomFinding(pod, mode, "3Gi", "2Gi")
	f.Airflow = &finding.AirflowTask{DagID: "etl_daily", TaskID: "load", RunID: "r1", TryNumber: 1}
	f.Action.Params["container"] = "base"
	return f
}

// TestServiceMemoryOverride: with overrides on, approving the memory proposal of an Airflow
// task stores its override (instead of advice): one action through the guard, its outcome
// naming the override.
func TestServiceMemoryOverride(t *testing.T) {
	ctx := context.Background()
	store := overrideStore(t)
	e := newServiceEnv(t, serviceConfig{overrides: store})
	f := airflowOOM(e, finding.ModeApprove)
	require.NoError(t, e.svc.Handle(ctx, f))
	p := e.only()
	assert.Empty(t, p.Advice, "no snippet to paste: podmedic applies it")

	got, err := e.svc.Decide(ctx, p.ID, "U0ALICE", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, got.State)
	id := overrides.Task{Cluster: "prod-eu", Namespace: "airflow", DagID: "etl_daily", TaskID: "load", Container: "base"}.ID()
	assert.Equal(t, "memory override "+id+": the next tries of Airflow task etl_daily.load run container base with limit 3Gi, request 2Gi until "+
		e.clock.now().Add(overrides.DefaultTTL).UTC().Format(time.DateOnly), got.Outcome.Message)
	assert.Equal(t, int32(1), e.execs.Load())
	o, err := store.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, []string{"3Gi", "2Gi", p.ID, "U0ALICE"}, []string{o.Limit, o.Request, o.ProposalID, o.ApprovedBy})
	assert.Equal(t, []string{"oom", "8Gi"}, []string{o.Rule, o.MaxLimit}, "the rule and its max_limit at approval")
	assert.Contains(t, e.events.reasons(), EventExecuted)
	assert.Equal(t, id, got.Outcome.Override, "the outcome names the override, for a Revoke button")

	msg, err := e.svc.RevokeOverride(ctx, id, "U0BOB")
	require.NoError(t, err)
	assert.Equal(t, "override "+id+" of etl_daily.load (container base) revoked: pods created from now on get the memory their task asks for", msg)
	o, err = store.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "U0BOB", o.RevokedBy)
	msg, err = e.svc.RevokeOverride(ctx, id, "U0CAROL")
	require.NoError(t, err)
	assert.Contains(t, msg, "was revoked already, by U0BOB")
	_, err = e.svc.RevokeOverride(ctx, "o-nope", "U0BOB")
	assert.ErrorIs(t, err, overrides.ErrNotFound)
}

// TestServiceMemoryOverrideDryRun: a dry run stores nothing and says what it would store.
func TestServiceMemoryOverrideDryRun(t *testing.T) {
	ctx := context.Background()
	store := overrideStore(t)
	e := newServiceEnv(t, serviceConfig{overrides: store, dryRun: true})
	require.NoError(t, e.svc.Handle(ctx, airflowOOM(e, finding.ModeAuto)))
	ns := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, ns, 1)
	assert.Equal(t, finding.ResultDryRun, ns[0].Outcome.Result)
	assert.Contains(t, ns[0].Outcome.Message, "store a memory override: the next tries of Airflow task etl_daily.load run container base with limit 3Gi, request 2Gi for 30d")
	all, err := store.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, all, "nothing stored in a dry run")
}

// TestServiceMemoryOverrideRerunsTheTask: approving the override also makes the task run
// again, by its state in Airflow: a failed task is cleared (its next try gets the override), a
// task up for retry needs nothing more, a task that succeeded meanwhile is left alone.
func TestServiceMemoryOverrideRerunsTheTask(t *testing.T) {
	for _, c := range []struct{ state, want string }{
		{airflowenv.StateFailed, "; the task had failed: Airflow cleared 1 task instance(s) of etl_daily.load in run r1; the scheduler runs it again"},
		{airflowenv.StateUpForRetry, "; the task is up_for_retry: its next try gets the override"},
		{airflowenv.StateSuccess, "; the task succeeded meanwhile: the override applies to its later runs"},
	} {
		t.Run(c.state, func(t *testing.T) {
			ctx := context.Background()
			af := airflowenv.Start(t, airflowenv.WithVersion(airflow.V2))
			af.AddRun("etl_daily", "r1", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
			af.SetTask("etl_daily", "r1", "load", -1, c.state)
			e := newServiceEnv(t, serviceConfig{overrides: overrideStore(t), airflow: airflowClient(t, af)})
			require.NoError(t, e.svc.Handle(ctx, airflowOOM(e, finding.ModeApprove)))
			got, err := e.svc.Decide(ctx, e.only().ID, "U0ALICE", true)
			require.NoError(t, err)
			require.Equal(t, finding.StateExecuted, got.State)
			assert.True(t, strings.HasPrefix(got.Outcome.Message, "memory override o-"), got.Outcome.Message)
			assert.True(t, strings.HasSuffix(got.Outcome.Message, c.want), got.Outcome.Message)
			cleared := len(af.CallsTo("/clearTaskInstances"))
			if c.state == airflowenv.StateFailed {
				assert.Equal(t, 1, cleared)
				st, _ := af.TaskState("etl_daily", "r1", "load", -1)
				assert.Equal(t, airflowenv.StateNone, st)
			} else {
				assert.Zero(t, cleared, "nothing to clear")
			}
		})
	}
}

// TestServiceFollowsTheNextTry: a pod the webhook gave the override tells the thread of the
// proposal that stored it when it starts and when it succeeds, each once; pods without the
// annotation, or still pending, tell nothing.
func TestServiceFollowsTheNextTry(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{overrides: overrideStore(t)})
	f := airflowOOM(e, finding.ModeApprove)
	require.NoError(t, e.svc.Handle(ctx, f))
	p := e.only()
	got, err := e.svc.Decide(ctx, p.ID, "U0ALICE", true)
	require.NoError(t, err)
	id := got.Outcome.Override
	require.NotEmpty(t, id)

	next := stuckPod("airflow", "etl-load-2")
	next.UID = "uid-try-2"
	next.Annotations = map[string]string{overrides.AnnotationOverride: id, "try_number": "2"}
	next.Spec.Containers[0].Name = "base"
	next.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("3Gi")}
	followed := func() []string {
		var out []string
		for _, n := range e.notices.OfType(finding.NoticeFollowUp) {
			require.Equal(t, p.ID, n.Proposal.ID, "told in the thread of the proposal that stored the override")
			out = append(out, n.Text)
		}
		return out
	}

	next.Status.Phase = corev1.PodPending
	require.NoError(t, e.svc.FollowPod(ctx, next))
	assert.Empty(t, followed(), "nothing to tell before the try runs")
	next.Status.Phase = corev1.PodRunning
	require.NoError(t, e.svc.FollowPod(ctx, next))
	require.NoError(t, e.svc.FollowPod(ctx, next), "a resync tells nothing new")
	next.Status.Phase = corev1.PodSucceeded
	require.NoError(t, e.svc.FollowPod(ctx, next))
	assert.Equal(t, []string{
		"try 2 of etl_daily.load started with memory limit 3Gi (override " + id + ", pod airflow/etl-load-2)",
		"try 2 of etl_daily.load succeeded with memory limit 3Gi (override " + id + ", pod airflow/etl-load-2)",
	}, followed())

	plain := stuckPod("airflow", "etl-load-3")
	plain.Status.Phase = corev1.PodRunning
	require.NoError(t, e.svc.FollowPod(ctx, plain))
	unknown := next.DeepCopy()
	unknown.UID, unknown.Annotations[overrides.AnnotationOverride] = "uid-other", "o-0000000000000000"
	require.NoError(t, e.svc.FollowPod(ctx, unknown), "an override removed since is no error")
	assert.Len(t, followed(), 2)
}
