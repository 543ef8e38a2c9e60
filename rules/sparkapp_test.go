package rules

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
)

// TestSparkAppFailed replays SparkApplications as the operator leaves them: a run that FAILED
// because its driver was OOM-killed is one finding, the driver's OOMKilled (the most specific
// kind) naming the application; with the driver pod gone it is the application's
// SparkAppFailed, with the operator's message, the attempts, the executors and the Airflow
// task that created it. A run whose submission failed (the quota refused the driver) is a
// SparkAppFailed; COMPLETED and RUNNING ones are not findings. The same run replayed later
// keeps its key; a new submission is a new finding.
func TestSparkAppFailed(t *testing.T) {
	d := loadFixture(t, "testdata/replay/spark-apps.json")
	require.Len(t, d.Apps, 4)
	e := allRulesEngine(t)
	byKind := map[finding.Kind][]finding.Finding{}
	for _, f := range Replay(e, d, nightNow) {
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	require.Len(t, byKind[finding.SparkAppFailed], 2, "the failed submission and the refused schedule; the OOM-killed run is its driver's finding")
	require.Len(t, d.Schedules, 1)
	require.Len(t, byKind[finding.OOMKilled], 1)
	oom := byKind[finding.OOMKilled][0]
	assert.Equal(t, "spark-jobs/sales-daily-aggregate-20261120-driver/spark-kubernetes-driver", oom.Name())
	require.NotNil(t, oom.Spark)
	assert.Equal(t, "sales-daily-aggregate-20261120", oom.Spark.AppName, "the driver's finding names its application")

	// Without the driver pod (deleted since), the run is the application's finding.
	sales := e.EvaluateSparkApp(d.Apps[0], NewStaticView(nil, nil, nil), nightNow)
	require.Len(t, sales, 1)
	f := sales[0]
	assert.Equal(t, finding.SparkAppFailed, f.Kind)
	assert.Equal(t, "spark-jobs/sales-daily-aggregate-20261120", f.Name())
	assert.Empty(t, f.Pod)
	assert.Equal(t, &finding.SparkApp{Application: "sales-daily-aggregate-20261120", AppID: "spark-4c8b1e2f9a7d4b3c8e1f0a9b7c6d5e4f",
		State: "FAILED", Attempts: 1}, f.Spark)
	assert.Equal(t, []string{
		"SparkApplication sales-daily-aggregate-20261120 is FAILED after 1 execution attempt(s): driver container failed with ExitCode: 137, Reason: OOMKilled",
		"driver pod sales-daily-aggregate-20261120-driver (gone)",
		"executors: 2 FAILED, 1 COMPLETED",
		"created by Airflow task sales_daily.aggregate (try 1, SparkKubernetesOperator)",
		"terminated at 2026-11-20T02:11:42Z",
	}, f.Evidence)
	require.NotNil(t, f.Airflow)
	assert.Equal(t, []string{"sales_daily", "aggregate", ""}, []string{f.Airflow.DagID, f.Airflow.TaskID, f.Airflow.RunID},
		"the run_id label is the label-safe form: not taken for the run's id")
	assert.Equal(t, "0b6e2a4c-9d1f-4e3b-8a7c-5f2d1e0c9b8a", f.Occurrence, "one finding per run: the submission")

	// A driver that did not end in a failure of its own leaves the run to the application.
	driver := fixturePod(t, d, "spark-jobs", "sales-daily-aggregate-20261120-driver").DeepCopy()
	driver.Status.ContainerStatuses[0].State.Terminated.Reason = "Completed"
	driver.Status.ContainerStatuses[0].State.Terminated.ExitCode = 0
	driver.Status.Phase = "Succeeded"
	withDriver := e.EvaluateSparkApp(d.Apps[0], NewStaticView([]*corev1.Pod{driver}, nil, nil), nightNow)
	require.Len(t, withDriver, 1)
	assert.Equal(t, "driver pod sales-daily-aggregate-20261120-driver: container spark-kubernetes-driver terminated Completed (exit code 0)", withDriver[0].Evidence[1])

	backfill := byKind[finding.SparkAppFailed][0]
	assert.Equal(t, "SUBMISSION_FAILED", backfill.Spark.State)
	assert.Equal(t, 3, backfill.Spark.Attempts)
	assert.Contains(t, backfill.Evidence[0], "SparkApplication events-backfill-20261120 is SUBMISSION_FAILED after 3 submission attempt(s): failed to run spark-submit: ")
	assert.Contains(t, backfill.Evidence[0], "exceeded quota: spark-jobs-quota")
	for _, line := range backfill.Evidence {
		assert.NotContains(t, line, "driver pod", "no driver ever ran")
	}

	// Later, the same run keeps its key; a resubmission is another run.
	none := NewStaticView(nil, nil, nil)
	app := d.Apps[0]
	again := e.EvaluateSparkApp(app, none, nightNow.Add(time.Hour))
	require.Len(t, again, 1)
	assert.Equal(t, f.Key(), again[0].Key())
	next := *app
	next.Status.SubmissionID = "2f3e4d5c-6b7a-4891-a0b1-c2d3e4f5a6b7"
	rerun := e.EvaluateSparkApp(&next, none, nightNow)
	require.Len(t, rerun, 1)
	assert.NotEqual(t, f.Key(), rerun[0].Key())
	next.Status.AppState.State = "RUNNING"
	assert.Empty(t, e.EvaluateSparkApp(&next, none, nightNow), "running again: nothing to report")
}

// TestSparkMemoryProposal: the memory proposal for an OOM-killed driver of a known
// SparkApplication is in Spark's settings: its memoryOverhead raised by what the pod's limit
// is raised, in Spark's units, with the memory model in the evidence.
func TestSparkMemoryProposal(t *testing.T) {
	d := loadFixture(t, "testdata/replay/spark-apps.json")
	e := proposingEngine(t, finding.OOMKilled)
	driver := fixturePod(t, d, "spark-jobs", "sales-daily-aggregate-20261120-driver")
	var oom *finding.Finding
	for _, f := range e.EvaluatePod(driver, d.View(), nightNow) {
		if f.Kind == finding.OOMKilled {
			oom = &f
		}
	}
	require.NotNil(t, oom)
	require.NotNil(t, oom.Action)
	p := oom.Action.Params
	assert.Equal(t, "SparkApplication", p["target"])
	assert.Equal(t, "driver", p["role"])
	assert.Equal(t, "4g", p["memory"], "the heap is left as it is")
	limit := resource.MustParse(p["limit"])
	overhead, err := spark.ParseMemory(p["memoryOverhead"])
	require.NoError(t, err)
	assert.Equal(t, limit.Value(), 4<<30+overhead, "the pod's new limit is memory + memoryOverhead")
	assert.Contains(t, oom.Evidence, "Spark memory of the driver: pod limit 4505Mi = memory 4g + memoryOverhead 409m (Spark's default: max(384m, 10% of memory)); killed by the kernel, so the off-heap memory is raised: spec.driver.memoryOverhead 409m -> "+p["memoryOverhead"]+" (pod limit "+p["limit"]+")")

	// Without the application in the view, the proposal stays the pod's.
	bare := e.EvaluatePod(driver, NewStaticView(d.Pods, nil, nil), nightNow)
	require.NotEmpty(t, bare)
	assert.Empty(t, bare[0].Action.Params["target"])
}

// TestSparkHeapProposal: a Spark driver that failed (exit 1, not killed) under a rule proposing
// memory gets its proposal once its log is read: the heap of the role whose JVM ran out
// (the driver's own, or an executor's lost task), raised by what the policy raises the pod's
// limit, the overhead kept and written out. A failure the log does not show as the heap's gets
// none, and says why; an unreadable log too.
func TestSparkHeapProposal(t *testing.T) {
	d := loadFixture(t, "testdata/replay/spark-apps.json")
	e := proposingEngine(t, finding.TaskFailed)
	driver := fixturePod(t, d, "spark-jobs", "sales-daily-aggregate-20261120-driver").DeepCopy()
	for i := range driver.Status.ContainerStatuses {
		if term := driver.Status.ContainerStatuses[i].State.Terminated; term != nil {
			term.ExitCode, term.Reason = 1, "Error"
		}
	}
	failed := func(log string, logErr error) *finding.Finding {
		t.Helper()
		var tf *finding.Finding
		for _, f := range e.EvaluatePod(driver, d.View(), nightNow) {
			if f.Kind == finding.TaskFailed {
				tf = &f
			}
		}
		require.NotNil(t, tf)
		require.Nil(t, tf.Action, "planned only once the log is read")
		l := &LogTailer{Source: func(context.Context, string, string, string, int64, int64) ([]byte, error) {
			return []byte(log), logErr
		}}
		l.enrich(context.Background(), tf, e, d.View())
		return tf
	}

	own := failed("Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n", nil)
	require.NotNil(t, own.Action, "%v", own.Evidence)
	p := own.Action.Params
	assert.Equal(t, "SparkApplication", p["target"])
	assert.Equal(t, "driver", p["role"])
	assert.Equal(t, "409m", p["memoryOverhead"], "the default overhead, written out")
	memory, err := spark.ParseMemory(p["memory"])
	require.NoError(t, err)
	limit := resource.MustParse(p["limit"])
	assert.Greater(t, memory, int64(4<<30), "the heap is raised")
	assert.Equal(t, limit.Value(), memory+409<<20, "the pod's new limit is the new heap + the same overhead")
	assert.Contains(t, own.Evidence, "the driver's JVM ran out of heap (java.lang.OutOfMemoryError in the log): raise spec.driver.memory of SparkApplication sales-daily-aggregate-20261120 (the heap), not memoryOverhead")
	assert.Contains(t, own.Evidence, "Spark memory of the driver: pod limit 4505Mi = memory 4g + memoryOverhead 409m; the heap ran out, so it is raised: spec.driver.memory 4g -> "+p["memory"]+", memoryOverhead 409m (kept, written out: Spark's default would grow with the heap), pod limit "+p["limit"])

	ex := failed("WARN TaskSetManager: Lost task 3.0 in stage 2.0 (TID 41) (10.0.3.7 executor 2): java.lang.OutOfMemoryError: Java heap space\n", nil)
	require.NotNil(t, ex.Action, "%v", ex.Evidence)
	assert.Equal(t, "executor", ex.Action.Params["role"])
	app := d.View().SparkApp("spark-jobs", "sales-daily-aggregate-20261120")
	rm, err := app.MemoryOf("executor")
	require.NoError(t, err)
	exMemory, err := spark.ParseMemory(ex.Action.Params["memory"])
	require.NoError(t, err)
	assert.Greater(t, exMemory, rm.Memory, "the executors' heap is raised")
	assert.Equal(t, spark.FormatMemory(rm.Overhead), ex.Action.Params["memoryOverhead"])
	assert.Contains(t, ex.Evidence, "an executor's JVM ran out of heap (java.lang.OutOfMemoryError in the log): raise spec.executor.memory of SparkApplication sales-daily-aggregate-20261120 (the heap), not memoryOverhead")

	other := failed("Exception in thread \"main\" java.io.FileNotFoundException: s3a://sales/2026-11-20/_SUCCESS\n", nil)
	assert.Nil(t, other.Action)
	assert.Contains(t, other.Evidence, "no memory proposed: the log shows no java.lang.OutOfMemoryError; more memory would not mend this failure")

	unread := failed("", errors.New("the kubelet did not answer"))
	assert.Nil(t, unread.Action)
	assert.Contains(t, unread.Evidence, "no memory proposed: the log of spark-kubernetes-driver could not be read (the kubelet did not answer), and only it tells a heap that ran out")

	// Without the application in the view: no proposal, and why.
	tf := e.EvaluatePod(driver, NewStaticView(d.Pods, nil, nil), nightNow)
	require.NotEmpty(t, tf)
	e.planHeap(&tf[0], e.heapRule(&tf[0]), "driver", NewStaticView(d.Pods, nil, nil))
	assert.Nil(t, tf[0].Action)
	assert.Contains(t, tf[0].Evidence, "no memory proposed: SparkApplication sales-daily-aggregate-20261120 is not known (its CRD not installed or not watched)")
}

// TestScheduledSparkApplications: a schedule the operator refused is one SparkAppFailed finding
// per version of its spec, with the reason; a failed run of a schedule says which schedule, its
// next run and the runs it keeps; a valid schedule is no finding.
func TestScheduledSparkApplications(t *testing.T) {
	e := allRulesEngine(t)
	sched := &spark.ScheduledApplication{
		ObjectMeta: metav1.ObjectMeta{Namespace: "spark-jobs", Name: "sales-hourly", UID: "s-1", Generation: 3},
		Spec:       spark.ScheduledSpec{Schedule: "0 * * * *"},
		Status: spark.ScheduledStatus{ScheduleState: spark.ScheduleScheduled, NextRun: metav1.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC),
			PastFailedRunNames: []string{"sales-hourly-1763600400"}, PastSuccessfulRunNames: []string{"sales-hourly-1763596800"}},
	}
	ctl := true
	run := &spark.Application{ObjectMeta: metav1.ObjectMeta{Namespace: "spark-jobs", Name: "sales-hourly-1763604000", UID: "a-1",
		OwnerReferences: []metav1.OwnerReference{{Kind: "ScheduledSparkApplication", Name: "sales-hourly", UID: "s-1", Controller: &ctl}}},
		Status: spark.Status{SubmissionID: "r-1", AppState: spark.ApplicationState{State: spark.StateFailed, ErrorMessage: "driver pod failed"}}}
	v := NewStaticView(nil, nil, nil).WithApps([]*spark.Application{run}).WithSchedules([]*spark.ScheduledApplication{sched})

	assert.Empty(t, e.EvaluateScheduledSparkApp(sched, v, nightNow), "a valid schedule is no finding")
	found := e.EvaluateSparkApp(run, v, nightNow)
	require.Len(t, found, 1)
	assert.Contains(t, found[0].Evidence, `a run of ScheduledSparkApplication sales-hourly (schedule "0 * * * *", next run at 2026-11-20T03:00:00Z); failed runs it keeps: sales-hourly-1763600400; successful runs it keeps: sales-hourly-1763596800`)

	bad := *sched
	bad.Spec.Schedule = "0 * * * * MON"
	bad.Status = spark.ScheduledStatus{ScheduleState: spark.ScheduleFailedValidation, Reason: "failed to parse schedule 0 * * * * MON: expected exactly 5 fields, found 6"}
	got := e.EvaluateScheduledSparkApp(&bad, v, nightNow)
	require.Len(t, got, 1)
	f := got[0]
	assert.Equal(t, finding.SparkAppFailed, f.Kind)
	assert.Equal(t, "spark-jobs/sales-hourly", f.Name())
	assert.Equal(t, &finding.SparkApp{Application: "sales-hourly", State: "FailedValidation", Schedule: true}, f.Spark)
	assert.Equal(t, []string{`ScheduledSparkApplication sales-hourly (schedule "0 * * * * MON") failed the Spark operator's validation: failed to parse schedule 0 * * * * MON: expected exactly 5 fields, found 6; it creates no runs until its spec is mended`}, f.Evidence)
	again := bad
	again.ResourceVersion = "99" // the operator writes its status again: the same finding
	assert.Equal(t, f.Key(), e.EvaluateScheduledSparkApp(&again, v, nightNow)[0].Key())
	edited := bad
	edited.Generation = 4 // a new spec, refused again: a new finding
	assert.NotEqual(t, f.Key(), e.EvaluateScheduledSparkApp(&edited, v, nightNow)[0].Key())
}

// proposingEngine is an engine with every rule, the one of kind proposing memory.
func proposingEngine(t *testing.T, kind finding.Kind) *Engine {
	t.Helper()
	reg := NewDefaultRegistry()
	cfg := allRules(t, reg)
	for i := range cfg.Rules {
		if cfg.Rules[i].Detect.Kind == kind {
			cfg.Rules[i].Action = &config.RuleAction{Type: finding.ActionProposeMemoryLimit, Mode: finding.ModeApprove}
		}
	}
	e, err := NewEngine(cfg, reg, actions.MemoryPlanner{})
	require.NoError(t, err)
	return e
}
