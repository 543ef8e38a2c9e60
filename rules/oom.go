package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// OOMKilledPlugin detects containers (and init containers) the kernel killed for exceeding
// their memory limit: reason OOMKilled in the current state, or in the last state of a container
// that has restarted since. It has no thresholds: one OOM kill is worth a finding.
func OOMKilledPlugin() Plugin {
	return Plugin{
		Kind: finding.OOMKilled,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return capitalized(r.Container) + " was killed for exceeding its memory limit (OOMKilled)."
		},
		FailureSince: terminatedSince,
		Object:       "Pod",
		Specificity:  100,
		New:          func(config.Args) Detector { return OOMDetector{} },
	}
}

// OOMDetector is the OOMKilled detector.
type OOMDetector struct{}

var _ Detector = OOMDetector{}

// ReasonOOMKilled is the container termination reason the kubelet reports for an OOM kill.
const ReasonOOMKilled = "OOMKilled"

// Detect implements Detector.
func (OOMDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil {
		return nil
	}
	var out []finding.Finding
	for _, cs := range allStatuses(pod) {
		term, when := oomTermination(cs)
		if term == nil {
			continue
		}
		f := PodFinding(finding.OOMKilled, pod, cs.Name)
		f.Occurrence = terminationOccurrence(cs, term)
		f.Evidence = append(f.Evidence, fmt.Sprintf("container %s terminated: OOMKilled (exit %d) at %s%s",
			cs.Name, term.ExitCode, timeString(term.FinishedAt), when))
		f.Evidence = append(f.Evidence, memoryEvidence(containerSpec(pod, cs.Name))...)
		out = append(out, f)
	}
	return out
}

// oomTermination returns the OOM termination of a container status, from its current state
// or, for a container that restarted, its last state.
func oomTermination(cs corev1.ContainerStatus) (*corev1.ContainerStateTerminated, string) {
	if t := cs.State.Terminated; t != nil && t.Reason == ReasonOOMKilled {
		return t, ""
	}
	if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == ReasonOOMKilled {
		return t, fmt.Sprintf(" (restarted, %d restarts)", cs.RestartCount)
	}
	return nil, ""
}

// memoryEvidence describes a container's memory limit and request.
func memoryEvidence(c *corev1.Container) []string {
	if c == nil {
		return nil
	}
	var out []string
	if l, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		out = append(out, "memory limit "+l.String())
	} else {
		out = append(out, "no memory limit")
	}
	if r, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
		out = append(out, "memory request "+r.String())
	}
	return out
}
