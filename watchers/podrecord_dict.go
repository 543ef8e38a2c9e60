package watchers

import (
	"bytes"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podDictionary is the deflate dictionary of cached pods: the trimmed JSON of a few typical
// pods (a Deployment's, a Spark driver waiting on its volume, a failed Job's, an Airflow
// worker), so that a cached pod costs little more than its own names, ids and times. The most
// common shape comes last (closest, cheapest to refer to). Changing it only changes how well
// pods compress: records never leave the process.
func podDictionary() []byte {
	at := metav1.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mem := func(s string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(s)}
	}
	grace, deadline := int64(30), int64(3600)
	yes := true
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}
	done := func(code int32, reason string) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: at, FinishedAt: at}}
	}
	cond := func(t corev1.PodConditionType, s corev1.ConditionStatus, reason string) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: at, Reason: reason}
	}
	ctl := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: "00000000-0000-0000-0000-000000000000", Controller: &yes, BlockOwnerDeletion: &yes}}
	}
	pods := []*corev1.Pod{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f9c7b6d-x2x7q", Namespace: "default", UID: "00000000-0000-0000-0000-000000000000",
				ResourceVersion: "123456", CreationTimestamp: at, OwnerReferences: ctl("ReplicaSet", "web-5d8f9c7b6d"),
				Labels: map[string]string{"app": "web", "app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web",
					"app.kubernetes.io/component": "server", "pod-template-hash": "5d8f9c7b6d"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Limits: mem("512Mi"), Requests: mem("256Mi")},
				LivenessProbe: &corev1.Probe{}}}, RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace, NodeName: "ip-10-0-1-23.ec2.internal"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &at,
				Conditions:        []corev1.PodCondition{cond(corev1.PodInitialized, corev1.ConditionTrue, ""), cond(corev1.PodScheduled, corev1.ConditionTrue, "")},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: running, RestartCount: 1, Started: &yes, LastTerminationState: done(137, "OOMKilled")}}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "nightly-aggregation-driver", Namespace: "spark-jobs", UID: "00000000-0000-0000-0000-000000000000",
				ResourceVersion: "123456", CreationTimestamp: at, OwnerReferences: ctl("SparkApplication", "nightly-aggregation"),
				Labels: map[string]string{"spark-role": "driver", "spark-app-selector": "spark-00000000000000000000000000000000",
					"spark-app-name": "nightly-aggregation", "sparkoperator.k8s.io/app-name": "nightly-aggregation",
					"sparkoperator.k8s.io/launched-by-spark-operator": "true", "sparkoperator.k8s.io/submission-id": "00000000-0000-0000-0000-000000000000"}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "wait-for-pvc", Resources: corev1.ResourceRequirements{Limits: mem("64Mi"), Requests: mem("64Mi")}}},
				Containers:     []corev1.Container{{Name: "spark-kubernetes-driver", Resources: corev1.ResourceRequirements{Limits: mem("4505Mi"), Requests: mem("4505Mi")}}},
				Volumes: []corev1.Volume{{Name: "history", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
					ClaimName: "spark-history-server-pvc"}}}},
				RestartPolicy: corev1.RestartPolicyNever, TerminationGracePeriodSeconds: &grace, NodeName: "ip-10-0-3-17.ec2.internal"},
			Status: corev1.PodStatus{Phase: corev1.PodPending, StartTime: &at,
				Conditions: []corev1.PodCondition{cond(corev1.PodInitialized, corev1.ConditionFalse, "ContainersNotInitialized"),
					cond(corev1.PodScheduled, corev1.ConditionTrue, "")},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "wait-for-pvc", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "spark-kubernetes-driver",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "backfill-29300000-abcde", Namespace: "batch", UID: "00000000-0000-0000-0000-000000000000",
				ResourceVersion: "123456", CreationTimestamp: at, OwnerReferences: ctl("Job", "backfill-29300000"),
				Labels: map[string]string{"batch.kubernetes.io/controller-uid": "00000000-0000-0000-0000-000000000000", "batch.kubernetes.io/job-name": "backfill-29300000",
					"controller-uid": "00000000-0000-0000-0000-000000000000", "job-name": "backfill-29300000"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{Limits: mem("1Gi"), Requests: mem("1Gi")}}},
				RestartPolicy: corev1.RestartPolicyOnFailure, ActiveDeadlineSeconds: &deadline, TerminationGracePeriodSeconds: &grace, NodeName: "ip-10-0-2-9.ec2.internal"},
			Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory. ", StartTime: &at,
				Conditions: []corev1.PodCondition{cond(corev1.DisruptionTarget, corev1.ConditionTrue, "TerminationByKubelet"),
					cond(corev1.PodInitialized, corev1.ConditionTrue, ""), cond(corev1.PodScheduled, corev1.ConditionTrue, "")},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: done(1, "Error"), RestartCount: 2,
					LastTerminationState: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}}}}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "etl-daily-load-0a1b2c3d", Namespace: "airflow", UID: "00000000-0000-0000-0000-000000000000",
				ResourceVersion: "123456", CreationTimestamp: at,
				Labels: map[string]string{"airflow-worker": "123", "airflow_version": "2.10.5", "component": "worker",
					"dag_id": "etl_daily", "kubernetes_executor": "True", "release": "airflow", "run_id": "scheduled__2026-01-02T0000000000-000000000",
					"task_id": "load", "tier": "airflow", "try_number": "1", "map_index": "0"},
				Annotations: map[string]string{"dag_id": "etl_daily", "task_id": "load", "run_id": "scheduled__2026-01-02T00:00:00+00:00",
					"try_number": "1", "map_index": "0", "cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "karpenter.sh/do-not-disrupt": "true"}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "git-sync-init", Resources: corev1.ResourceRequirements{Limits: mem("128Mi"), Requests: mem("128Mi")}}},
				Containers:     []corev1.Container{{Name: "base", Resources: corev1.ResourceRequirements{Limits: mem("2Gi"), Requests: mem("2Gi")}}},
				RestartPolicy:  corev1.RestartPolicyNever, TerminationGracePeriodSeconds: &grace, NodeName: "ip-10-0-4-203.eu-west-1.compute.internal"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &at,
				Conditions:            []corev1.PodCondition{cond(corev1.PodInitialized, corev1.ConditionTrue, ""), cond(corev1.PodScheduled, corev1.ConditionTrue, "")},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "git-sync-init", State: done(0, "Completed")}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "base", State: running, Started: &yes}}},
		},
	}
	var dict bytes.Buffer
	for _, p := range pods {
		raw, err := json.Marshal(TrimPod(p))
		if err != nil {
			panic(err) // static input
		}
		dict.Write(raw)
	}
	return dict.Bytes()
}
