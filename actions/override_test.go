package actions

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/finding"
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
	assert.Contains(t, e.events.reasons(), EventExecuted)
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
