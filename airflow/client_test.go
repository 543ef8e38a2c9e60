package airflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/internal/testenv/airflowenv"
)

const run = "scheduled__2026-11-20T00:00:00+00:00"

var logical = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func start(t *testing.T, opts ...airflowenv.Option) *airflowenv.Server {
	s := airflowenv.Start(t, opts...)
	s.AddRun("etl_daily", run, logical)
	s.SetTask("etl_daily", run, "load", -1, airflowenv.StateFailed)
	return s
}

func client(t *testing.T, s *airflowenv.Server, creds airflow.Credentials) *airflow.Client {
	c, err := airflow.New(s.URL()+"/", s.Version(), 2*time.Second, creds)
	require.NoError(t, err)
	return c
}

var user = airflow.Credentials{Username: airflowenv.DefaultUser, Password: airflowenv.DefaultPassword}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestClear: a plain task is cleared on Airflow 2 (Basic auth) and Airflow 3 (a JWT fetched
// for the user, or a token given), with the body each accepts.
func TestClear(t *testing.T) {
	for _, c := range []struct {
		name, version string
		opts          []airflowenv.Option
		creds         airflow.Credentials
		auth          string
	}{
		{"v1 basic", airflow.V1, nil, user, "basic:" + airflowenv.DefaultUser},
		{"v1 token", airflow.V1, []airflowenv.Option{airflowenv.WithStaticToken("tok-1")}, airflow.Credentials{Token: "tok-1"}, "bearer:static"},
		{"v2 fetched token", airflow.V2, nil, user, "bearer:jwt"},
		{"v2 token", airflow.V2, []airflowenv.Option{airflowenv.WithStaticToken("tok-2")}, airflow.Credentials{Token: "tok-2"}, "bearer:static"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := start(t, append(c.opts, airflowenv.WithVersion(c.version))...)
			got, err := client(t, s, c.creds).ClearTaskInstances(ctx(t), airflow.ClearRequest{DagID: "etl_daily", DagRunID: run, TaskID: "load", OnlyFailed: true})
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, "load", got[0].TaskID)
			st, _ := s.TaskState("etl_daily", run, "load", -1)
			assert.Equal(t, airflowenv.StateNone, st, "cleared")
			calls := s.CallsTo("/clearTaskInstances")
			require.Len(t, calls, 1)
			assert.Equal(t, c.auth, calls[0].Auth)
			assert.Equal(t, false, calls[0].Body["dry_run"])
			assert.Equal(t, []any{"load"}, calls[0].Body["task_ids"])
		})
	}
}

// TestClearMapped: Airflow 3 clears the one map index ([task_id, map_index]); Airflow 2's API
// takes no pair, so the client refuses to send one and a task id clears every failed index.
func TestClearMapped(t *testing.T) {
	for _, v := range []string{airflow.V1, airflow.V2} {
		t.Run(v, func(t *testing.T) {
			s := airflowenv.Start(t, airflowenv.WithVersion(v))
			s.AddRun("etl_daily", run, logical)
			for i, st := range []string{airflowenv.StateSuccess, airflowenv.StateSuccess, airflowenv.StateFailed, airflowenv.StateFailed} {
				s.SetTask("etl_daily", run, "load", i, st)
			}
			c := client(t, s, user)
			r := airflow.ClearRequest{DagID: "etl_daily", DagRunID: run, TaskID: "load", MapIndex: ptr(2), OnlyFailed: true}
			got, err := c.ClearTaskInstances(ctx(t), r)
			if v == airflow.V1 {
				require.ErrorContains(t, err, "Airflow 2's API takes no map index")
				require.Empty(t, s.CallsTo("/clearTaskInstances"), "nothing sent")
				r.MapIndex = nil
				got, err = c.ClearTaskInstances(ctx(t), r)
				require.NoError(t, err)
				assert.Len(t, got, 2, "both failed map indexes")
				st, _ := s.TaskState("etl_daily", run, "load", 3)
				assert.Equal(t, airflowenv.StateNone, st)
			} else {
				require.NoError(t, err)
				require.Len(t, got, 1)
				assert.Equal(t, 2, *got[0].MapIndex)
				assert.Equal(t, []any{[]any{"load", json.Number("2")}}, s.CallsTo("/clearTaskInstances")[0].Body["task_ids"])
				st, _ := s.TaskState("etl_daily", run, "load", 3)
				assert.Equal(t, airflowenv.StateFailed, st, "map index 3 is not touched")
			}
			st, _ := s.TaskState("etl_daily", run, "load", 1)
			assert.Equal(t, airflowenv.StateSuccess, st, "only failed indexes")
		})
	}
}

// TestRunAt: the run of a pre-2.2 worker is found by its execution date, with the filter each
// version has (v1 refuses v2's and the other way round is ignored).
func TestRunAt(t *testing.T) {
	for _, v := range []string{airflow.V1, airflow.V2} {
		t.Run(v, func(t *testing.T) {
			s := start(t, airflowenv.WithVersion(v))
			old := time.Date(2020, 11, 6, 18, 36, 4, 231910000, time.UTC)
			s.AddRun("etl_daily", "scheduled__2020-11-06T18:36:04.231910+00:00", old)
			c := client(t, s, user)
			id, err := c.RunAt(ctx(t), "etl_daily", old)
			require.NoError(t, err)
			assert.Equal(t, "scheduled__2020-11-06T18:36:04.231910+00:00", id)
			_, err = c.RunAt(ctx(t), "etl_daily", old.Add(time.Second))
			require.ErrorIs(t, err, airflow.ErrRunNotFound)
			assert.ErrorContains(t, err, "run id unknown: DAG etl_daily has no run at 2020-11-06T18:36:05.23191Z")
			field := map[string]string{airflow.V1: "execution_date_gte=", airflow.V2: "logical_date_gte="}[v]
			assert.Contains(t, s.CallsTo("/dagRuns")[0].Query, field)
		})
	}
}

// TestTokenRefreshedOnce: 20 concurrent clears after the token expired, and again after
// Airflow stopped accepting the token it issued (a restart with a new jwt_secret): each time
// exactly one new token is fetched and every clear succeeds.
func TestTokenRefreshedOnce(t *testing.T) {
	s := airflowenv.Start(t, airflowenv.WithVersion(airflow.V2), airflowenv.WithTokenTTL(2*time.Second))
	s.AddRun("etl_daily", run, logical)
	c := client(t, s, user)
	clearAll := func() {
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			task := fmt.Sprintf("t%02d", i)
			s.SetTask("etl_daily", run, task, -1, airflowenv.StateFailed)
			wg.Go(func() {
				got, err := c.ClearTaskInstances(ctx(t), airflow.ClearRequest{DagID: "etl_daily", DagRunID: run, TaskID: task, OnlyFailed: true})
				if err == nil && len(got) != 1 {
					err = fmt.Errorf("%s: cleared %d", task, len(got))
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
	clearAll()
	require.Equal(t, 1, s.TokensIssued(), "one fetch for 20 concurrent first calls")

	time.Sleep(2100 * time.Millisecond) // the token expires
	clearAll()
	assert.Equal(t, 2, s.TokensIssued(), "refreshed exactly once after it expired")

	s.RevokeTokens()
	clearAll()
	assert.Equal(t, 3, s.TokensIssued(), "refreshed exactly once after Airflow refused it")
	for _, call := range s.CallsTo("/clearTaskInstances") {
		assert.NotContains(t, call.Auth, "basic", "never Basic on v2")
	}
}

// TestWrongPassword: refused credentials are a clear, final error: one try, no loop, and the
// password is nowhere in it.
func TestWrongPassword(t *testing.T) {
	for _, v := range []string{airflow.V1, airflow.V2} {
		t.Run(v, func(t *testing.T) {
			s := start(t, airflowenv.WithVersion(v))
			c := client(t, s, airflow.Credentials{Username: airflowenv.DefaultUser, Password: "hunter2-wrong"})
			_, err := c.ClearTaskInstances(ctx(t), airflow.ClearRequest{DagID: "etl_daily", DagRunID: run, TaskID: "load", OnlyFailed: true})
			require.Error(t, err)
			assert.True(t, airflow.IsFinal(err))
			assert.Contains(t, err.Error(), "Airflow refused the credentials for user podmedic (401 Unauthorized")
			assert.NotContains(t, err.Error(), "hunter2")
			assert.Len(t, s.Calls(), 1, "one call, no retry: %+v", s.Calls())
		})
	}
}

// TestAirflowDown: an unreachable Airflow is retried with backoff until the caller gives up,
// and the error says so; 503s that pass are retried through.
func TestAirflowDown(t *testing.T) {
	s := start(t)
	c := client(t, s, user)
	s.FailNext(http.StatusServiceUnavailable, http.StatusBadGateway)
	_, err := c.ClearTaskInstances(ctx(t), airflow.ClearRequest{DagID: "etl_daily", DagRunID: run, TaskID: "load", OnlyFailed: true})
	require.NoError(t, err, "transient failures are retried")
	assert.Len(t, s.CallsTo("/clearTaskInstances"), 3)

	s.Close()
	short, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = c.ClearTaskInstances(short, airflow.ClearRequest{DagID: "etl_daily", DagRunID: run, TaskID: "load", OnlyFailed: true})
	require.Error(t, err)
	assert.False(t, airflow.IsFinal(err))
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, err.Error(), "gave up")
}

// TestErrorsSayWhatAirflowSaid: a 4xx is final and carries Airflow's detail.
func TestErrorsSayWhatAirflowSaid(t *testing.T) {
	for _, v := range []string{airflow.V1, airflow.V2} {
		s := start(t, airflowenv.WithVersion(v))
		_, err := client(t, s, user).ClearTaskInstances(ctx(t), airflow.ClearRequest{DagID: "nope", DagRunID: run, TaskID: "load", OnlyFailed: true})
		require.Error(t, err)
		assert.True(t, airflow.IsFinal(err))
		var ae *airflow.APIError
		require.True(t, errors.As(err, &ae))
		assert.Equal(t, http.StatusNotFound, ae.Status)
		assert.Contains(t, err.Error(), "Dag id nope not found")
	}
}

func TestCredentialsNeverPrinted(t *testing.T) {
	creds := airflow.Credentials{Username: "u", Password: "p4ss", Token: "t0k"}
	for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%v %+v %#v %s", creds, creds, creds, creds)} {
		require.NotContains(t, s, "p4ss")
		require.NotContains(t, s, "t0k")
	}
	_, err := airflow.New("http://admin:hunter2@airflow.example.com:8080", "v1", time.Second, airflow.Credentials{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
	require.Contains(t, err.Error(), "AIRFLOW_USERNAME and AIRFLOW_PASSWORD, or AIRFLOW_TOKEN")
	_, err = airflow.New("airflow-webserver:8080", "v1", 0, airflow.Credentials{})
	require.ErrorContains(t, err, "not an http(s) URL")
	_, err = airflow.New("http://airflow:8080", "v3", 0, airflow.Credentials{})
	require.ErrorContains(t, err, `api_version "v3": want v1 or v2`)
	assert.True(t, strings.HasPrefix(fmt.Sprint(airflow.Credentials{Username: "pm", Password: "x"}), "user pm"))
}
