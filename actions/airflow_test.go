package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// airflowAPI is a local server implementing clearTaskInstances of Airflow's stable REST API,
// v1 (Airflow 2) and v2 (Airflow 3), with basic or bearer auth. It records the calls and
// answers like Airflow: the cleared task instances, none when only_failed and the task is not
// failed, 401 without valid credentials, 404 for an unknown DAG.
type airflowAPI struct {
	t        *testing.T
	srv      *httptest.Server
	user     string
	password string
	token    string
	failed   map[string]bool // "dag/run/task" of failed task instances

	mu    sync.Mutex
	calls []airflowCall
}

type airflowCall struct {
	Version string
	DagID   string
	Auth    string
	Body    map[string]any
}

func newAirflowAPI(t *testing.T) *airflowAPI {
	a := &airflowAPI{t: t, user: "podmedic", password: "s3cr3t-pw", token: "tok-123",
		failed: map[string]bool{"etl_daily/scheduled__2026-11-20T00:00:00+00:00/load": true}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *airflowAPI) serve(w http.ResponseWriter, r *http.Request) {
	var version, dag string
	if _, err := fmt.Sscanf(r.URL.Path, "/api/%2s/dags/", &version); err != nil || r.Method != http.MethodPost ||
		!strings.HasSuffix(r.URL.Path, "/clearTaskInstances") {
		http.NotFound(w, r)
		return
	}
	dag = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/"+version+"/dags/"), "/clearTaskInstances")
	auth := "none"
	switch user, pw, ok := r.BasicAuth(); {
	case ok && user == a.user && pw == a.password:
		auth = "basic"
	case r.Header.Get("Authorization") == "Bearer "+a.token:
		auth = "bearer"
	}
	var body map[string]any
	require.NoError(a.t, json.NewDecoder(r.Body).Decode(&body))
	a.mu.Lock()
	a.calls = append(a.calls, airflowCall{Version: version, DagID: dag, Auth: auth, Body: body})
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if auth == "none" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"detail":null,"status":401,"title":"Unauthorized","type":"https://airflow.apache.org/docs/apache-airflow/2.10.3/stable-rest-api-ref.html#section/Errors/Unauthenticated"}`))
		return
	}
	if dag != "etl_daily" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"detail":"DAG with dag_id: '` + dag + `' not found","status":404,"title":"DAG not found"}`))
		return
	}
	var out []map[string]any
	run, _ := body["dag_run_id"].(string)
	for _, t := range body["task_ids"].([]any) {
		task, _ := t.(string)
		if pair, ok := t.([]any); ok {
			task = pair[0].(string)
		}
		if body["only_failed"] == false || a.failed[dag+"/"+run+"/"+task] {
			out = append(out, map[string]any{"dag_id": dag, "dag_run_id": run, "task_id": task})
		}
	}
	resp := map[string]any{"task_instances": out}
	if version == "v2" {
		resp["total_entries"] = len(out)
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (a *airflowAPI) recorded() []airflowCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]airflowCall(nil), a.calls...)
}

func clearTaskRequest() *Request {
	f := &finding.Finding{Kind: finding.TaskFailed, Rule: "airflow-task-failed", Namespace: "airflow", Pod: "etl-load-1", UID: "u1",
		Airflow: &finding.AirflowTask{DagID: "etl_daily", TaskID: "load", RunID: "scheduled__2026-11-20T00:00:00+00:00", TryNumber: 1}}
	a := finding.Action{Type: finding.ActionAirflowClearTask, Mode: finding.ModeApprove, Params: map[string]string{
		"dag_id": "etl_daily", "task_id": "load", "dag_run_id": "scheduled__2026-11-20T00:00:00+00:00", "only_failed": "true"}}
	f.Action = &a
	return &Request{ID: ProposalID(f), Finding: f, Action: a, Target: AirflowTarget(f, a), ApprovedBy: "U1"}
}

func TestAirflowClearTask(t *testing.T) {
	api := newAirflowAPI(t)
	for _, tt := range []struct {
		version  string
		creds    AirflowCredentials
		wantAuth string
	}{
		{version: "v1", creds: AirflowCredentials{Username: "podmedic", Password: "s3cr3t-pw"}, wantAuth: "basic"},
		{version: "v2", creds: AirflowCredentials{Token: "tok-123"}, wantAuth: "bearer"},
	} {
		t.Run(tt.version, func(t *testing.T) {
			before := len(api.recorded())
			c, err := NewAirflowClient(api.srv.URL+"/", tt.version, time.Second, tt.creds)
			require.NoError(t, err)
			msg, err := AirflowClearTask{Client: c}.Execute(context.Background(), clearTaskRequest())
			require.NoError(t, err)
			require.Equal(t, "Airflow cleared 1 task instance(s) of etl_daily.load in run scheduled__2026-11-20T00:00:00+00:00; the scheduler runs it again", msg)

			calls := api.recorded()[before:]
			require.Len(t, calls, 1)
			call := calls[0]
			require.Equal(t, tt.version, call.Version)
			require.Equal(t, "etl_daily", call.DagID)
			require.Equal(t, tt.wantAuth, call.Auth)
			require.Equal(t, map[string]any{
				"dry_run": false, "task_ids": []any{"load"}, "dag_run_id": "scheduled__2026-11-20T00:00:00+00:00",
				"only_failed": true, "reset_dag_runs": true, "include_upstream": false, "include_downstream": false,
			}, call.Body)
		})
	}

	t.Run("mapped task instance", func(t *testing.T) {
		c, err := NewAirflowClient(api.srv.URL, "v1", time.Second, AirflowCredentials{Token: "tok-123"})
		require.NoError(t, err)
		r := clearTaskRequest()
		r.Finding.Airflow.MapIndex = ptr(3)
		_, err = AirflowClearTask{Client: c}.Execute(context.Background(), r)
		require.NoError(t, err)
		calls := api.recorded()
		require.Equal(t, []any{[]any{"load", 3.0}}, calls[len(calls)-1].Body["task_ids"])
	})

	t.Run("task no longer failed", func(t *testing.T) {
		c, err := NewAirflowClient(api.srv.URL, "v2", time.Second, AirflowCredentials{Token: "tok-123"})
		require.NoError(t, err)
		r := clearTaskRequest()
		r.Action.Params["task_id"] = "publish"
		msg, err := AirflowClearTask{Client: c}.Execute(context.Background(), r)
		require.NoError(t, err)
		require.Contains(t, msg, "Airflow cleared nothing: task etl_daily.publish")
	})

	t.Run("errors say what Airflow said and never the secrets", func(t *testing.T) {
		c, err := NewAirflowClient(api.srv.URL, "v1", time.Second, AirflowCredentials{Username: "podmedic", Password: "wrong-pw"})
		require.NoError(t, err)
		_, err = AirflowClearTask{Client: c}.Execute(context.Background(), clearTaskRequest())
		require.ErrorContains(t, err, "401 Unauthorized: Unauthorized")
		require.NotContains(t, err.Error(), "wrong-pw")

		c, err = NewAirflowClient(api.srv.URL, "v1", time.Second, AirflowCredentials{Token: "tok-123"})
		require.NoError(t, err)
		r := clearTaskRequest()
		r.Action.Params["dag_id"] = "nope"
		_, err = AirflowClearTask{Client: c}.Execute(context.Background(), r)
		require.ErrorContains(t, err, "404 Not Found: DAG with dag_id: 'nope' not found")

		creds := AirflowCredentials{Username: "u", Password: "p4ss", Token: "t0k"}
		for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%v %+v %#v %s", creds, creds, creds, creds)} {
			require.NotContains(t, s, "p4ss")
			require.NotContains(t, s, "t0k")
		}
	})

	t.Run("bad config", func(t *testing.T) {
		_, err := NewAirflowClient("airflow-webserver:8080", "v1", 0, AirflowCredentials{})
		require.ErrorContains(t, err, "not an http(s) URL")
		_, err = NewAirflowClient("http://airflow:8080", "v3", 0, AirflowCredentials{})
		require.ErrorContains(t, err, `api_version "v3": want v1 or v2`)
	})
}

func TestAirflowCredentialsFromEnv(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte("from-file\n"), 0o600))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	c, err := AirflowCredentialsFromEnv(env(map[string]string{"AIRFLOW_USERNAME": "pm", "AIRFLOW_PASSWORD_FILE": pwFile}))
	require.NoError(t, err)
	require.Equal(t, AirflowCredentials{Username: "pm", Password: "from-file"}, c)

	c, err = AirflowCredentialsFromEnv(env(map[string]string{"AIRFLOW_TOKEN": "t"}))
	require.NoError(t, err)
	require.Equal(t, "t", c.Token)

	c, err = AirflowCredentialsFromEnv(env(nil))
	require.NoError(t, err)
	require.Equal(t, AirflowCredentials{}, c)

	_, err = AirflowCredentialsFromEnv(env(map[string]string{"AIRFLOW_TOKEN": "t", "AIRFLOW_TOKEN_FILE": pwFile}))
	require.ErrorContains(t, err, "set AIRFLOW_TOKEN or AIRFLOW_TOKEN_FILE, not both")
	_, err = AirflowCredentialsFromEnv(env(map[string]string{"AIRFLOW_USERNAME": "pm"}))
	require.ErrorContains(t, err, "AIRFLOW_USERNAME is set but AIRFLOW_PASSWORD")
	_, err = AirflowCredentialsFromEnv(env(map[string]string{"AIRFLOW_TOKEN_FILE": filepath.Join(dir, "missing")}))
	require.ErrorContains(t, err, "AIRFLOW_TOKEN_FILE")
}

// TestAirflowURLWithCredentialsRefused: credentials in the URL would travel in every error
// (Slack, audit, Events); the client refuses them and names the variables to use.
func TestAirflowURLWithCredentialsRefused(t *testing.T) {
	_, err := NewAirflowClient("http://admin:hunter2@airflow.example.com:8080", "v1", time.Second, AirflowCredentials{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
	require.Contains(t, err.Error(), "AIRFLOW_USERNAME and AIRFLOW_PASSWORD, or AIRFLOW_TOKEN")
}

func TestPlainHTTPOutsideCluster(t *testing.T) {
	for u, want := range map[string]bool{
		"http://airflow-webserver.airflow.svc:8080":               false,
		"http://airflow-webserver.airflow.svc.cluster.local:8080": false,
		"http://airflow-webserver.airflow:8080":                   false,
		"http://airflow-webserver:8080":                           false,
		"http://127.0.0.1:8080":                                   false,
		"http://10.0.3.7:8080":                                    false,
		"https://airflow.example.com":                             false,
		"http://airflow.example.com":                              true,
		"http://203.0.113.9:8080":                                 true,
	} {
		require.Equal(t, want, PlainHTTPOutsideCluster(u), u)
	}
}
