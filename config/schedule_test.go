package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func TestLoadSchedules(t *testing.T) {
	cfg, err := Load("testdata/good/schedules.yaml", testRegistry())
	require.NoError(t, err)
	require.Len(t, cfg.Schedules, 4)

	stuck := cfg.Schedules[0]
	assert.Equal(t, JobSweep, stuck.Type())
	assert.Equal(t, time.UTC, stuck.Location, "timezone defaults to UTC")
	assert.Equal(t, at(t, "2026-11-20T08:10:00Z"), stuck.When.Next(at(t, "2026-11-20T08:03:17Z")))
	sw := stuck.Sweep
	assert.Equal(t, finding.InitStuck, sw.Kind)
	assert.Equal(t, 30*time.Minute, sw.OlderThan.Duration)
	assert.Equal(t, []string{"Pending"}, sw.Phases)
	assert.Equal(t, "spark-role=driver", sw.Match.LabelSelector.String())
	assert.Equal(t, WorkloadSpark, sw.Match.Workload)
	assert.Equal(t, SweepAction{Type: finding.ActionDeletePod, Mode: finding.ModeApprove, Params: ActionParams{GracePeriod: ptr(int64(30))}}, sw.Action)
	assert.Equal(t, 20, sw.Budget)
	assert.Equal(t, "oncall", stuck.Notify.Route)

	failed := cfg.Schedules[1]
	assert.True(t, failed.Disabled)
	assert.Equal(t, "Europe/Berlin", failed.Location.String())
	assert.Equal(t, at(t, "2026-11-20T08:15:00Z"), failed.When.Next(at(t, "2026-11-20T08:03:17Z")), "a leading seconds field")
	assert.Equal(t, 48*time.Hour, failed.Sweep.OlderThan.Duration)
	assert.Equal(t, DefaultSweepBudget, failed.Sweep.Budget)
	assert.Equal(t, WorkloadAny, failed.Sweep.Match.Workload)
	assert.NotNil(t, failed.Sweep.Match.LabelSelector)

	every := cfg.Schedules[2]
	assert.Equal(t, Every{Interval: 15 * time.Minute}, every.When)
	assert.Equal(t, finding.ModeNotify, every.Sweep.Action.Mode, "type notify defaults to mode notify")

	digest := cfg.Schedules[3]
	assert.Equal(t, JobDigest, digest.Type())
	assert.Equal(t, &DigestJob{Window: Duration{24 * time.Hour}, Top: 5}, digest.Digest)
	// 08:00 in Amsterdam is 07:00 UTC in winter and 06:00 UTC in summer.
	assert.Equal(t, at(t, "2026-11-21T07:00:00Z"), digest.When.Next(at(t, "2026-11-20T08:03:17Z")).UTC())
	assert.Equal(t, at(t, "2026-07-01T06:00:00Z"), digest.When.Next(at(t, "2026-06-30T08:03:17Z")).UTC())
	assert.Equal(t, "#data-oncall", digest.Notify.Channel)
}

func TestScheduleDefaults(t *testing.T) {
	cfg, err := Parse("rules.yaml", []byte(`
version: 1
airflow: {url: "http://airflow:8080"}
rules: [{name: failed, detect: {kind: TaskFailed}}]
schedules:
  - {name: a, cron: "@daily", digest: {}}
  - {name: b, cron: "@hourly", sweep: {kind: TaskFailed, action: {type: airflow-clear-task}}}
  - {name: c, cron: "@hourly", sweep: {kind: TaskFailed, action: {type: delete-pod}, budget: 3}}
`), testRegistry())
	require.NoError(t, err)
	assert.Equal(t, &DigestJob{Window: Duration{DefaultDigestWindow}, Top: DefaultDigestTop}, cfg.Schedules[0].Digest)
	b := cfg.Schedules[1].Sweep
	assert.Equal(t, finding.ModeApprove, b.Action.Mode)
	require.NotNil(t, b.Action.Params.OnlyFailed)
	assert.True(t, *b.Action.Params.OnlyFailed)
	assert.Equal(t, DefaultSweepBudget, b.Budget)
	assert.Zero(t, b.OlderThan.Duration)
	assert.Empty(t, b.Phases)
	assert.Equal(t, 3, cfg.Schedules[2].Sweep.Budget)
}

// TestEvery: @every is aligned to the Unix epoch, so every replica and every restart computes
// the same times.
func TestEvery(t *testing.T) {
	e := Every{Interval: 15 * time.Minute}
	assert.Equal(t, at(t, "2026-11-20T08:15:00Z"), e.Next(at(t, "2026-11-20T08:07:30Z")))
	assert.Equal(t, at(t, "2026-11-20T08:30:00Z"), e.Next(at(t, "2026-11-20T08:15:00Z")), "strictly after")
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	n := e.Next(at(t, "2026-11-20T08:07:30Z").In(berlin))
	assert.Equal(t, at(t, "2026-11-20T08:15:00Z"), n.UTC())
	assert.Equal(t, berlin, n.Location())

	s, err := ParseCron("@every 90m", time.UTC)
	require.NoError(t, err)
	assert.Equal(t, Every{Interval: 90 * time.Minute}, s)
	assert.Equal(t, at(t, "2026-11-20T09:00:00Z"), s.Next(at(t, "2026-11-20T08:07:30Z")), "multiples of 90m since 1970")
}

// TestSweepKindOfPods: a sweep acts on pods; a kind about claims is refused.
func TestSweepKindOfPods(t *testing.T) {
	reg := append(testRegistry(), DetectorSpec{Kind: finding.PVCPending, Object: ObjectPVC})
	_, err := Parse("rules.yaml", []byte(`version: 1
rules: [{name: pvc, detect: {kind: PVCPending}}]
schedules:
  - name: sweep
    cron: "@hourly"
    sweep: {kind: PVCPending, action: {type: delete-pod}}
`), reg)
	assert.EqualError(t, err, `rules.yaml:6:19: schedules[0].sweep.kind: PVCPending findings are about PersistentVolumeClaims; a sweep acts on pods (InitStuck, OOMKilled, TaskFailed)`)
}

// TestScheduleNeedsEnabledRule: a disabled rule does not count; an enabled one later does.
func TestScheduleNeedsEnabledRule(t *testing.T) {
	_, err := Parse("rules.yaml", []byte(`version: 1
rules:
  - {name: a, disabled: true, detect: {kind: TaskFailed}}
  - {name: b, detect: {kind: OOMKilled}}
schedules: [{name: s, cron: "@hourly", sweep: {kind: TaskFailed, action: {type: delete-pod}}}]
`), testRegistry())
	require.ErrorContains(t, err, "schedules[0].sweep.kind: no enabled rule detects TaskFailed")
	_, err = Parse("rules.yaml", []byte(`version: 1
rules:
  - {name: a, disabled: true, detect: {kind: TaskFailed}}
  - {name: b, detect: {kind: TaskFailed}}
schedules: [{name: s, cron: "@hourly", sweep: {kind: TaskFailed, action: {type: delete-pod}}}]
`), testRegistry())
	require.NoError(t, err)
}

// TestRootRulesYAMLSchedules: the examples of the default rules.yaml are what the issue asks
// for.
func TestRootRulesYAMLSchedules(t *testing.T) {
	cfg, err := Load(rootRules, DefaultRegistry())
	require.NoError(t, err)
	byName := map[string]Schedule{}
	for _, s := range cfg.Schedules {
		byName[s.Name] = s
	}
	now := at(t, "2026-11-20T08:03:17Z")

	ev := byName["sweep-evicted"]
	require.NotNil(t, ev.Sweep)
	assert.Equal(t, finding.Evicted, ev.Sweep.Kind)
	assert.Equal(t, time.Hour, ev.Sweep.OlderThan.Duration)
	assert.Equal(t, SweepAction{Type: finding.ActionDeletePod, Mode: finding.ModeAuto}, ev.Sweep.Action)
	assert.Equal(t, 50, ev.Sweep.Budget)
	assert.Equal(t, at(t, "2026-11-20T08:15:00Z"), ev.When.Next(now), "every 15 minutes")

	st := byName["sweep-init-stuck"]
	require.NotNil(t, st.Sweep)
	assert.Equal(t, finding.InitStuck, st.Sweep.Kind)
	assert.Equal(t, 30*time.Minute, st.Sweep.OlderThan.Duration)
	assert.Equal(t, finding.ModeApprove, st.Sweep.Action.Mode)
	assert.Equal(t, at(t, "2026-11-20T08:10:00Z"), st.When.Next(now), "every 10 minutes")

	d := byName["daily-digest"]
	require.NotNil(t, d.Digest)
	assert.Equal(t, &DigestJob{Window: Duration{DefaultDigestWindow}, Top: DefaultDigestTop}, d.Digest)
	assert.Equal(t, at(t, "2026-11-21T08:00:00Z"), d.When.Next(now), "daily at 08:00")
	assert.Equal(t, "oncall", d.Notify.Route)
}

// TestSchemaSchedules: the schema's enums for schedules are the loader's, a sweep's action
// takes the params a rule's does, and it rejects the bad schedule fixtures it can express.
func TestSchemaSchedules(t *testing.T) {
	s := rawSchema(t)
	defs := s["$defs"].(map[string]any)
	sweep := defs["sweep"].(map[string]any)["properties"].(map[string]any)
	var podKinds []string
	reg := DefaultRegistry()
	for _, k := range finding.Kinds() {
		if p, ok := reg.Spec(k); ok && p.Object == ObjectPod {
			podKinds = append(podKinds, string(k))
		}
	}
	assert.Equal(t, podKinds, enum(t, sweep["kind"].(map[string]any)), "sweep kinds = the pod kinds")
	assert.Equal(t, PodPhases(), enum(t, sweep["phases"].(map[string]any)["items"].(map[string]any)))
	assert.Equal(t, defs["action"].(map[string]any)["allOf"], defs["sweepAction"].(map[string]any)["allOf"],
		"a sweep's action allows what a rule's does")
	assert.Equal(t, toStrings(finding.ActionTypes()), enum(t, defs["sweepAction"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)))
	assert.Equal(t, toStrings(finding.Modes()), enum(t, defs["sweepAction"].(map[string]any)["properties"].(map[string]any)["mode"].(map[string]any)))

	sch := compileSchema(t)
	for _, name := range []string{"schedules_sweep"} {
		assert.Error(t, sch.Validate(yamlToJSON(t, filepath.Join("testdata", "bad", name+".yaml"))), name)
	}
	// Neither or both of sweep and digest.
	for _, doc := range []string{
		"version: 1\nrules: [{name: a, detect: {kind: OOMKilled}}]\nschedules: [{name: s, cron: '@daily'}]\n",
		"version: 1\nrules: [{name: a, detect: {kind: OOMKilled}}]\nschedules: [{name: s, cron: '@daily', digest: {}, sweep: {kind: OOMKilled, action: {type: notify}}}]\n",
	} {
		path := filepath.Join(t.TempDir(), "rules.yaml")
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
		assert.Error(t, sch.Validate(yamlToJSON(t, path)), doc)
	}
}

// TestActionOnAnObjectThatIsNotAPod: the actions that act on pods are refused for findings
// about other objects; notify applies to all.
func TestActionOnAnObjectThatIsNotAPod(t *testing.T) {
	reg := append(testRegistry(), DetectorSpec{Kind: finding.SparkAppFailed, Object: ObjectSparkApp})
	_, err := Parse("rules.yaml", []byte(`version: 1
rules: [{name: spark, detect: {kind: SparkAppFailed}, action: {type: delete-pod, mode: auto}}]
`), reg)
	assert.ErrorContains(t, err, `rules[0].action.type: SparkAppFailed findings are about SparkApplications, and delete-pod acts on pods: only notify applies to them`)
	_, err = Parse("rules.yaml", []byte(`version: 1
rules: [{name: spark, detect: {kind: SparkAppFailed}, action: {type: notify}}]
`), reg)
	assert.NoError(t, err)
}
