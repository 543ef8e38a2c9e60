package rules

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/finding"
)

// Labels and annotations that identify Airflow KubernetesExecutor workers and Spark pods.
const (
	LabelAirflowExecutor = "kubernetes_executor" // "True" on KubernetesExecutor workers
	LabelAirflowWorker   = "airflow-worker"      // the worker's scheduler job id
	LabelSparkRole       = "spark-role"          // driver or executor
	LabelSparkAppSel     = "spark-app-selector"  // the application id
	LabelSparkAppName    = "spark-app-name"      // the application name (Spark 3.4+)
	LabelSparkOperator   = "sparkoperator.k8s.io/app-name"
)

// IsAirflowWorker reports whether pod is an Airflow KubernetesExecutor worker.
func IsAirflowWorker(m *metav1.ObjectMeta) bool {
	if v, ok := m.Labels[LabelAirflowExecutor]; ok && (v == "True" || v == "true") {
		return true
	}
	_, ok := m.Labels[LabelAirflowWorker]
	return ok
}

// IsSpark reports whether pod belongs to a Spark application.
func IsSpark(m *metav1.ObjectMeta) bool {
	_, role := m.Labels[LabelSparkRole]
	_, sel := m.Labels[LabelSparkAppSel]
	return role || sel
}

// AirflowIdentity returns the task instance an Airflow worker pod runs, or nil. The
// annotations carry the exact values; the labels are sanitized (run_id in particular), so they
// are only a fallback.
func AirflowIdentity(m *metav1.ObjectMeta) *finding.AirflowTask {
	if !IsAirflowWorker(m) {
		return nil
	}
	get := func(k string) string {
		if v := m.Annotations[k]; v != "" {
			return v
		}
		return m.Labels[k]
	}
	t := &finding.AirflowTask{DagID: get("dag_id"), TaskID: get("task_id"), RunID: get("run_id")}
	if t.RunID == "" {
		t.RunID = get("execution_date") // Airflow 1.10 / early 2.x workers
	}
	if n, err := strconv.Atoi(get("try_number")); err == nil {
		t.TryNumber = n
	}
	if v := get("map_index"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			t.MapIndex = &n
		}
	}
	if t.DagID == "" && t.TaskID == "" {
		return nil
	}
	return t
}

// SparkIdentity returns the Spark application a pod belongs to, or nil.
func SparkIdentity(m *metav1.ObjectMeta) *finding.SparkApp {
	if !IsSpark(m) {
		return nil
	}
	s := &finding.SparkApp{
		AppName: m.Labels[LabelSparkAppName],
		AppID:   m.Labels[LabelSparkAppSel],
		Role:    m.Labels[LabelSparkRole],
	}
	for _, o := range m.OwnerReferences {
		if o.Kind == "SparkApplication" {
			s.Owner = o.Name
		}
	}
	if s.Owner == "" {
		s.Owner = m.Labels[LabelSparkOperator]
	}
	if s.AppName == "" {
		s.AppName = s.Owner
	}
	return s
}

// OwnerOf returns the controller owner of an object ({"",""} for a bare pod).
func OwnerOf(m *metav1.ObjectMeta) finding.Owner {
	if ref := metav1.GetControllerOf(m); ref != nil {
		return finding.Owner{Kind: ref.Kind, Name: ref.Name}
	}
	return finding.Owner{}
}

// PodFinding returns a finding of kind k about pod (and container, when not empty) with the
// target, owner and task identity filled.
func PodFinding(k finding.Kind, pod *corev1.Pod, container string) finding.Finding {
	return finding.Finding{
		Kind:      k,
		Namespace: pod.Namespace,
		Pod:       pod.Name,
		Container: container,
		UID:       string(pod.UID),
		Owner:     OwnerOf(&pod.ObjectMeta),
		Airflow:   AirflowIdentity(&pod.ObjectMeta),
		Spark:     SparkIdentity(&pod.ObjectMeta),
	}
}

// containerSpec returns the spec of the named container or init container.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// allStatuses returns the init container statuses followed by the container statuses.
func allStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	if len(pod.Status.InitContainerStatuses) == 0 {
		return pod.Status.ContainerStatuses
	}
	out := make([]corev1.ContainerStatus, 0, len(pod.Status.InitContainerStatuses)+len(pod.Status.ContainerStatuses))
	out = append(out, pod.Status.InitContainerStatuses...)
	return append(out, pod.Status.ContainerStatuses...)
}

// timeString formats a Kubernetes time as RFC 3339 UTC, or "unknown time".
func timeString(t metav1.Time) string {
	if t.IsZero() {
		return "unknown time"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
