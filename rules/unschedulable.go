package rules

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// UnschedulablePlugin detects pods the scheduler has found no node for (condition PodScheduled
// False, reason Unschedulable) for longer than unschedulable_timeout, with the scheduler's and
// the cluster-autoscaler's reasons as evidence.
func UnschedulablePlugin() Plugin {
	return Plugin{
		Kind: finding.Unschedulable,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return capitalized(r.Pod) + " cannot be scheduled."
		},
		FailureSince: unschedulableSince,
		Object:       config.ObjectPod,
		Specificity:  60,
		DefaultArgs:  func() config.Args { return DefaultUnschedulableArgs() },
		New: func(a config.Args) Detector {
			return UnschedulableDetector{Args: *argsOf(a, DefaultUnschedulableArgs)}
		},
	}
}

// UnschedulableArgs are the Unschedulable thresholds.
type UnschedulableArgs struct {
	// UnschedulableTimeout is how long a pod may stay unschedulable. Default 10m.
	UnschedulableTimeout config.Duration `yaml:"unschedulable_timeout"`
}

// DefaultUnschedulableArgs returns the default Unschedulable thresholds.
func DefaultUnschedulableArgs() *UnschedulableArgs {
	return &UnschedulableArgs{UnschedulableTimeout: config.Duration{Duration: 10 * time.Minute}}
}

// Validate implements Args.
func (a *UnschedulableArgs) Validate() []config.FieldError {
	return positiveDuration("unschedulable_timeout", a.UnschedulableTimeout)
}

// UnschedulableDetector is the Unschedulable detector.
type UnschedulableDetector struct{ Args UnschedulableArgs }

var _ Detector = UnschedulableDetector{}

// schedulingReasons are the scheduler's and autoscalers' events about placing a pod.
var schedulingReasons = map[string]bool{
	"FailedScheduling": true, "NotTriggerScaleUp": true, "TriggeredScaleUp": true, "FailedScaleUp": true,
}

// Detect implements Detector.
func (d UnschedulableDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || podDone(pod) || pod.DeletionTimestamp != nil {
		return nil
	}
	c := podCondition(pod, corev1.PodScheduled)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
		return nil
	}
	since := c.LastTransitionTime
	if since.IsZero() {
		since = pod.CreationTimestamp
	}
	waited := in.Now.Sub(since.Time)
	if waited <= d.Args.UnschedulableTimeout.Duration {
		return nil
	}
	f := PodFinding(finding.Unschedulable, pod, "")
	// The condition's transition time stays put while the scheduler retries.
	f.Occurrence = timeString(since)
	line := fmt.Sprintf("pod unschedulable for %s (since %s), timeout %s", humanDuration(waited),
		timeString(since), humanDuration(d.Args.UnschedulableTimeout.Duration))
	if c.Message != "" {
		line += ": " + clipText(c.Message)
	}
	f.Evidence = append(f.Evidence, line)
	var evs []*corev1.Event
	for _, e := range podEvents(in) {
		if schedulingReasons[e.Reason] {
			evs = append(evs, e)
		}
	}
	for _, e := range newestEvents(evs, 3) {
		f.Evidence = append(f.Evidence, eventLine(e))
	}
	if strings.Contains(c.Message, "PersistentVolumeClaim") || strings.Contains(c.Message, "volume") {
		for _, cl := range podClaims(pod) {
			f.Evidence = append(f.Evidence, claimLine(in.View, pod.Namespace, cl))
		}
	}
	return []finding.Finding{f}
}

// unschedulableSince is the PodScheduled=False condition's lastTransitionTime.
func unschedulableSince(_ *finding.Finding, pod *corev1.Pod) time.Time {
	if c := podCondition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}
