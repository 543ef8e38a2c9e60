package actions

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/airflowenv"
)

const clearRun = "scheduled__2026-11-20T00:00:00+00:00"

// clearFinding is a TaskFailed finding of a worker pod with the airflow-clear-task action the
// rules engine fills: dag_run_id, or execution_date for a pre-2.2 worker (run ""), and
// map_index on v2 for a mapped task.
func clearFinding(pod, run string, mapIndex *int, version string, mode finding.Mode) *finding.Finding {
	f := &finding.Finding{Kind: finding.TaskFailed, Rule: "airflow-task-failed", Namespace: "airflow", Pod: pod, UID: "uid-" + pod,
		Airflow: &finding.AirflowTask{DagID: "etl_daily", TaskID: "load", RunID: run, TryNumber: 1, MapIndex: mapIndex}}
	a := finding.Action{Type: finding.ActionAirflowClearTask, Mode: mode, Params: map[string]string{
		"dag_id": "etl_daily", "task_id": "load", "only_failed": "true"}}
	if run != "" {
		a.Params["dag_run_id"] = run
	} else {
		f.Airflow.ExecutionDate = "2020-11-06T18:36:04.23191Z"
		a.Params["execution_date"] = f.Airflow.ExecutionDate
	}
	if mapIndex != nil && version == airflow.V2 {
		a.Params["map_index"] = strconv.Itoa(*mapIndex)
	}
	f.Action = &a
	return f
}

func clearRequest(f *finding.Finding) *Request {
	return &Request{ID: ProposalID(f), Finding: f, Action: *f.Action, Target: AirflowTarget(f, *f.Action), ApprovedBy: "U1"}
}

func airflowClient(t *testing.T, s *airflowenv.Server) *airflow.Client {
	c, err := airflow.New(s.URL(), s.Version(), 2*time.Second, airflow.Credentials{Username: airflowenv.DefaultUser, Password: airflowenv.DefaultPassword})
	require.NoError(t, err)
	return c
}

// TestAirflowClearTask: what an approved clear does and says, on Airflow 2 and 3, for a plain
// task, a mapped task and a worker from before run ids; and what it says when there was
// nothing to clear.
func TestAirflowClearTask(t *testing.T) {
	old := time.Date(2020, 11, 6, 18, 36, 4, 231910000, time.UTC)
	const oldRun = "scheduled__2020-11-06T18:36:04.231910+00:00"
	for _, v := range []string{airflow.V1, airflow.V2} {
		t.Run(v, func(t *testing.T) {
			s := airflowenv.Start(t, airflowenv.WithVersion(v))
			s.AddRun("etl_daily", clearRun, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
			s.AddRun("etl_daily", oldRun, old)
			x := AirflowClearTask{Client: airflowClient(t, s)}
			exec := func(f *finding.Finding) (string, error) {
				return x.Execute(context.Background(), clearRequest(f))
			}

			s.SetTask("etl_daily", clearRun, "load", -1, airflowenv.StateFailed)
			msg, err := exec(clearFinding("w1", clearRun, nil, v, finding.ModeApprove))
			require.NoError(t, err)
			assert.Equal(t, "Airflow cleared 1 task instance(s) of etl_daily.load in run "+clearRun+"; the scheduler runs it again", msg)

			msg, err = exec(clearFinding("w1", clearRun, nil, v, finding.ModeApprove))
			require.NoError(t, err)
			assert.Equal(t, "Airflow cleared nothing: task etl_daily.load of run "+clearRun+" is in state none, not failed", msg,
				"cleared already: its state, not a guess")

			f := clearFinding("w1", clearRun, nil, v, finding.ModeApprove)
			f.Action.Params["only_failed"], f.Action.Params["task_id"] = "false", "publish"
			msg, err = exec(f)
			require.NoError(t, err)
			assert.Equal(t, "Airflow cleared nothing: run "+clearRun+" has no task instance etl_daily.publish", msg)

			// A mapped task: map index 2 failed, 3 too.
			s.SetTask("etl_daily", clearRun, "fan", 2, airflowenv.StateFailed)
			s.SetTask("etl_daily", clearRun, "fan", 3, airflowenv.StateFailed)
			f = clearFinding("w2", clearRun, ptr(2), v, finding.ModeApprove)
			f.Action.Params["task_id"], f.Airflow.TaskID = "fan", "fan"
			msg, err = exec(f)
			require.NoError(t, err)
			st3, _ := s.TaskState("etl_daily", clearRun, "fan", 3)
			if v == airflow.V1 {
				assert.Equal(t, "Airflow cleared 2 task instance(s) of etl_daily.fan in run "+clearRun+"; the scheduler runs it again", msg)
				assert.Equal(t, airflowenv.StateNone, st3, "Airflow 2 clears every failed map index")
				assert.Contains(t, DescribeClear(f, *f.Action), "Airflow 2's API clears every failed map index of it, map index 2 included")
			} else {
				assert.Equal(t, "Airflow cleared 1 task instance(s) of etl_daily.fan[2] in run "+clearRun+"; the scheduler runs it again", msg)
				assert.Equal(t, airflowenv.StateFailed, st3, "Airflow 3 clears the one map index")
				assert.Equal(t, "clear Airflow task etl_daily.fan[2] of run "+clearRun+" (only_failed=true)", DescribeClear(f, *f.Action))
			}

			// A worker from before run ids: its run is looked up by execution date.
			s.SetTask("etl_daily", oldRun, "load", -1, airflowenv.StateFailed)
			f = clearFinding("w3", "", nil, v, finding.ModeApprove)
			assert.Equal(t, "etl_daily/@2020-11-06T18:36:04.23191Z/load", clearRequest(f).Target.Name)
			assert.Contains(t, DescribeClear(f, *f.Action), "of the run at execution date 2020-11-06T18:36:04.23191Z (looked up in Airflow")
			msg, err = exec(f)
			require.NoError(t, err)
			assert.Equal(t, "Airflow cleared 1 task instance(s) of etl_daily.load in run "+oldRun+
				" (the run at execution date 2020-11-06T18:36:04.23191Z); the scheduler runs it again", msg)
			call := s.CallsTo("/clearTaskInstances")
			assert.Equal(t, oldRun, call[len(call)-1].Body["dag_run_id"], "never the label-safe date as a run id")

			f.Airflow.ExecutionDate, f.Action.Params["execution_date"] = "2019-01-01T00:00:00Z", "2019-01-01T00:00:00Z"
			_, err = exec(f)
			require.ErrorContains(t, err, "run id unknown: DAG etl_daily has no run at 2019-01-01T00:00:00Z")
		})
	}
}

// TestAirflowClearCooldown: with a cooldown, two failed map indexes of one task are two
// targets on Airflow 3 (both cleared) and one on Airflow 2 (which clears the task as a whole:
// the second is refused by the cooldown).
func TestAirflowClearCooldown(t *testing.T) {
	for _, v := range []string{airflow.V1, airflow.V2} {
		t.Run(v, func(t *testing.T) {
			s := airflowenv.Start(t, airflowenv.WithVersion(v))
			s.AddRun("etl_daily", clearRun, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
			s.SetTask("etl_daily", clearRun, "load", 2, airflowenv.StateFailed)
			s.SetTask("etl_daily", clearRun, "load", 3, airflowenv.StateFailed)
			e := newServiceEnv(t, serviceConfig{policy: Policy{Cooldown: time.Hour}, airflow: airflowClient(t, s)})
			for _, i := range []int{2, 3} {
				require.NoError(t, e.svc.Handle(context.Background(), clearFinding("w"+strconv.Itoa(i), clearRun, ptr(i), v, finding.ModeAuto)))
			}
			var results []string
			for _, n := range e.notices.OfType(finding.NoticeFinding) {
				if n.Outcome != nil {
					results = append(results, n.Outcome.Result)
				}
			}
			if v == airflow.V2 {
				assert.Equal(t, []string{finding.ResultExecuted, finding.ResultExecuted}, results)
				assert.Len(t, s.CallsTo("/clearTaskInstances"), 2)
			} else {
				assert.Equal(t, []string{finding.ResultExecuted}, results)
				assert.Len(t, s.CallsTo("/clearTaskInstances"), 1, "the task was cleared as a whole")
				assert.Equal(t, []string{EventExecuted, EventRefused}, e.events.reasons(), "the second is refused")
				e.svc.FlushRefusals(context.Background())
				refusals := e.notices.OfType(finding.NoticeRefusal)
				require.Len(t, refusals, 1)
				require.NotNil(t, refusals[0].Outcome)
				assert.Equal(t, ReasonCooldown, refusals[0].Outcome.Reason)
			}
		})
	}
}

// TestAirflowDownOutcome: Airflow unreachable when an approved clear runs: the proposal fails
// with an outcome that says so, and the proposal (with its finding) stays in the store.
func TestAirflowDownOutcome(t *testing.T) {
	s := airflowenv.Start(t)
	c := airflowClient(t, s)
	s.Close()
	e := newServiceEnv(t, serviceConfig{airflow: c})
	e.svc.o.ExecTimeout = 2 * time.Second
	f := clearFinding("w1", clearRun, nil, airflow.V1, finding.ModeApprove)
	require.NoError(t, e.svc.Handle(context.Background(), f))
	p := e.only()
	got, err := e.svc.Decide(context.Background(), p.ID, "U1", true)
	require.NoError(t, err)
	assert.Equal(t, finding.StateFailed, got.State)
	assert.Contains(t, got.Outcome.Message, "connection refused")
	assert.Contains(t, got.Outcome.Message, "gave up")
	kept := e.only()
	assert.Equal(t, finding.StateFailed, kept.State)
	assert.Equal(t, "w1", kept.Finding.Pod, "the finding is kept with the proposal")
}
