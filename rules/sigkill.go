package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// SIGKILLPlugin detects containers (and init containers) killed with SIGKILL — exit code 137 or
// signal 9 — by something other than the OOM killer: a failed liveness probe, a node shutdown,
// an active deadline, or a grace period that ran out after SIGTERM. Airflow logs all of them as
// "Task exited with return code Negsignal.SIGKILL"; they need other fixes than an OOM kill, so
// they are never reported as OOMKilled. Kills that are part of an eviction are left to Evicted.
// It has no thresholds.
func SIGKILLPlugin() Plugin {
	return Plugin{
		Kind: finding.SIGKILL,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return capitalized(r.Container) + " was killed with SIGKILL (exit 137), but not by the OOM killer: a higher memory limit will not help."
		},
		FailureSince: terminatedSince,
		Object:       config.ObjectPod,
		Specificity:  90,
		New:          func(config.Args) Detector { return SIGKILLDetector{} },
	}
}

// SIGKILLDetector is the SIGKILL detector.
type SIGKILLDetector struct{}

var _ Detector = SIGKILLDetector{}

// Exit code and signal of a SIGKILL.
const (
	ExitCodeSIGKILL = 137 // 128 + 9
	signalKill      = 9
)

// Detect implements Detector.
func (SIGKILLDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil {
		return nil
	}
	statuses := allStatuses(pod)
	if !slices.ContainsFunc(statuses, func(cs corev1.ContainerStatus) bool { t, _ := sigkillTermination(cs); return t != nil }) {
		return nil // no kill: no need for the events
	}
	events := podEvents(in)
	if disruptionOf(pod, events).eviction() {
		return nil // the kill is how the eviction ended; Evicted reports it
	}
	var out []finding.Finding
	for _, cs := range statuses {
		term, when := sigkillTermination(cs)
		if term == nil {
			continue
		}
		f := PodFinding(finding.SIGKILL, pod, cs.Name)
		f.Occurrence = terminationOccurrence(cs, term)
		reason := term.Reason
		if reason == "" {
			reason = "no reason"
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("container %s killed by SIGKILL (exit %d, reason %s) at %s%s: not an OOM kill",
			cs.Name, term.ExitCode, reason, timeString(term.FinishedAt), when))
		if term.Message != "" {
			f.Evidence = append(f.Evidence, "message: "+clipText(term.Message))
		}
		f.Evidence = append(f.Evidence, sigkillCauses(pod, cs.Name, term, events)...)
		if IsAirflowWorker(&pod.ObjectMeta) {
			f.Evidence = append(f.Evidence, `Airflow logs this as "Task exited with return code Negsignal.SIGKILL"; a higher memory limit will not help`)
		}
		out = append(out, f)
	}
	return out
}

// sigkillTermination returns the SIGKILL termination of a container status, not an OOM kill,
// from its current state or, for a container that restarted, its last state.
func sigkillTermination(cs corev1.ContainerStatus) (*corev1.ContainerStateTerminated, string) {
	isKill := func(t *corev1.ContainerStateTerminated) bool {
		return t != nil && t.Reason != ReasonOOMKilled && (t.ExitCode == ExitCodeSIGKILL || t.Signal == signalKill)
	}
	if t := cs.State.Terminated; t != nil {
		if isKill(t) {
			return t, ""
		}
		return nil, "" // the current termination is another failure (or an OOM kill)
	}
	if t := cs.LastTerminationState.Terminated; isKill(t) {
		return t, fmt.Sprintf(" (restarted, %d restarts)", cs.RestartCount)
	}
	return nil, ""
}

// sigkillCauses explains who sent the SIGKILL, from the pod's status and events.
func sigkillCauses(pod *corev1.Pod, container string, term *corev1.ContainerStateTerminated, events []*corev1.Event) []string {
	var causes, lines []string
	cause := func(c string) {
		if !slices.Contains(causes, c) {
			causes = append(causes, c)
		}
	}
	show := func(e *corev1.Event) {
		if l := eventLine(e); !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	shutdown := fmt.Sprintf("cause: node %s shut down and the container did not stop within the shutdown grace period", pod.Spec.NodeName)
	for _, e := range events {
		if !eventAboutContainer(e, container) {
			continue
		}
		msg := strings.ToLower(e.Message)
		switch {
		case (e.Reason == "Killing" || e.Reason == "Unhealthy") && strings.Contains(msg, "liveness probe"):
			cause("cause: the kubelet killed the container after its liveness probe failed")
		case (e.Reason == "Killing" || e.Reason == "Unhealthy") && strings.Contains(msg, "startup probe"):
			cause("cause: the kubelet killed the container after its startup probe failed")
		case e.Reason == reasonNodeShutdown || mentionsShutdown(e.Reason+" "+e.Message):
			cause(shutdown)
		case e.Reason == "DeadlineExceeded":
			cause(deadlineCause(pod))
		case e.Reason == "ExceededGracePeriod":
			cause(graceCause(pod))
		case e.Reason == "Killing" && strings.HasPrefix(msg, "stopping container"):
			// The kubelet stopped the container (deletion, shutdown, deadline): SIGTERM, then
			// SIGKILL when the grace period ran out. Shown for its time; the cause is elsewhere.
		default:
			continue
		}
		show(e)
	}
	if pod.Status.Reason == "DeadlineExceeded" {
		cause(deadlineCause(pod))
	}
	if mentionsShutdown(pod.Status.Reason + " " + pod.Status.Message) {
		cause(shutdown)
	}
	if deletedBefore(pod, term) {
		cause(graceCause(pod))
	}
	if len(causes) == 0 {
		causes = append(causes, "cause unknown: not the OOM killer; look for a liveness probe, a node shutdown, a grace period that ran out after SIGTERM, or a process that sent kill -9")
	}
	return append(causes, lines...)
}

func deadlineCause(pod *corev1.Pod) string {
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
		return fmt.Sprintf("cause: the pod ran longer than its activeDeadlineSeconds (%ds)", *d)
	}
	return "cause: the pod ran longer than its activeDeadlineSeconds"
}

// deletedBefore reports whether the pod's deletion was requested before the container ended.
// The deletion timestamp is the end of the grace period: the request came grace seconds earlier.
func deletedBefore(pod *corev1.Pod, term *corev1.ContainerStateTerminated) bool {
	if pod.DeletionTimestamp == nil {
		return false
	}
	requested := pod.DeletionTimestamp.Time
	if g := gracePeriod(pod); g != nil {
		requested = requested.Add(-time.Duration(*g) * time.Second)
	}
	return term.FinishedAt.IsZero() || !term.FinishedAt.Time.Before(requested)
}

// gracePeriod is the pod's deletion grace period in seconds, else its termination grace period.
func gracePeriod(pod *corev1.Pod) *int64 {
	if pod.DeletionGracePeriodSeconds != nil {
		return pod.DeletionGracePeriodSeconds
	}
	return pod.Spec.TerminationGracePeriodSeconds
}

func graceCause(pod *corev1.Pod) string {
	if grace := gracePeriod(pod); grace != nil {
		return fmt.Sprintf("cause: the container did not exit within its grace period of %ds after SIGTERM", *grace)
	}
	return "cause: the container did not exit within its grace period after SIGTERM"
}

// eventAboutContainer reports whether a pod event is about the named container or the pod as a
// whole (no container field path).
func eventAboutContainer(e *corev1.Event, container string) bool {
	fp := e.InvolvedObject.FieldPath
	if fp == "" {
		return true
	}
	return strings.HasSuffix(fp, "{"+container+"}")
}
