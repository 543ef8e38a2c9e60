package rules

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/finding"
)

// Summary says in a sentence what a finding is about, built by its kind's plugin from the
// mentions the notifier formats (refs); false when the kind has no plugin or no summary.
func (r *Registry) Summary(f *finding.Finding, refs finding.SummaryRefs) (string, bool) {
	p, ok := r.plugins[f.Kind]
	if !ok || p.Summary == nil {
		return "", false
	}
	return p.Summary(f, refs), true
}

// FailureSince is when the failure a finding is about began, as the pod tells it: what a
// sweep's older_than measures. It is the failure's age, not the pod's: a pod that ran for
// three days and was evicted a minute ago is a minute into its failure. The kind's plugin
// knows (Plugin.FailureSince); when it does not, or the pod does not say, it is when the pod
// started on its node (status.startTime), else its creationTimestamp (set by the apiserver,
// so always there).
func (r *Registry) FailureSince(f *finding.Finding, pod *corev1.Pod) time.Time {
	var t time.Time
	if p, ok := r.plugins[f.Kind]; ok && p.FailureSince != nil {
		t = p.FailureSince(f, pod)
	}
	if t.IsZero() && pod.Status.StartTime != nil {
		t = pod.Status.StartTime.Time
	}
	if t.IsZero() {
		t = pod.CreationTimestamp.Time
	}
	return t
}

// terminatedSince is when the finding's container (else any) terminated, else when the pod
// stopped being Ready: the failure time of OOMKilled, SIGKILL and TaskFailed.
func terminatedSince(f *finding.Finding, pod *corev1.Pod) time.Time {
	if t := lastTermination(pod, f.Container); !t.IsZero() {
		return t
	}
	return notReadySince(pod)
}

// notReadySince is when the pod's Ready condition became False, or zero.
func notReadySince(pod *corev1.Pod) time.Time {
	if c := podCondition(pod, corev1.PodReady); c != nil && c.Status == corev1.ConditionFalse {
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

// capitalized upper-cases the first letter of a sentence that starts with a mention.
func capitalized(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
