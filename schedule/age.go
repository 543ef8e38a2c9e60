package schedule

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/finding"
)

// conditionDisruptionTarget is the pod condition the kubelet, the Eviction API, preemption and
// the taint manager set when they disrupt a pod.
const conditionDisruptionTarget corev1.PodConditionType = "DisruptionTarget"

// FailureSince is when the failure a finding is about began, as the pod tells it: what a
// sweep's older_than measures. It is the failure's age, not the pod's: a pod that ran for
// three days and was evicted a minute ago is a minute into its failure.
//
//   - Evicted: the DisruptionTarget condition's lastTransitionTime (the kubelet, the Eviction
//     API and preemption set it), else when the pod stopped being Ready, else when its last
//     container ended.
//   - OOMKilled, SIGKILL, TaskFailed: when the container (the finding's, else any) terminated,
//     else when the pod stopped being Ready.
//   - Unschedulable: the PodScheduled=False condition's lastTransitionTime.
//   - StuckTerminating: the deletion deadline (deletionTimestamp, which includes the grace
//     period).
//   - InitStuck, CrashLoop, VolumeMountFailed and the rest: when the pod started on its node
//     (status.startTime).
//
// Every case falls back to status.startTime, then to creationTimestamp (set by the apiserver,
// so always there).
func FailureSince(f *finding.Finding, pod *corev1.Pod) time.Time {
	var t time.Time
	switch f.Kind {
	case finding.Evicted:
		if c := condition(pod, conditionDisruptionTarget); c != nil && c.Status == corev1.ConditionTrue {
			t = c.LastTransitionTime.Time
		}
		if t.IsZero() {
			t = notReadySince(pod)
		}
		if t.IsZero() {
			t = lastTermination(pod, "")
		}
	case finding.OOMKilled, finding.SIGKILL, finding.TaskFailed:
		t = lastTermination(pod, f.Container)
		if t.IsZero() {
			t = notReadySince(pod)
		}
	case finding.Unschedulable:
		if c := condition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
			t = c.LastTransitionTime.Time
		}
	case finding.StuckTerminating:
		if pod.DeletionTimestamp != nil {
			t = pod.DeletionTimestamp.Time
		}
	}
	if t.IsZero() && pod.Status.StartTime != nil {
		t = pod.Status.StartTime.Time
	}
	if t.IsZero() {
		t = pod.CreationTimestamp.Time
	}
	return t
}

func condition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// notReadySince is when the pod's Ready condition became False, or zero.
func notReadySince(pod *corev1.Pod) time.Time {
	if c := condition(pod, corev1.PodReady); c != nil && c.Status == corev1.ConditionFalse {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// lastTermination is the latest time a container (the named one, or any when name is empty)
// terminated, from its state or last state, or zero.
func lastTermination(pod *corev1.Pod, name string) time.Time {
	var latest time.Time
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if name != "" && cs.Name != name {
				continue
			}
			for _, term := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
				if term != nil && term.FinishedAt.After(latest) {
					latest = term.FinishedAt.Time
				}
			}
		}
	}
	return latest
}
