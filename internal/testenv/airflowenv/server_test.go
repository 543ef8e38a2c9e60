package airflowenv

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const run = "scheduled__2026-11-20T00:00:00+00:00"

func post(t *testing.T, s *Server, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func basic() string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(DefaultUser, DefaultPassword)
	return req.Header.Get("Authorization")
}

// TestV1RefusesWhatAirflow2Refuses: Airflow 2.10's stable API takes task ids as strings only,
// refuses unknown fields and unknown query parameters (400, problem+json), and Basic auth with
// the wrong password (401).
func TestV1RefusesWhatAirflow2Refuses(t *testing.T) {
	s := Start(t)
	s.AddRun("etl", run, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	s.SetTask("etl", run, "load", 2, StateFailed)
	path := "/api/v1/dags/etl/clearTaskInstances"
	for _, c := range []struct{ body, want string }{
		{`{"dry_run":false,"task_ids":[["load",2]],"dag_run_id":"` + run + `"}`, "Not a valid string."},
		{`{"dry_run":false,"task_ids":["load"],"dag_run_id":"` + run + `","run_on_latest_version":false}`, "run_on_latest_version: Unknown field."},
		{`{"dry_run":"no","task_ids":["load"]}`, "Input should be a valid boolean"},
		{`{"task_ids":[]}`, "at least 1 element"},
		{`{"only_failed":true,"only_running":true,"task_ids":["load"]}`, "only_failed and only_running"},
	} {
		code, m := post(t, s, path, basic(), c.body)
		assert.Equal(t, http.StatusBadRequest, code, c.body)
		assert.Contains(t, m["detail"], c.want, c.body)
		assert.Equal(t, "Bad Request", m["title"])
	}
	code, _ := post(t, s, path, "", `{"task_ids":["load"]}`)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, m := post(t, s, "/auth/token", "", `{"username":"podmedic","password":"x"}`)
	assert.Equal(t, http.StatusNotFound, code, "no /auth/token in Airflow 2: %v", m)

	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/api/v1/dags/etl/dagRuns?logical_date_gte=2026-11-20T00:00:00Z", nil)
	req.Header.Set("Authorization", basic())
	code, m = send(t, req)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, m["detail"], "Extra query parameter(s) logical_date_gte not in spec")

	code, m = post(t, s, path, basic(), `{"dry_run":false,"task_ids":["load"],"dag_run_id":"`+run+`","only_failed":true}`)
	require.Equal(t, http.StatusOK, code, m)
	assert.Len(t, m["task_instances"], 1, "a task id selects every map index")
	st, _ := s.TaskState("etl", run, "load", 2)
	assert.Equal(t, StateNone, st)
}

// TestV2RefusesWhatAirflow3Refuses: Airflow 3 takes only JWTs (Basic is "Not authenticated"),
// issues them at POST /auth/token, refuses an expired one, refuses unknown body fields with
// 422, and takes [task_id, map_index] pairs.
func TestV2RefusesWhatAirflow3Refuses(t *testing.T) {
	s := Start(t, WithVersion(V2), WithTokenTTL(time.Second))
	s.AddRun("etl", run, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	s.SetTask("etl", run, "load", 2, StateFailed)
	s.SetTask("etl", run, "load", 3, StateFailed)
	path := "/api/v2/dags/etl/clearTaskInstances"
	body := `{"dry_run":false,"task_ids":[["load",2]],"dag_run_id":"` + run + `"}`

	code, m := post(t, s, path, basic(), body)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "Not authenticated", m["detail"])

	code, m = post(t, s, "/auth/token", "", `{"username":"podmedic","password":"wrong"}`)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "Invalid credentials", m["detail"])
	code, m = post(t, s, "/auth/token", "", `{"username":"`+DefaultUser+`","password":"`+DefaultPassword+`"}`)
	require.Equal(t, http.StatusCreated, code)
	bearer := "Bearer " + m["access_token"].(string)

	code, m = post(t, s, path, bearer, `{"dry_run":false,"task_ids":["load"],"include_subdags":true}`)
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Contains(t, m["detail"].([]any)[0].(map[string]any)["msg"], "Extra inputs are not permitted")

	code, m = post(t, s, path, bearer, body)
	require.Equal(t, http.StatusOK, code, m)
	assert.EqualValues(t, 1, m["total_entries"], "one map index")
	st, _ := s.TaskState("etl", run, "load", 3)
	assert.Equal(t, StateFailed, st, "the other map index stays failed")

	time.Sleep(1100 * time.Millisecond)
	code, m = post(t, s, path, bearer, body)
	assert.Equal(t, http.StatusUnauthorized, code, "expired")
	assert.Equal(t, "Invalid JWT token", m["detail"])
}
