package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTaskFailedDetector(t *testing.T) {
	runDetectorCases(t, TaskFailedPlugin(), nil, "testdata/pods/taskfailed.json", []detectorCase{{
		name: "Airflow worker exit 1", namespace: "airflow", pod: "etl-daily-validate-b6m1r9xe",
		want: []wantFinding{{container: "base", evidence: []string{
			"container base exited with code 1, reason Error, at 2026-11-20T02:12:40Z after 2m29s",
		}}},
	}, {
		name: "spark-submit driver", namespace: "spark-jobs", pod: "daily-attribution-8d2e1f0c9a7b6354-driver",
		want: []wantFinding{{container: "spark-kubernetes-driver", evidence: []string{
			"container spark-kubernetes-driver exited with code 1, reason Error, at 2026-11-20T01:41:57Z after 41m",
		}}},
	}, {
		name: "Job pod with a termination message", namespace: "batch", pod: "ingest-orders-29400120-q8z5k",
		want: []wantFinding{{container: "ingest", evidence: []string{
			"container ingest exited with code 2, reason Error, at 2026-11-20T02:03:16Z after 3m10s",
		}, mentions: []string{"message: psycopg2.OperationalError", "too many connections"}}},
	}, {
		name: "driver failed while its sidecar runs (restartPolicy Never)", namespace: "spark-jobs", pod: "churn-features-driver",
		want: []wantFinding{{container: "spark-kubernetes-driver", mentions: []string{"exited with code 1"}}},
	}, {
		name: "not a task pod", namespace: "airflow", pod: "dns-debug",
	}, {
		name: "running worker", namespace: "airflow", pod: "etl-daily-report-5j7x2c9p",
	}})

	runDetectorCases(t, TaskFailedPlugin(), nil, "testdata/pods/oomkilled.json", []detectorCase{{
		// OOMKilled is more specific (the engine keeps it); the container is the driver, not the
		// sidecar listed first in the status.
		name: "the task's container, not the sidecar", namespace: "spark-jobs", pod: "nightly-rollup-driver",
		want: []wantFinding{{container: "spark-kubernetes-driver", mentions: []string{"code 137 (SIGKILL), reason OOMKilled"}}},
	}})
	runDetectorCases(t, TaskFailedPlugin(), nil, "testdata/pods/succeeded.json", []detectorCase{{
		name: "succeeded worker", namespace: "airflow", pod: "etl-daily-extract-0q3m8z1v",
	}, {
		name: "succeeded driver", namespace: "spark-jobs", pod: "nightly-sessions-driver",
	}, {
		name: "completed Job pod", namespace: "batch", pod: "ingest-customers-29400120-m2v7c",
	}})
}

// TestTaskFailedWithoutContainer: a pod the kubelet rejected has no container to blame.
func TestTaskFailedWithoutContainer(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: "etl-daily-load-x", UID: "u",
			Labels:      map[string]string{LabelAirflowExecutor: "True"},
			Annotations: map[string]string{"dag_id": "etl_daily", "task_id": "load", "try_number": "2"}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "base"}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "NodeAffinity",
			Message: "Pod was rejected: Predicate NodeAffinity failed"},
	}
	got := TaskFailedDetector{}.Detect(Input{Pod: pod, Now: nightNow})
	require.Len(t, got, 1)
	assert.Equal(t, "", got[0].Container)
	assert.Equal(t, []string{"pod Failed: NodeAffinity: Pod was rejected: Predicate NodeAffinity failed"}, got[0].Evidence)
	assert.Equal(t, "failed", got[0].Occurrence)
	require.NotNil(t, got[0].Airflow)
	assert.Equal(t, 2, got[0].Airflow.TryNumber)
}

// TestTaskFailedNotForASidecar: a sidecar that exits non-zero while the driver runs is not the
// task failing.
func TestTaskFailedNotForASidecar(t *testing.T) {
	d := loadFixture(t, "testdata/pods/taskfailed.json")
	pod := fixturePod(t, d, "spark-jobs", "churn-features-driver").DeepCopy()
	statuses := pod.Status.ContainerStatuses // fluent-bit, spark-kubernetes-driver
	statuses[0].State, statuses[1].State = statuses[1].State, statuses[0].State
	require.NotNil(t, statuses[0].State.Terminated, "the sidecar exited")
	assert.Empty(t, TaskFailedDetector{}.Detect(Input{Pod: pod, View: d.View(), Now: nightNow}))
}
