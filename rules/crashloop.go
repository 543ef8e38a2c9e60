package rules

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// CrashLoopPlugin detects containers (and init containers) in CrashLoopBackOff that have
// restarted at least min_restarts times, with their last termination as evidence.
func CrashLoopPlugin() Plugin {
	return Plugin{
		Kind: finding.CrashLoop,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return capitalized(r.Container) + " is restarting in CrashLoopBackOff."
		},
		Object:      config.ObjectPod,
		Specificity: 50,
		DefaultArgs: func() config.Args { return DefaultCrashLoopArgs() },
		New: func(a config.Args) Detector {
			return CrashLoopDetector{Args: *argsOf(a, DefaultCrashLoopArgs)}
		},
	}
}

// CrashLoopArgs are the CrashLoop thresholds.
type CrashLoopArgs struct {
	// MinRestarts is the restart count from which a container in CrashLoopBackOff is a
	// finding. Default 5.
	MinRestarts int `yaml:"min_restarts"`
}

// DefaultCrashLoopArgs returns the default CrashLoop thresholds.
func DefaultCrashLoopArgs() *CrashLoopArgs { return &CrashLoopArgs{MinRestarts: 5} }

// Validate implements Args.
func (a *CrashLoopArgs) Validate() []config.FieldError {
	if a.MinRestarts < 1 {
		return []config.FieldError{{Field: "min_restarts", Message: "must be at least 1"}}
	}
	return nil
}

// CrashLoopDetector is the CrashLoop detector.
type CrashLoopDetector struct{ Args CrashLoopArgs }

var _ Detector = CrashLoopDetector{}

// ReasonCrashLoopBackOff is the waiting reason of a container the kubelet restarts with
// back-off.
const ReasonCrashLoopBackOff = "CrashLoopBackOff"

// Detect implements Detector.
func (d CrashLoopDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || podDone(pod) {
		return nil
	}
	var out []finding.Finding
	for _, cs := range allStatuses(pod) {
		w := cs.State.Waiting
		if w == nil || w.Reason != ReasonCrashLoopBackOff || int(cs.RestartCount) < d.Args.MinRestarts {
			continue
		}
		f := PodFinding(finding.CrashLoop, pod, cs.Name)
		// Restarts within one crash loop of one container are one finding; the restart count
		// and the back-off change at every look.
		f.Occurrence = timeString(metav1.NewTime(podStart(pod)))
		f.Evidence = append(f.Evidence, fmt.Sprintf("container %s in CrashLoopBackOff after %d restarts (minimum %d)",
			cs.Name, cs.RestartCount, d.Args.MinRestarts))
		if t := cs.LastTerminationState.Terminated; t != nil {
			line := fmt.Sprintf("last termination: %s (exit %d%s) at %s", reasonOr(t.Reason, "no reason"),
				t.ExitCode, exitMeaning(t.ExitCode), timeString(t.FinishedAt))
			if !t.StartedAt.IsZero() && !t.FinishedAt.IsZero() {
				line += " after running " + humanDuration(t.FinishedAt.Sub(t.StartedAt.Time))
			}
			f.Evidence = append(f.Evidence, line)
			if t.Message != "" {
				f.Evidence = append(f.Evidence, "termination message: "+clipText(t.Message))
			}
		}
		if w.Message != "" {
			f.Evidence = append(f.Evidence, "kubelet: "+clipText(w.Message))
		}
		out = append(out, f)
	}
	return out
}
