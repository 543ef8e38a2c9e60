package airflow

import (
	"errors"
	"strconv"

	"github.com/podmedic/podmedic/finding"
)

// ErrNoRun: the worker pod names neither a run id nor an execution date.
var ErrNoRun = errors.New("no Airflow task to clear: the pod names neither a run_id nor an execution_date")

// ClearParams are the params of an airflow-clear-task action for a task instance, as the API
// version can clear it: dag_run_id (or execution_date for workers of Airflow before 2.2, whose
// run is looked up), and for a mapped task map_index on v2; on v1, whose API takes task ids
// only and so selects every map index, only_failed is forced on.
func ClearParams(t *finding.AirflowTask, version string, onlyFailed bool) (map[string]string, error) {
	p := map[string]string{"dag_id": t.DagID, "task_id": t.TaskID}
	switch {
	case t.RunID != "":
		p["dag_run_id"] = t.RunID
	case t.ExecutionDate != "":
		p["execution_date"] = t.ExecutionDate
	default:
		return nil, ErrNoRun
	}
	if t.MapIndex != nil {
		if version == V2 {
			p["map_index"] = strconv.Itoa(*t.MapIndex)
		} else {
			onlyFailed = true
		}
	}
	p["only_failed"] = strconv.FormatBool(onlyFailed)
	return p, nil
}
