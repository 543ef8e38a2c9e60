package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// airflowWorker is a pod shaped like one the Airflow KubernetesExecutor creates: the
// identifying labels (sanitized) and annotations (exact), one `base` container with limits.
func airflowWorker(ns, name, dag, task string) *corev1.Pod {
	runID := "scheduled__2026-11-20T00:00:00+00:00"
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{
				"kubernetes_executor": "True", "airflow-worker": "1234", "airflow_version": "2.10.3",
				"dag_id": dag, "task_id": task, "try_number": "1",
				"run_id": "scheduled__2026-11-20T0000000000-6a1b2c3d4",
			},
			Annotations: map[string]string{"dag_id": dag, "task_id": task, "run_id": runID, "try_number": "1"},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "base", Image: "apache/airflow:2.10.3",
				Args: []string{"airflow", "tasks", "run", dag, task, runID, "--local"},
				Env:  []corev1.EnvVar{{Name: "AIRFLOW_IS_K8S_EXECUTOR_POD", Value: "True"}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1536Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
				},
			}},
		},
	}
}

// createPod creates a pod and returns it as stored.
func createPod(t *testing.T, c kubernetes.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := c.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	return got
}

// writeStatus writes a pod's status through the status subresource, as the kubelet does.
func writeStatus(t *testing.T, c kubernetes.Interface, p *corev1.Pod, mutate func(*corev1.PodStatus)) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	cur, err := c.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	require.NoError(t, err)
	mutate(&cur.Status)
	got, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
	require.NoError(t, err)
	return got
}

// oomKilled is the status a kubelet writes for a worker whose container was OOM-killed.
func oomKilled(started time.Time) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.StartTime = &metav1.Time{Time: started}
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "base", Image: "apache/airflow:2.10.3", ImageID: "docker.io/apache/airflow@sha256:0",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "OOMKilled",
				StartedAt: metav1.Time{Time: started}, FinishedAt: metav1.Time{Time: started.Add(90 * time.Second)},
			}},
		}}
	}
}

// running is the status of a healthy running worker.
func running(started time.Time) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.StartTime = &metav1.Time{Time: started}
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "base", Image: "apache/airflow:2.10.3", Ready: true, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: started}}},
		}}
	}
}

func ptr[T any](v T) *T { return &v }
