package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// VolumeMountFailedPlugin detects pods whose volumes fail to attach or mount again and again:
// at least min_failures FailedMount, FailedAttachVolume or Multi-Attach events for the pod
// within window. Pods that have finished are left alone.
func VolumeMountFailedPlugin() Plugin {
	return Plugin{
		Kind: finding.VolumeMountFailed,
		Summary: func(f *finding.Finding, r finding.SummaryRefs) string {
			if f.Pod != "" {
				return "A volume of " + r.Pod + " fails to attach or mount."
			}
			return "PersistentVolumeClaim " + r.Object + " fails to attach or mount."
		},
		Object:      config.ObjectPod,
		Specificity: 65,
		DefaultArgs: func() config.Args { return DefaultVolumeMountFailedArgs() },
		New: func(a config.Args) Detector {
			return VolumeMountFailedDetector{Args: *argsOf(a, DefaultVolumeMountFailedArgs)}
		},
	}
}

// VolumeMountFailedArgs are the VolumeMountFailed thresholds.
type VolumeMountFailedArgs struct {
	// MinFailures is how many attach or mount failures within Window make a finding. Default 3.
	MinFailures int `yaml:"min_failures"`
	// Window is how far back failures are counted. Default 10m.
	Window config.Duration `yaml:"window"`
}

// DefaultVolumeMountFailedArgs returns the default VolumeMountFailed thresholds.
func DefaultVolumeMountFailedArgs() *VolumeMountFailedArgs {
	return &VolumeMountFailedArgs{MinFailures: 3, Window: config.Duration{Duration: 10 * time.Minute}}
}

// Validate implements Args.
func (a *VolumeMountFailedArgs) Validate() []config.FieldError {
	var errs []config.FieldError
	if a.MinFailures < 1 {
		errs = append(errs, config.FieldError{Field: "min_failures", Message: "must be at least 1"})
	}
	return append(errs, positiveDuration("window", a.Window)...)
}

// VolumeMountFailedDetector is the VolumeMountFailed detector.
type VolumeMountFailedDetector struct{ Args VolumeMountFailedArgs }

var _ Detector = VolumeMountFailedDetector{}

// mountFailureReasons are the event reasons of volume attach and mount failures. The
// attach/detach controller reports Multi-Attach errors as FailedAttachVolume; some
// distributions use Multi-Attach as the reason.
var mountFailureReasons = map[string]bool{
	"FailedMount": true, "FailedAttachVolume": true, "FailedMapVolume": true, "Multi-Attach": true,
}

// mountFailures returns the attach and mount failure events among events.
func mountFailures(events []*corev1.Event) []*corev1.Event {
	var out []*corev1.Event
	for _, e := range events {
		if mountFailureReasons[e.Reason] || strings.HasPrefix(e.Message, "Multi-Attach error") {
			out = append(out, e)
		}
	}
	return out
}

// Detect implements Detector.
func (d VolumeMountFailedDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || podDone(pod) {
		return nil
	}
	from := in.Now.Add(-d.Args.Window.Duration)
	var (
		recent   []*corev1.Event
		total    int
		byReason = map[string]int{}
		reasons  []string
	)
	for _, e := range mountFailures(podEvents(in)) {
		n := eventsWithin(e, from, in.Now)
		if n == 0 {
			continue
		}
		recent = append(recent, e)
		total += n
		if byReason[e.Reason] == 0 {
			reasons = append(reasons, e.Reason)
		}
		byReason[e.Reason] += n
	}
	if total < d.Args.MinFailures {
		return nil
	}
	f := PodFinding(finding.VolumeMountFailed, pod, "")
	// Volumes mount once per pod: all the failures of one pod are one finding.
	f.Occurrence = timeString(metav1.NewTime(podStart(pod)))
	counts := make([]string, len(reasons))
	for i, r := range reasons {
		counts[i] = fmt.Sprintf("%s x%d", r, byReason[r])
	}
	where := "pod " + phaseOf(pod)
	if pod.Spec.NodeName != "" {
		where += " on node " + pod.Spec.NodeName
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%d volume attach/mount failures in the last %s (%s), minimum %d; %s",
		total, humanDuration(d.Args.Window.Duration), strings.Join(counts, ", "), d.Args.MinFailures, where))
	for _, e := range newestEvents(recent, 4) {
		f.Evidence = append(f.Evidence, eventLine(e))
	}
	for _, c := range failedClaims(in.View, pod, recent) {
		f.Evidence = append(f.Evidence, claimLine(in.View, pod.Namespace, c))
	}
	return []finding.Finding{f}
}

// mountMessageVolumes finds the volumes an attach or mount failure names:
// `for volume "history"`, `unmounted volumes=[history other]`, `Multi-Attach error for volume "pvc-…"`.
var mountMessageVolumes = regexp.MustCompile(`volume "([^"]+)"|unmounted volumes=\[([^\]]*)\]`)

// failedClaims returns the pod's claims the failure events name (by volume name, claim name
// or bound PersistentVolume name); all its claims when the events name none of them.
func failedClaims(v View, pod *corev1.Pod, events []*corev1.Event) []claimOf {
	var names []string
	for _, e := range events {
		for _, m := range mountMessageVolumes.FindAllStringSubmatch(e.Message, -1) {
			names = append(names, m[1])
			names = append(names, strings.Fields(m[2])...)
		}
	}
	claims := podClaims(pod)
	var out []claimOf
	for _, c := range claims {
		match := slices.Contains(names, c.Volume) || slices.Contains(names, c.Claim)
		if !match && v != nil {
			if pvc := v.PVC(pod.Namespace, c.Claim); pvc != nil && pvc.Spec.VolumeName != "" {
				match = slices.Contains(names, pvc.Spec.VolumeName)
			}
		}
		if match {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return claims
	}
	return out
}
