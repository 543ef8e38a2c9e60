package demo

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/rules"
)

// TestDemoNight plays the bundled night through the real pipeline with the default rules and
// checks what a user sees: one finding per incident, of the right kind, nothing about the
// healthy pods, and a summary.
func TestDemoNight(t *testing.T) {
	cfg, err := config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), rules.NewDefaultRegistry())
	require.NoError(t, err)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Config: cfg, ConfigName: "rules.yaml", Out: &out, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err, out.String())

	var got []string
	for _, f := range res.Findings {
		got = append(got, string(f.Kind)+" "+f.Name())
	}
	sort.Strings(got)
	require.Equal(t, []string{
		"Evicted spark/nightly-agg-exec-3",
		"InitStuck spark/nightly-agg-driver",
		"OOMKilled airflow/etl-load-7f9c/base",
		"PVCPending spark/spark-checkpoints-pvc",
		"SIGKILL airflow/reports-render-2b8e/base",
		"SparkAppFailed spark/customer-churn-model",
		"TaskFailed airflow/etl-publish-5c1d/base",
		"TaskFailed spark/sales-daily-aggregate-20261120-driver/spark-kubernetes-driver",
	}, got, out.String())

	text := out.String()
	require.Contains(t, text, "action    propose-memory-limit (approve): container=base limit=3Gi request=2Gi")
	require.Contains(t, text, "event FailedMount x11")
	require.Contains(t, text, "a higher memory limit will not help", "SIGKILL is not reported as OOM")
	require.Contains(t, text, "| botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied",
		"the failed task's log tail")
	require.NotContains(t, text, "etl-extract-9d2a  (rule", "the healthy worker has no finding")
	// The Spark driver's failure: the executors' heap ran out (the driver's log says so), so
	// their memory is proposed; the application's FAILED state is the same run, not a second
	// finding; the application that could not be submitted is one, with the operator's message.
	require.Contains(t, text, "an executor's JVM ran out of heap (java.lang.OutOfMemoryError in the log): raise spec.executor.memory of SparkApplication sales-daily-aggregate-20261120")
	require.Contains(t, text, "spec.executor.memory 6g -> 9626m, memoryOverhead 614m (kept, written out: Spark's default would grow with the heap), pod limit 10Gi")
	require.Contains(t, text, "CRITICAL SparkAppFailed  spark/customer-churn-model  (rule spark-app-failed)")
	require.Contains(t, text, `is SUBMISSION_FAILED after 1 submission attempt(s): failed to run spark-submit: pods "customer-churn-model-driver" is forbidden: exceeded quota: spark-quota`)
	require.Contains(t, text, "findings            8 (OOMKilled 1, SIGKILL 1, InitStuck 1, Evicted 1, TaskFailed 2, PVCPending 1, SparkAppFailed 1)")
	require.Contains(t, text, "pods without finding 2 of 8: airflow/etl-extract-9d2a, reporting/report-api-6c9f7d-x2x7q")
	// Findings are printed under the step that caused them.
	require.Less(t, strings.Index(text, "01:12  The load task"), strings.Index(text, "OOMKilled  airflow/etl-load-7f9c"))
	require.Less(t, strings.Index(text, "OOMKilled  airflow/etl-load-7f9c"), strings.Index(text, "01:14  The extract task"))
}

func TestParseScenarioErrors(t *testing.T) {
	_, err := ParseScenario([]byte("name: x\nstart: 2026-11-20T01:00:00Z\nsteps:\n- at: '1am'\n"))
	require.ErrorContains(t, err, `steps[0].at: "1am" is not HH:MM`)
	_, err = ParseScenario([]byte("name: x\nstart: 2026-11-20T01:00:00Z\nsteps:\n- at: '01:00'\n  sya: typo\n"))
	require.ErrorContains(t, err, "unknown field")
	_, err = ParseScenario([]byte("name: x\nstart: 2026-11-20T01:00:00Z\nsteps:\n- at: '02:00'\n- at: '01:30'\n"))
	require.ErrorContains(t, err, "steps[1].at 01:30 is earlier than the step before")
	sc, err := ParseScenario([]byte("name: x\nstart: 2026-11-20T22:00:00Z\nsteps:\n- at: '23:00'\n- at: '01:30'\n"))
	require.NoError(t, err)
	require.Equal(t, "2026-11-21T01:30:00Z", sc.Steps[1].Time().Format(time.RFC3339), "past midnight is the next day")
}

// syncBuffer is a bytes.Buffer safe for the demo writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoInboxApproval: with --inbox the demo keeps running after the night; approving the
// Airflow task's proposal in the inbox clears it in the simulated Airflow.
func TestDemoInboxApproval(t *testing.T) {
	cfg, err := config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), rules.NewDefaultRegistry())
	require.NoError(t, err)
	out := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Config: cfg, ConfigName: "rules.yaml", Out: out, Logger: zaptest.NewLogger(t),
			Inbox: "127.0.0.1:0", InboxReady: func(a string) { addrc <- a }})
		done <- err
	}()
	addr := <-addrc
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "The night is over") }, time.Minute, 50*time.Millisecond)

	page := httpGet(t, "http://"+addr+"/")
	token := regexp.MustCompile(`name="token" value="([0-9a-f]+)"`).FindStringSubmatch(page)[1]
	cards := regexp.MustCompile(`(?s)<div class="card" id="proposal-([a-z0-9]+)">.*?</form>\s*</div>`).FindAllStringSubmatch(page, -1)
	require.Len(t, cards, 4, "four proposals wait in the inbox")
	// approve approves the one proposal whose card mentions what, and waits until the demo
	// prints outcome.
	approve := func(what, outcome string) {
		t.Helper()
		var id string
		for _, c := range cards {
			if strings.Contains(c[0], what) {
				require.Empty(t, id, "two proposals mention %s", what)
				id = c[1]
			}
		}
		require.NotEmpty(t, id, "no proposal mentions %s", what)
		resp, err := http.PostForm("http://"+addr+"/proposals/"+id+"/approve", url.Values{"token": {token}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), outcome) }, 30*time.Second, 50*time.Millisecond, out.String())
	}
	approve("airflow-clear-task", "Airflow (simulated): cleared etl_daily.publish in run scheduled__2026-11-20T00:00:00+00:00")
	require.Contains(t, httpGet(t, "http://"+addr+"/"), "Pending (3)")
	// The stuck driver's deletion deletes it through the API, with its uid and resourceVersion
	// as preconditions.
	approve("delete-pod", "pod spark/nightly-agg-driver deleted")
	// The executors' heap patches the SparkApplication in the simulated cluster.
	approve("sales-daily-aggregate-20261120",
		"SparkApplication spark/sales-daily-aggregate-20261120: spec.executor memory 6g -> 9626m, memoryOverhead 614m -> 614m")
	cancel()
	require.NoError(t, <-done)
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
