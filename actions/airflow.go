package actions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/finding"
)

// AirflowClearTask clears the failed task instance of a finding through Airflow's REST API, so
// the scheduler runs it again. Params (filled by the rules engine): dag_id, task_id,
// only_failed, and dag_run_id, or execution_date for workers of Airflow before 2.2 (the run
// is looked up by it), and map_index on Airflow 3 (v2) for a mapped task.
type AirflowClearTask struct {
	Client *airflow.Client
}

var (
	_ Executor  = AirflowClearTask{}
	_ Describer = AirflowClearTask{}
)

// clearParams are an airflow-clear-task action's parameters, read.
type clearParams struct {
	dag, task, run, executionDate string
	mapIndex                      *int
	onlyFailed                    bool
}

func readClearParams(a finding.Action) clearParams {
	p := a.Params
	c := clearParams{dag: p["dag_id"], task: p["task_id"], run: p["dag_run_id"], executionDate: p["execution_date"]}
	only, err := strconv.ParseBool(p["only_failed"])
	c.onlyFailed = err != nil || only
	if n, err := strconv.Atoi(p["map_index"]); err == nil && n >= 0 {
		c.mapIndex = &n
	}
	return c
}

// task names the task instance: dag.task, and its map index when one is selected.
func (c clearParams) taskName() string {
	s := c.dag + "." + c.task
	if c.mapIndex != nil {
		s += fmt.Sprintf("[%d]", *c.mapIndex)
	}
	return s
}

// resolveRun fills the run id from the execution date when the pod named none (a worker of
// Airflow before 2.2) and says how the run was found ("" when the pod named it).
func (c *clearParams) resolveRun(ctx context.Context, client *airflow.Client) (via string, err error) {
	if c.run != "" {
		return "", nil
	}
	if c.executionDate == "" {
		return "", errors.New("run id unknown: the worker pod names neither a run id nor an execution date")
	}
	at, err := time.Parse(time.RFC3339Nano, c.executionDate)
	if err != nil {
		return "", fmt.Errorf("run id unknown: execution date %q is not a time", c.executionDate)
	}
	if c.run, err = client.RunAt(ctx, c.dag, at); err != nil {
		return "", err
	}
	return fmt.Sprintf(" (the run at execution date %s)", c.executionDate), nil
}

// Execute implements Executor.
func (a AirflowClearTask) Execute(ctx context.Context, r *Request) (string, error) {
	c := readClearParams(r.Action)
	via, err := c.resolveRun(ctx, a.Client)
	if err != nil {
		return "", err
	}
	cleared, err := a.Client.ClearTaskInstances(ctx, airflow.ClearRequest{DagID: c.dag, DagRunID: c.run, TaskID: c.task,
		MapIndex: c.mapIndex, OnlyFailed: c.onlyFailed})
	if err != nil {
		return "", err
	}
	if len(cleared) == 0 {
		if !c.onlyFailed {
			return fmt.Sprintf("Airflow cleared nothing: run %s%s has no task instance %s", c.run, via, c.taskName()), nil
		}
		state := "not failed anymore"
		if ti, err := a.Client.GetTaskInstance(ctx, c.dag, c.run, c.task, c.mapIndex); err == nil {
			state = "in state " + ti.StateName() + ", not failed"
		}
		return fmt.Sprintf("Airflow cleared nothing: task %s of run %s%s is %s", c.taskName(), c.run, via, state), nil
	}
	return fmt.Sprintf("Airflow cleared %d task instance(s) of %s in run %s%s; the scheduler runs it again",
		len(cleared), c.taskName(), c.run, via), nil
}

// Describe implements Describer.
func (a AirflowClearTask) Describe(r *Request) string {
	return DescribeClear(r.Finding, r.Action)
}

// DescribeClear says what an airflow-clear-task action will clear.
func DescribeClear(f *finding.Finding, a finding.Action) string {
	c := readClearParams(a)
	run := "run " + c.run
	if c.run == "" {
		run = "the run at execution date " + c.executionDate + " (looked up in Airflow: the worker predates run ids)"
	}
	s := fmt.Sprintf("clear Airflow task %s of %s (only_failed=%t)", c.taskName(), run, c.onlyFailed)
	if c.mapIndex == nil && f != nil && f.Airflow != nil && f.Airflow.MapIndex != nil {
		s += fmt.Sprintf("; a mapped task: Airflow 2's API clears every failed map index of it, map index %d included", *f.Airflow.MapIndex)
	}
	return s
}

// AirflowTarget is the target of airflow-clear-task: the task instance, named
// dag_id/dag_run_id/task_id (task_id[map_index] when one map index is cleared; @execution_date
// in place of the run id for workers that predate run ids), in the worker pod's namespace.
// Cooldowns and budgets count by it.
func AirflowTarget(f *finding.Finding, a finding.Action) finding.Target {
	c := readClearParams(a)
	run := c.run
	if run == "" {
		run = "@" + c.executionDate
	}
	task := c.task
	if c.mapIndex != nil {
		task += fmt.Sprintf("[%d]", *c.mapIndex)
	}
	return finding.Target{Kind: "AirflowTaskInstance", Namespace: f.Namespace, Name: c.dag + "/" + run + "/" + task}
}
