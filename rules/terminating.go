package rules

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// StuckTerminatingPlugin detects pods that are still present terminating_timeout after their
// deletion deadline: usually a node that is gone or whose kubelet is down, or a finalizer that
// nothing removes.
func StuckTerminatingPlugin() Plugin {
	return Plugin{
		Kind: finding.StuckTerminating,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return capitalized(r.Pod) + " is stuck Terminating after its grace period."
		},
		FailureSince: terminatingSince,
		Object:       config.ObjectPod,
		Specificity:  55,
		DefaultArgs:  func() config.Args { return DefaultStuckTerminatingArgs() },
		New: func(a config.Args) Detector {
			return StuckTerminatingDetector{Args: *argsOf(a, DefaultStuckTerminatingArgs)}
		},
	}
}

// StuckTerminatingArgs are the StuckTerminating thresholds.
type StuckTerminatingArgs struct {
	// TerminatingTimeout is how long a pod may remain after its grace period ended. Default 10m.
	TerminatingTimeout config.Duration `yaml:"terminating_timeout"`
}

// DefaultStuckTerminatingArgs returns the default StuckTerminating thresholds.
func DefaultStuckTerminatingArgs() *StuckTerminatingArgs {
	return &StuckTerminatingArgs{TerminatingTimeout: config.Duration{Duration: 10 * time.Minute}}
}

// Validate implements Args.
func (a *StuckTerminatingArgs) Validate() []config.FieldError {
	return positiveDuration("terminating_timeout", a.TerminatingTimeout)
}

// StuckTerminatingDetector is the StuckTerminating detector.
type StuckTerminatingDetector struct{ Args StuckTerminatingArgs }

var _ Detector = StuckTerminatingDetector{}

// Detect implements Detector.
//
// The API server sets a pod's deletionTimestamp to the time of the delete request plus the
// grace period (deletionGracePeriodSeconds): it already is the end of the grace period, so the
// pod is stuck once now is past deletionTimestamp + terminating_timeout.
func (d StuckTerminatingDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || pod.DeletionTimestamp == nil {
		return nil
	}
	deadline := pod.DeletionTimestamp.Time
	over := in.Now.Sub(deadline)
	if over <= d.Args.TerminatingTimeout.Duration {
		return nil
	}
	f := PodFinding(finding.StuckTerminating, pod, "")
	// A pod is deleted once. A second delete may move the deadline earlier; it is still the
	// same stuck deletion, so the deletion timestamp is not part of the occurrence.
	f.Occurrence = "terminating"
	grace := "unknown"
	if g := gracePeriod(pod); g != nil {
		grace = fmt.Sprintf("%ds", *g)
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("pod still present %s after its grace period ended (deletionTimestamp %s, grace period %s), timeout %s",
		humanDuration(over), timeString(*pod.DeletionTimestamp), grace, humanDuration(d.Args.TerminatingTimeout.Duration)))
	node := pod.Spec.NodeName
	if node == "" {
		node = "no node"
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("node %s, phase %s", node, phaseOf(pod)))
	var running []string
	for _, cs := range allStatuses(pod) {
		if cs.State.Running != nil {
			running = append(running, cs.Name)
		}
	}
	if len(running) > 0 {
		f.Evidence = append(f.Evidence, "containers still reported running: "+strings.Join(running, ", ")+
			" (the kubelet on "+node+" has not confirmed that they stopped)")
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf(
		"check whether node %s is Ready and the pod's finalizers (kubectl get pod -n %s %s -o jsonpath='{.metadata.finalizers}'); finalizers are not in podmedic's view",
		node, pod.Namespace, pod.Name))
	return []finding.Finding{f}
}

// terminatingSince is the deletion deadline (deletionTimestamp, which includes the grace
// period).
func terminatingSince(_ *finding.Finding, pod *corev1.Pod) time.Time {
	if pod.DeletionTimestamp != nil {
		return pod.DeletionTimestamp.Time
	}
	return time.Time{}
}
