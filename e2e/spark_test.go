package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
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
	// The ScheduledSparkApplication CRD first: podmedic starts watching once sparkapplications
	// are served, and then watches what is served with them.
	for _, c := range []struct {
		file string
		gvr  schema.GroupVersionResource
	}{
		{"testdata/scheduledsparkapplication-crd.yaml", spark.ScheduledApplicationResource},
		{"testdata/sparkapplication-crd.yaml", spark.ApplicationResource},
	} {
		raw, err := os.ReadFile(c.file)
		require.NoError(t, err)
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal(raw, &obj))
		_, err = dyn.Resource(crdResource).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := dyn.Resource(c.gvr).Namespace("default").List(ctx, metav1.ListOptions{})
			return err == nil
		}, 30*time.Second, 100*time.Millisecond, "the %s CRD is not served", c.gvr.Resource)
	}
	t.Cleanup(func() { removeSparkCRD(t, dyn) })
}

// removeSparkCRD deletes the CRDs (if present) and waits until they are gone.
func removeSparkCRD(t *testing.T, dyn dynamic.Interface) {
	ctx := context.Background()
	for _, name := range []string{"sparkapplications.sparkoperator.k8s.io", "scheduledsparkapplications.sparkoperator.k8s.io"} {
		if err := dyn.Resource(crdResource).Delete(ctx, name, metav1.DeleteOptions{}); apierrors.IsNotFound(err) {
			continue
		}
		require.Eventually(t, func() bool {
			_, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}, 60*time.Second, 200*time.Millisecond, "the CRD %s was not removed", name)
	}
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

	// A ScheduledSparkApplication the operator refused (its cron schedule does not parse)
	// creates no runs: one finding about it, with the operator's reason.
	sched := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "ScheduledSparkApplication",
		"metadata": map[string]any{"name": "events-hourly", "namespace": ns},
		"spec": map[string]any{"schedule": "0 */1 * * * MON", "concurrencyPolicy": "Forbid",
			"template": map[string]any{"type": "Python", "sparkVersion": "3.5.1", "driver": map[string]any{"memory": "2g"}, "executor": map[string]any{"memory": "4g"}}},
	}}
	sres := dyn.Resource(spark.ScheduledApplicationResource).Namespace(ns)
	sched, err = sres.Create(context.Background(), sched, metav1.CreateOptions{})
	require.NoError(t, err)
	const reason = `failed to parse schedule 0 */1 * * * MON: expected exactly 5 fields, found 6: [0 */1 * * * MON]`
	sched.Object["status"] = map[string]any{"scheduleState": "FailedValidation", "reason": reason}
	_, err = sres.UpdateStatus(context.Background(), sched, metav1.UpdateOptions{})
	require.NoError(t, err)
	invalid := func() []finding.Finding {
		var out []finding.Finding
		for _, f := range pm.all() {
			if f.Kind == finding.SparkAppFailed && f.Spark != nil && f.Spark.Application == "events-hourly" {
				out = append(out, f)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(invalid()) == 1 }, 30*time.Second, 50*time.Millisecond, "no finding for the refused schedule\n%s", pm.logs())
	f = invalid()[0]
	assert.Equal(t, "FailedValidation", f.Spark.State)
	assert.Equal(t, `ScheduledSparkApplication events-hourly (schedule "0 */1 * * * MON") failed the Spark operator's validation: `+reason+"; it creates no runs until its spec is mended", f.Evidence[0])
	require.Never(t, func() bool { return len(invalid()) > 1 }, 2*time.Second, 100*time.Millisecond, "the refused schedule reported twice")
}

const salesApp = `apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata:
  name: sales-daily-aggregate-20261120
spec:
  type: Scala
  mode: cluster
  sparkVersion: 3.5.1
  mainClass: com.example.sales.DailyAggregate
  mainApplicationFile: local:///opt/spark/jars/sales-aggregate.jar
  restartPolicy: {type: Never}
  driver:
    cores: 1
    memory: 4g
    serviceAccount: spark
    labels: {dag_id: sales_daily, task_id: aggregate, spark_kubernetes_operator: "True", try_number: "1"}
  executor: {cores: 2, instances: 3, memory: 8g}
`

// TestSparkDriverOOMPatchesTheApplication: a SparkApplication's driver is OOM-killed and the
// operator marks the run FAILED: one finding, the driver's OOMKilled, proposing Spark's
// settings (memoryOverhead raised by as much as the pod's limit); approved in the inbox, the
// SparkApplication read back from the API server has the new memoryOverhead (the operator then
// runs it again), its heap unchanged.
func TestSparkDriverOOMPatchesTheApplication(t *testing.T) {
	env := cluster(t)
	c := env.Client
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	removeSparkCRD(t, dyn)
	installSparkCRD(t, env, dyn)
	ns := namespace(t, env, "spark-oom-"+strings.ReplaceAll(time.Now().Format("150405.000"), ".", ""))
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: spark-oom
    detect: {kind: OOMKilled}
    match: {workload: spark}
    action: {type: propose-memory-limit, mode: approve}
  - name: spark-app-failed
    detect: {kind: SparkAppFailed}
`)
	// The webhook for the applications the same Airflow task creates later.
	own := namespace(t, env, ns+"-podmedic")
	_, err = c.CoreV1().Secrets(own).Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podmedic-webhook-tls"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	inbox, addr := freeAddr(t), freeAddr(t)
	// The chart's entry for sparkapplications: no objectSelector (the identity is in the spec).
	mwc := kubeenv.WebhookConfig(ns, "https://"+addr+"/mutate/sparkapplications", ns)
	mwc.Webhooks[0].Name, mwc.Webhooks[0].ObjectSelector = "sparkapplications.podmedic.io", nil
	mwc.Webhooks[0].Rules[0].Rule = admissionregistrationv1.Rule{APIGroups: []string{"sparkoperator.k8s.io"}, APIVersions: []string{"v1beta2"}, Resources: []string{"sparkapplications"}}
	createWebhookConfig(t, c, mwc)
	pm := startPodmedicEnv(t, env, t.TempDir(), []string{"POD_NAMESPACE=" + own}, "--config", cfg, "--inbox-addr", inbox,
		"--webhook-addr", addr, "--webhook-host", "127.0.0.1", "--webhook-config", ns, "--patch-spark-applications")
	require.Eventually(t, func() bool { return strings.Contains(pm.logs(), "watching SparkApplications\"") }, 15*time.Second, 50*time.Millisecond)

	app := writeSparkApp(t, dyn, ns, salesApp, map[string]any{"applicationState": map[string]any{"state": "RUNNING"},
		"submissionID": "0b6e2a4c-9d1f-4e3b-8a7c-5f2d1e0c9b8a", "executionAttempts": int64(1),
		"driverInfo": map[string]any{"podName": "sales-daily-aggregate-20261120-driver"}})
	// The operator's driver pod: owned by the application, 4g + the default 409m overhead.
	ctl := true
	driver := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sales-daily-aggregate-20261120-driver", Namespace: ns,
		Labels: map[string]string{"spark-role": "driver", "spark-app-name": app.GetName(), "sparkoperator.k8s.io/app-name": app.GetName(),
			"spark-app-selector": "spark-4c8b1e2f9a7d4b3c8e1f0a9b7c6d5e4f"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "sparkoperator.k8s.io/v1beta2", Kind: "SparkApplication", Name: app.GetName(), UID: app.GetUID(), Controller: &ctl}}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "spark-kubernetes-driver", Image: "registry.example.com/spark:3.5.1",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4505Mi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4505Mi")}}}}}}
	// The watchers see the application before its driver (as in a cluster: the operator
	// creates the driver after the application).
	time.Sleep(time.Second)
	pod := createPod(t, c, driver)
	writeStatus(t, c, pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "spark-kubernetes-driver", Image: "registry.example.com/spark:3.5.1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled",
				StartedAt: metav1.NewTime(time.Now().Add(-40 * time.Minute)), FinishedAt: metav1.Now()}}}}
	})
	cur, err := dyn.Resource(spark.ApplicationResource).Namespace(ns).Get(context.Background(), app.GetName(), metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, unstructured.SetNestedMap(cur.Object, map[string]any{"state": "FAILED",
		"errorMessage": "driver container failed with ExitCode: 137, Reason: OOMKilled"}, "status", "applicationState"))
	_, err = dyn.Resource(spark.ApplicationResource).Namespace(ns).UpdateStatus(context.Background(), cur, metav1.UpdateOptions{})
	require.NoError(t, err)

	var p finding.Proposal
	require.Eventually(t, func() bool {
		all := inboxProposals(inbox)
		if len(all) != 1 {
			return false
		}
		p = all[0]
		return true
	}, 30*time.Second, 100*time.Millisecond, "no proposal\n%s", pm.logs())
	assert.Equal(t, finding.OOMKilled, p.Finding.Kind)
	assert.Equal(t, "SparkApplication", p.Action.Params["target"])
	assert.Equal(t, "driver", p.Action.Params["role"])
	assert.Equal(t, "4g", p.Action.Params["memory"])
	overhead := p.Action.Params["memoryOverhead"]
	t.Logf("proposal %s: memoryOverhead 409m -> %s (pod limit 4505Mi -> %s)", p.ID, overhead, p.Action.Params["limit"])

	page := inboxPost(t, inbox, "/proposals/"+p.ID+"/approve")
	assert.Contains(t, page, "SparkApplication "+ns+"/"+app.GetName()+": spec.driver memory 4g -&gt; 4g, memoryOverhead 409m -&gt; "+overhead)
	got, err := dyn.Resource(spark.ApplicationResource).Namespace(ns).Get(context.Background(), app.GetName(), metav1.GetOptions{})
	require.NoError(t, err)
	v, _, _ := unstructured.NestedString(got.Object, "spec", "driver", "memoryOverhead")
	assert.Equal(t, overhead, v, "the application read back has the new overhead")
	m, _, _ := unstructured.NestedString(got.Object, "spec", "driver", "memory")
	assert.Equal(t, "4g", m)
	for _, f := range pm.all() {
		assert.NotEqual(t, finding.SparkAppFailed, f.Kind, "the run is one finding: its driver's OOM kill")
	}

	// The task's next run: Airflow creates a new application with the DAG's 4g and no
	// overhead; the webhook gives its driver the approved overhead.
	var next *unstructured.Unstructured
	require.Eventually(t, func() bool {
		name := fmt.Sprintf("sales-daily-aggregate-20261121-%d", time.Now().UnixMilli()%100000)
		next = writeSparkApp(t, dyn, ns, strings.Replace(salesApp, "sales-daily-aggregate-20261120", name, 1),
			map[string]any{"applicationState": map[string]any{"state": "SUBMITTED"}})
		_, ok := next.GetAnnotations()["podmedic.io/memory-override"]
		return ok
	}, 15*time.Second, 500*time.Millisecond, "the next application was not raised\n%s", pm.logs())
	v, _, _ = unstructured.NestedString(next.Object, "spec", "driver", "memoryOverhead")
	assert.Equal(t, overhead, v, "the next application of the task gets the override")
	m, _, _ = unstructured.NestedString(next.Object, "spec", "driver", "memory")
	assert.Equal(t, "4g", m)
}
