package airflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ClearRequest asks Airflow to clear task instances of one DAG run so the scheduler runs them
// again.
type ClearRequest struct {
	DagID    string
	DagRunID string
	TaskID   string
	// MapIndex selects one map index of a mapped task: v2 only (Airflow 2's API takes task
	// ids as strings, which select every map index).
	MapIndex   *int
	OnlyFailed bool
}

// TaskInstance is a task instance as Airflow lists it.
type TaskInstance struct {
	DagID     string  `json:"dag_id"`
	DagRunID  string  `json:"dag_run_id"`
	TaskID    string  `json:"task_id"`
	MapIndex  *int    `json:"map_index,omitempty"`
	State     *string `json:"state,omitempty"`
	TryNumber int     `json:"try_number,omitempty"`
}

// StateName is the task instance's state, "none" when it has none (cleared, not scheduled).
func (t *TaskInstance) StateName() string {
	if t.State == nil || *t.State == "" {
		return "none"
	}
	return *t.State
}

// clearBody is the body of clearTaskInstances. dry_run defaults to true in Airflow and must
// be sent false; the fields are those both Airflow 2.4+ (ClearTaskInstanceFormSchema; dag_run_id
// came with apache/airflow#23516, before it the field is refused) and 3.x
// (ClearTaskInstancesBody) accept.
type clearBody struct {
	DryRun            bool   `json:"dry_run"`
	TaskIDs           []any  `json:"task_ids"`
	DagRunID          string `json:"dag_run_id"`
	OnlyFailed        bool   `json:"only_failed"`
	ResetDagRuns      bool   `json:"reset_dag_runs"`
	IncludeUpstream   bool   `json:"include_upstream"`
	IncludeDownstream bool   `json:"include_downstream"`
}

// ClearTaskInstances calls POST /dags/{dag_id}/clearTaskInstances and returns the task
// instances Airflow cleared (none when OnlyFailed is set and the task is not failed). The DAG
// run is reset too (reset_dag_runs), so a failed run goes back to running.
func (c *Client) ClearTaskInstances(ctx context.Context, r ClearRequest) ([]TaskInstance, error) {
	if r.DagID == "" || r.TaskID == "" || r.DagRunID == "" {
		return nil, fmt.Errorf("clear task: dag_id, task_id and dag_run_id are required (got %q, %q, %q)", r.DagID, r.TaskID, r.DagRunID)
	}
	var task any = r.TaskID
	if r.MapIndex != nil {
		if c.version == V1 {
			return nil, errors.New("clear task: Airflow 2's API takes no map index; clear the task (every failed map index) instead")
		}
		task = []any{r.TaskID, *r.MapIndex}
	}
	var out struct {
		TaskInstances []TaskInstance `json:"task_instances"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/dags/" + url.PathEscape(r.DagID) + "/clearTaskInstances",
		body: clearBody{TaskIDs: []any{task}, DagRunID: r.DagRunID, OnlyFailed: r.OnlyFailed, ResetDagRuns: true}, out: &out})
	return out.TaskInstances, err
}

// GetTaskInstance reads a task instance (of a map index of a mapped task when mapIndex is
// not nil).
func (c *Client) GetTaskInstance(ctx context.Context, dag, run, task string, mapIndex *int) (*TaskInstance, error) {
	path := "/dags/" + url.PathEscape(dag) + "/dagRuns/" + url.PathEscape(run) + "/taskInstances/" + url.PathEscape(task)
	if mapIndex != nil {
		path += "/" + strconv.Itoa(*mapIndex)
	}
	var ti TaskInstance
	if err := c.do(ctx, request{method: http.MethodGet, path: path, out: &ti}); err != nil {
		return nil, err
	}
	return &ti, nil
}

// ErrRunNotFound: no DAG run of the DAG at the logical date.
var ErrRunNotFound = errors.New("run id unknown")

// RunAt returns the id of the DAG run at a logical date (Airflow 2's execution_date): for
// workers of Airflow before 2.2, whose pods name the execution date but no run id. v1 filters
// by execution_date_gte/lte, v2 by logical_date_gte/lte (both inclusive).
func (c *Client) RunAt(ctx context.Context, dag string, at time.Time) (string, error) {
	field := "execution_date"
	if c.version == V2 {
		field = "logical_date"
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	q := url.Values{field + "_gte": {ts}, field + "_lte": {ts}}
	var out struct {
		DagRuns []struct {
			DagRunID string `json:"dag_run_id"`
		} `json:"dag_runs"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/dags/" + url.PathEscape(dag) + "/dagRuns", query: q, out: &out}); err != nil {
		return "", err
	}
	if len(out.DagRuns) == 0 || out.DagRuns[0].DagRunID == "" {
		return "", fmt.Errorf("%w: DAG %s has no run at %s", ErrRunNotFound, dag, ts)
	}
	return out.DagRuns[0].DagRunID, nil
}
