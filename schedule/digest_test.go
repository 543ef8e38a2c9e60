package schedule

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/overrides"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// night is a day of audit records: findings, proposal transitions and sweep reports.
func night(t *testing.T) []audit.Record {
	t.Helper()
	var out []audit.Record
	at := t0.Add(-20 * time.Hour)
	add := func(typ audit.Type, v any) {
		data, err := json.Marshal(v)
		require.NoError(t, err)
		out = append(out, audit.Record{Cluster: "prod-eu-1", Type: typ, Time: at, Data: data})
		at = at.Add(10 * time.Minute)
	}
	task := func(dag, taskID, run string) *finding.AirflowTask {
		return &finding.AirflowTask{DagID: dag, TaskID: taskID, RunID: run, TryNumber: 1}
	}
	for i := range 4 {
		add(audit.Finding, finding.Finding{Kind: finding.OOMKilled, Rule: "oom", Namespace: "airflow", Pod: "etl-load",
			Airflow: task("etl_daily", "load", []string{"r1", "r1", "r2", "r3"}[i])})
	}
	add(audit.Finding, finding.Finding{Kind: finding.SIGKILL, Rule: "sigkill", Namespace: "airflow", Pod: "etl-extract",
		Airflow: task("etl_hourly", "extract", "r1")})
	add(audit.Finding, finding.Finding{Kind: finding.TaskFailed, Rule: "task-failed", Namespace: "airflow", Pod: "etl-load-2",
		Airflow: task("etl_daily", "load", "r4")})
	for range 3 {
		add(audit.Finding, finding.Finding{Kind: finding.Evicted, Rule: "evicted", Namespace: "spark-jobs", Pod: "exec"})
	}
	add(audit.Finding, finding.Finding{Kind: finding.InitStuck, Rule: "init-stuck", Namespace: "spark-jobs", Pod: "driver"})
	add(audit.Finding, finding.Finding{Kind: finding.OOMKilled, Rule: "oom-other", Namespace: "reporting", Pod: "api"})

	prop := func(id string, typ finding.ActionType, state finding.ProposalState, by string, out *finding.Outcome) finding.Proposal {
		return finding.Proposal{ID: id, Finding: finding.Finding{Rule: "init-stuck", Namespace: "spark-jobs", Pod: "driver-" + id},
			Action: finding.Action{Type: typ, Mode: finding.ModeApprove}, State: state, CreatedAt: t0.Add(-3 * time.Hour),
			ExpiresAt: t0.Add(-150 * time.Minute), Target: finding.Target{Kind: "Pod", Namespace: "spark-jobs", Name: "driver-" + id},
			DecidedBy: by, Outcome: out}
	}
	// One approved and executed, one auto, one failed, one refused after approval, one denied,
	// one expired, and one still pending (in the store).
	add(audit.Proposal, prop("aaaaaaaaaaaaa", finding.ActionDeletePod, finding.StatePending, "", nil))
	add(audit.Proposal, prop("aaaaaaaaaaaaa", finding.ActionDeletePod, finding.StateApproved, "U1", nil))
	add(audit.Proposal, prop("aaaaaaaaaaaaa", finding.ActionDeletePod, finding.StateExecuted, "U1", &finding.Outcome{Result: finding.ResultExecuted}))
	add(audit.Proposal, prop("bbbbbbbbbbbbb", finding.ActionDeletePod, finding.StateExecuted, actions.AutoDecider, &finding.Outcome{Result: finding.ResultExecuted}))
	add(audit.Proposal, prop("ccccccccccccc", finding.ActionProposeMemoryLimit, finding.StateFailed, "U1", &finding.Outcome{Result: finding.ResultFailed, Message: "patch: conflict"}))
	add(audit.Proposal, prop("ddddddddddddd", finding.ActionDeletePod, finding.StateFailed, "U1", &finding.Outcome{Result: finding.ResultRefused, Reason: actions.ReasonCooldown, Message: "cooldown: podmedic acted on Pod x less than 30m0s ago"}))
	add(audit.Proposal, prop("eeeeeeeeeeeee", finding.ActionDeletePod, finding.StateDenied, "U2", nil))
	add(audit.Proposal, prop("fffffffffffff", finding.ActionDeletePod, finding.StateExpired, "podmedic", &finding.Outcome{Result: finding.ResultRefused}))
	add(audit.Schedule, Report{Job: "sweep-evicted", Type: JobSweepType, Mode: finding.ModeAuto, Acted: 10, Remaining: 20,
		Refused: map[string]int{"owner-policy": 2}})
	add(audit.Schedule, Report{Job: "sweep-evicted", Type: JobSweepType, Mode: finding.ModeAuto, Acted: 10, Remaining: 10})
	add(audit.Schedule, Report{Job: "daily-digest", Type: JobDigestType})
	// A storm of stuck pods against a rule's budget: 45 auto-mode deletions refused, one notice.
	add(audit.Refusal, audit.RefusalRecord{Rule: "init-stuck", Reason: actions.ReasonBudget, Action: finding.ActionDeletePod,
		Count: 45, First: at, Last: at.Add(time.Minute), Message: "budget exhausted: 5 actions of rule init-stuck in the last 10m0s"})
	// Before the window: not counted.
	old := out[0]
	old.Time = t0.Add(-25 * time.Hour)
	return append([]audit.Record{old}, out...)
}

// TestDigestRefusalReasonFromOutcome: a refused proposal is counted under the reason its
// outcome carries, whatever its message says; one without a reason (written before outcomes
// carried it) is "other".
func TestDigestRefusalReasonFromOutcome(t *testing.T) {
	var records []audit.Record
	for i, o := range []finding.Outcome{
		{Result: finding.ResultRefused, Reason: actions.ReasonTargetChanged, Message: "budget exhausted: (a pod named so)"},
		{Result: finding.ResultRefused, Message: "cooldown: podmedic acted on Pod x less than 30m0s ago"},
	} {
		p := finding.Proposal{ID: fmt.Sprintf("p%d", i), State: finding.StateFailed, Outcome: &o,
			Action: finding.Action{Type: finding.ActionDeletePod}}
		data, err := json.Marshal(p)
		require.NoError(t, err)
		records = append(records, audit.Record{Cluster: "c", Type: audit.Proposal, Time: t0, Data: data})
	}
	d := BuildDigest("c", t0.Add(-time.Hour), t0.Add(time.Hour), records, nil, 10)
	assert.Equal(t, 2, d.Actions.Refused)
	assert.ElementsMatch(t, []NameCount{{"target-changed", 1}, {"other", 1}}, d.Actions.RefusedBy)
}

func TestBuildDigest(t *testing.T) {
	pending := []finding.Proposal{
		{ID: "ggggggggggggg", State: finding.StatePending, Action: finding.Action{Type: finding.ActionDeletePod},
			Finding: finding.Finding{Rule: "sweep-init-stuck"}, Target: finding.Target{Kind: "Pod", Namespace: "spark-jobs", Name: "driver-9"},
			CreatedAt: t0.Add(-10 * time.Minute), ExpiresAt: t0.Add(20 * time.Minute)},
		{ID: "hhhhhhhhhhhhh", State: finding.StatePending, ExpiresAt: t0.Add(-time.Minute)}, // overdue: expires at the next maintenance
		{ID: "aaaaaaaaaaaaa", State: finding.StateExecuted},
	}
	d := BuildDigest("prod-eu-1", t0.Add(-24*time.Hour), t0, night(t), pending, 10)

	assert.Equal(t, 11, d.Incidents)
	assert.Equal(t, []KindCount{
		{Kind: finding.OOMKilled, Count: 5, Namespaces: []NameCount{{"airflow", 4}, {"reporting", 1}}},
		{Kind: finding.Evicted, Count: 3, Namespaces: []NameCount{{"spark-jobs", 3}}},
		{Kind: finding.SIGKILL, Count: 1, Namespaces: []NameCount{{"airflow", 1}}},
		{Kind: finding.InitStuck, Count: 1, Namespaces: []NameCount{{"spark-jobs", 1}}},
		{Kind: finding.TaskFailed, Count: 1, Namespaces: []NameCount{{"airflow", 1}}},
	}, d.ByKind)
	assert.Equal(t, []NameCount{{"airflow", 6}, {"spark-jobs", 4}, {"reporting", 1}}, d.ByNamespace)
	assert.Equal(t, []TaskCount{
		{DagID: "etl_daily", TaskID: "load", Count: 5, Kinds: []NameCount{{"OOMKilled", 4}, {"TaskFailed", 1}}, Runs: 4},
		{DagID: "etl_hourly", TaskID: "extract", Count: 1, Kinds: []NameCount{{"SIGKILL", 1}}, Runs: 1},
	}, d.TopTasks)
	assert.Equal(t, ActionCounts{Taken: 2, Failed: 1, Refused: 48, Denied: 1,
		ByType:    []TypeCount{{Type: finding.ActionDeletePod, Taken: 2, Auto: 1}, {Type: finding.ActionProposeMemoryLimit, Failed: 1}},
		RefusedBy: []NameCount{{"budget", 45}, {"owner-policy", 2}, {"cooldown", 1}}}, d.Actions)
	require.Len(t, d.Pending, 1)
	assert.Equal(t, "ggggggggggggg", d.Pending[0].ID)
	require.Len(t, d.Expired, 1)
	assert.Equal(t, "fffffffffffff", d.Expired[0].ID)
	assert.Equal(t, []SweepCount{{Job: "sweep-evicted", Runs: 2, Acted: 20, Refused: 2, Remaining: 10}}, d.Sweeps)

	assert.Equal(t, "Digest · prod-eu-1 · last 24h: 11 incidents, 2 actions taken, 1 pending approval", d.Title())
	golden(t, "digest.txt", d.Text())

	// Without the store, the pending proposals are those whose last transition is pending.
	d = BuildDigest("prod-eu-1", t0.Add(-24*time.Hour), t0, night(t), nil, 10)
	assert.Empty(t, d.Pending, "the only pending one in the window was decided")
}

func TestDigestEmpty(t *testing.T) {
	d := BuildDigest("", t0.Add(-24*time.Hour), t0, nil, []finding.Proposal{}, 10)
	assert.Equal(t, "Digest · all clusters · last 24h: 0 incidents, 0 actions taken, 0 pending approvals", d.Title())
	golden(t, "digest-empty.txt", d.Text())
}

// TestDigesterWindow: the digester reads from the start of the window and ends it at until.
func TestDigesterWindow(t *testing.T) {
	src := &fakeSource{records: night(t)}
	d, err := (&Digester{Source: src}).Build(context.Background(), "prod-eu-1", t0, 24*time.Hour, 3)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(-24*time.Hour), src.since)
	assert.Equal(t, "prod-eu-1", src.cluster)
	assert.Equal(t, 11, d.Incidents)
	assert.LessOrEqual(t, len(d.ByNamespace), 3)
}

type fakeSource struct {
	records []audit.Record
	cluster string
	since   time.Time
}

func (f *fakeSource) Records(_ context.Context, cluster string, since time.Time) ([]audit.Record, error) {
	f.cluster, f.since = cluster, since
	return f.records, nil
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update", t.Name())
	assert.Equal(t, string(want), got)
}

type fakeOverrides []overrides.Override

func (f fakeOverrides) List(context.Context) ([]overrides.Override, error) { return f, nil }

// TestDigestListsOverrides: the digest lists the memory overrides in force for its cluster,
// the soonest to expire first and flagged when within 3 days; expired, revoked and other
// clusters' are left out.
func TestDigestListsOverrides(t *testing.T) {
	ov := func(cluster, task, limit string, expires time.Time, revoked bool) overrides.Override {
		tk := overrides.Task{Cluster: cluster, Namespace: "airflow", DagID: "etl_daily", TaskID: task, Container: "base"}
		o := overrides.Override{ID: tk.ID(), Task: tk, Limit: limit, Request: "2Gi", ExpiresAt: expires}
		if revoked {
			o.RevokedAt = t0.Add(-time.Hour)
		}
		return o
	}
	list := fakeOverrides{
		ov("prod-eu-1", "load", "3Gi", t0.Add(20*24*time.Hour), false),
		ov("prod-eu-1", "aggregate", "6Gi", t0.Add(2*24*time.Hour), false),
		ov("prod-eu-1", "extract", "4Gi", t0.Add(-time.Hour), false),
		ov("prod-eu-1", "publish", "4Gi", t0.Add(time.Hour), true),
		ov("prod-us-1", "load", "8Gi", t0.Add(time.Hour), false),
	}
	d, err := (&Digester{Source: &fakeSource{}, Overrides: list}).Build(context.Background(), "prod-eu-1", t0, 24*time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, d.Overrides, 2)
	assert.Equal(t, []string{"aggregate", "load"}, []string{d.Overrides[0].TaskID, d.Overrides[1].TaskID})
	assert.Equal(t, []bool{true, false}, []bool{d.Overrides[0].Expiring, d.Overrides[1].Expiring})
	text := d.Text()
	assert.Contains(t, text, "Memory overrides in force: 2 (1 expire within 3 days)")
	assert.Contains(t, text, "airflow/etl_daily.aggregate base: limit 6Gi, request 2Gi until "+t0.Add(2*24*time.Hour).Format("2006-01-02"))

	none, err := (&Digester{Source: &fakeSource{}}).Build(context.Background(), "prod-eu-1", t0, 24*time.Hour, 10)
	require.NoError(t, err)
	assert.NotContains(t, none.Text(), "Memory overrides", "no section without overrides")
}
