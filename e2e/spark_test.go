package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
	"github.com/podmedic/podmedic/spark"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installSparkCRD installs the SparkApplication CRD (testdata, from the operator's schema) in
// the test API server and waits until it is served; it is removed when the test ends.
func installSparkCRD(t *testing.T, env *kubeenv.Env, dyn dynamic.Interface) {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/sparkapplication-crd.yaml")
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &obj))
	_, err = dyn.Resource(crdResource).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { removeSparkCRD(t, dyn) })
	require.Eventually(t, func() bool {
		_, err := dyn.Resource(spark.ApplicationResource).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "the SparkApplication CRD is not served")
}

// removeSparkCRD deletes the CRD (if present) and waits until it is gone.
func removeSparkCRD(t *testing.T, dyn dynamic.Interface) {
	ctx := context.Background()
	const name = "sparkapplications.sparkoperator.k8s.io"
	if err := dyn.Resource(crdResource).Delete(ctx, name, metav1.DeleteOptions{}); apierrors.IsNotFound(err) {
		return
	}
	require.Eventually(t, func() bool {
		_, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 60*time.Second, 200*time.Millisecond, "the CRD was not removed")
}

// writeSparkApp creates a SparkApplication as Airflow's SparkKubernetesOperator does, then
// writes its status as the operator would.
func writeSparkApp(t *testing.T, dyn dynamic.Interface, ns, doc string, status map[string]any) *unstructured.Unstructured {
	t.Helper()
	ctx := context.Background()
	var obj map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
	u := &unstructured.Unstructured{Object: obj}
	u.SetNamespace(ns)
	got, err := dyn.Resource(spark.ApplicationResource).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
	require.NoError(t, err)
	got.Object["status"] = status
	got, err = dyn.Resource(spark.ApplicationResource).Namespace(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{})
	require.NoError(t, err)
	return got
}

const backfillApp = `apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata:
  name: events-backfill-20261120
spec:
  type: Python
  mode: cluster
  sparkVersion: 3.5.1
  mainApplicationFile: local:///opt/jobs/backfill.py
  restartPolicy: {type: OnFailure, onSubmissionFailureRetries: 2, onFailureRetries: 1}
  driver:
    cores: 1
    memory: 2g
    memoryOverhead: 1g
    labels: {dag_id: events_backfill, task_id: run_backfill, run_id: manual__2026-11-20T0200000000-8d2c1f0a3, spark_kubernetes_operator: "True", try_number: "2"}
  executor: {cores: 1, instances: 20, memory: 4g}
`

// TestSparkApplicationFailed: podmedic started before the Spark operator's CRD exists runs
// normally and says once that it does not watch SparkApplications; once the CRD is installed
// it watches them, and an application whose submission failed (the quota refused its driver)
// is one finding about the application, with the operator's message and the Airflow task
// that created it — one, however often the operator writes its status again.
func TestSparkApplicationFailed(t *testing.T) {
	env := cluster(t)
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	removeSparkCRD(t, dyn) // a previous run's, if it was interrupted
	ns := namespace(t, env, "spark-"+strings.ReplaceAll(time.Now().Format("150405.000"), ".", ""))
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: spark-app-failed
    severity: critical
    detect: {kind: SparkAppFailed}
`)
	pm := startPodmedic(t, env, t.TempDir(), "--config", cfg, "--discovery-interval", "500ms")
	const notWatching = "the SparkApplication CRD (sparkoperator.k8s.io/v1beta2) is not installed: not watching SparkApplications"
	require.Eventually(t, func() bool { return strings.Contains(pm.logs(), notWatching) }, 10*time.Second, 50*time.Millisecond,
		"podmedic does not say it does not watch SparkApplications\n%s", pm.logs())
	time.Sleep(2 * time.Second) // four more looks for the CRD: said once, not each time
	assert.Equal(t, 1, strings.Count(pm.logs(), notWatching))

	installSparkCRD(t, env, dyn)
	require.Eventually(t, func() bool { return strings.Contains(pm.logs(), "watching SparkApplications\"") }, 15*time.Second, 50*time.Millisecond,
		"podmedic does not watch SparkApplications once the CRD is installed\n%s", pm.logs())

	const message = `failed to run spark-submit: Exception in thread "main" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: POST at: https://10.96.0.1:443/api/v1/namespaces/spark-jobs/pods. Message: pods "events-backfill-20261120-driver" is forbidden: exceeded quota: spark-jobs-quota, requested: limits.memory=3Gi, used: limits.memory=190Gi, limited: limits.memory=192Gi.`
	status := map[string]any{
		"applicationState":          map[string]any{"state": "SUBMISSION_FAILED", "errorMessage": message},
		"driverInfo":                map[string]any{},
		"lastSubmissionAttemptTime": "2026-11-20T02:04:31Z",
		"submissionAttempts":        int64(3),
		"submissionID":              "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
	}
	app := writeSparkApp(t, dyn, ns, backfillApp, status)
	failed := func() []finding.Finding {
		var out []finding.Finding
		for _, f := range pm.all() {
			if f.Kind == finding.SparkAppFailed && f.Spark != nil && f.Spark.Application == app.GetName() {
				out = append(out, f)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(failed()) == 1 }, 30*time.Second, 50*time.Millisecond, "no SparkAppFailed finding\n%s", pm.logs())
	f := failed()[0]
	assert.Equal(t, ns, f.Namespace)
	assert.Empty(t, f.Pod)
	assert.Equal(t, finding.SeverityCritical, f.Severity)
	assert.Equal(t, &finding.SparkApp{Application: "events-backfill-20261120", State: "SUBMISSION_FAILED", Attempts: 3}, f.Spark)
	assert.Equal(t, "SparkApplication events-backfill-20261120 is SUBMISSION_FAILED after 3 submission attempt(s): "+message, f.Evidence[0])
	require.NotNil(t, f.Airflow)
	assert.Equal(t, []any{"events_backfill", "run_backfill", 2}, []any{f.Airflow.DagID, f.Airflow.TaskID, f.Airflow.TryNumber})

	// The operator writes the status again (the same run): still one finding.
	cur, err := dyn.Resource(spark.ApplicationResource).Namespace(ns).Get(context.Background(), app.GetName(), metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, unstructured.SetNestedField(cur.Object, "2026-11-20T02:05:00Z", "status", "terminationTime"))
	_, err = dyn.Resource(spark.ApplicationResource).Namespace(ns).UpdateStatus(context.Background(), cur, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Never(t, func() bool { return len(failed()) > 1 }, 3*time.Second, 100*time.Millisecond, "the same run reported twice")
}
