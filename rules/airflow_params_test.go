package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// TestAirflowClearParams: what the airflow-clear-task action of a worker's finding says it
// will clear: the run id; for a worker from before run ids (Airflow 1.10-2.1) its execution
// date, never the label-safe date as a run id; for a mapped task on Airflow 3 the map index,
// and on Airflow 2 (whose API cannot name one) only the failed map indexes of the task.
func TestAirflowClearParams(t *testing.T) {
	worker := func(annotations, labels map[string]string) Input {
		p := pod("airflow", "w", map[string]string{"kubernetes_executor": "True", "dag_id": "etl_daily", "task_id": "load"})
		for k, v := range labels {
			p.Labels[k] = v
		}
		p.Annotations = annotations
		return Input{Pod: p}
	}
	only := false
	params := func(version string, in Input) (*finding.AirflowTask, map[string]string, []string) {
		r := rule("failed", finding.TaskFailed, config.Match{})
		r.Action = &config.RuleAction{Type: finding.ActionAirflowClearTask, Params: config.ActionParams{OnlyFailed: &only}}
		e := engine(t, &config.Config{Cluster: "c", Airflow: config.AirflowConfig{APIVersion: version}, Rules: []config.Rule{r}},
			always(finding.TaskFailed, 10))
		fs := e.EvaluatePod(in.Pod, NewStaticView(nil, nil, nil), time.Now())
		require.Len(t, fs, 1)
		if fs[0].Action == nil {
			return fs[0].Airflow, nil, fs[0].Evidence
		}
		return fs[0].Airflow, fs[0].Action.Params, fs[0].Evidence
	}

	a, p, _ := params("v1", worker(map[string]string{"run_id": "manual__2026-11-20T01:00:00+00:00"}, nil))
	assert.Equal(t, "manual__2026-11-20T01:00:00+00:00", a.RunID)
	assert.Equal(t, map[string]string{"dag_id": "etl_daily", "task_id": "load", "dag_run_id": "manual__2026-11-20T01:00:00+00:00", "only_failed": "false"}, p)

	// Airflow 2.0/2.1: an execution_date annotation (isoformat), or only the label-safe label.
	for _, in := range []Input{
		worker(map[string]string{"execution_date": "2020-11-06T18:36:04.231910+00:00"}, nil),
		worker(nil, map[string]string{"execution_date": "2020-11-06T18_36_04.231910_plus_00_00"}),
	} {
		a, p, _ = params("v1", in)
		assert.Empty(t, a.RunID, "an execution date is not a run id")
		assert.Equal(t, "2020-11-06T18:36:04.23191Z", a.ExecutionDate)
		assert.Equal(t, "execution date 2020-11-06T18:36:04.23191Z", a.Run())
		assert.Equal(t, "2020-11-06T18:36:04.23191Z", p["execution_date"])
		assert.NotContains(t, p, "dag_run_id")
	}

	mapped := worker(map[string]string{"run_id": "r1", "map_index": "2"}, nil)
	_, p, _ = params("v2", mapped)
	assert.Equal(t, "2", p["map_index"])
	assert.Equal(t, "false", p["only_failed"], "the rule's only_failed on Airflow 3")
	_, p, _ = params("v1", mapped)
	assert.NotContains(t, p, "map_index")
	assert.Equal(t, "true", p["only_failed"], "Airflow 2 clears every map index: the failed ones only")

	_, p, ev := params("v1", worker(nil, nil))
	assert.Nil(t, p, "no run named: no action")
	assert.Contains(t, ev, "no Airflow task to clear: the pod names neither a run_id nor an execution_date")
}
