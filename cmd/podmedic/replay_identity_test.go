package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplayBindsAirflowIdentityToItsNamespaces: with airflow.namespaces set, a pod elsewhere
// that carries an Airflow worker's labels and a DAG's annotations gets no airflow-clear-task
// for that DAG, and its finding says why; the same pod in Airflow's namespace does.
func TestReplayBindsAirflowIdentityToItsNamespaces(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(`version: 1
airflow:
  url: http://airflow-webserver.airflow.svc:8080
  namespaces: [airflow]
rules:
  - name: failed
    detect: {kind: TaskFailed}
    action: {type: airflow-clear-task, mode: approve}
`), 0o600))
	pod := func(ns string) string {
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"etl-load-1","namespace":"` + ns + `","uid":"u-` + ns + `",
 "creationTimestamp":"2026-11-20T02:00:00Z",
 "labels":{"kubernetes_executor":"True","dag_id":"payroll","task_id":"export"},
 "annotations":{"dag_id":"payroll","task_id":"export","run_id":"scheduled__2026-11-20T00:00:00+00:00","try_number":"1"}},
 "spec":{"containers":[{"name":"base","image":"x"}]},
 "status":{"phase":"Failed","containerStatuses":[{"name":"base","state":{"terminated":{"exitCode":1,"reason":"Error",
 "startedAt":"2026-11-20T02:00:10Z","finishedAt":"2026-11-20T02:10:00Z"}}}]}}`
	}
	dump := filepath.Join(dir, "dump.json")
	require.NoError(t, os.WriteFile(dump, []byte(`{"apiVersion":"v1","kind":"List","items":[`+pod("sandbox")+`,`+pod("airflow")+`]}`), 0o600))

	code, out, errOut := cli(t, "replay", "--config", rulesPath, "--input", dump, "--output", "json")
	require.Equal(t, 0, code, errOut)
	byNS := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &f), line)
		byNS[f["namespace"].(string)] = f
	}
	require.Len(t, byNS, 2)
	sandbox, airflow := byNS["sandbox"], byNS["airflow"]
	assert.Nil(t, sandbox["airflow"])
	assert.Nil(t, sandbox["action"], "no clear of a DAG claimed outside airflow.namespaces")
	assert.Contains(t, sandbox["evidence"], "the pod claims Airflow task payroll.export, but namespace sandbox is not in airflow.namespaces: it is not taken for an Airflow worker")
	require.NotNil(t, airflow["action"])
	assert.Equal(t, "airflow-clear-task", airflow["action"].(map[string]any)["type"])
	assert.Equal(t, "payroll", airflow["airflow"].(map[string]any)["dag_id"])
}
