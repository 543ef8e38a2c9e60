package rules

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// InitStuckPlugin detects pods that stay Pending in their init containers (kubectl shows
// Init:0/1) for longer than init_timeout: typically a Spark driver whose shared PVC cannot
// mount. The evidence gives the root cause when the pod's events, PVCs or image pulls show it.
func InitStuckPlugin() Plugin {
	return Plugin{
		Kind: finding.InitStuck,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return capitalized(r.Pod) + " is stuck in its init containers."
		},
		Object:      config.ObjectPod,
		Specificity: 70,
		DefaultArgs: func() config.Args { return DefaultInitStuckArgs() },
		New: func(a config.Args) Detector {
			return InitStuckDetector{Args: *argsOf(a, DefaultInitStuckArgs)}
		},
	}
}

// InitStuckArgs are the InitStuck thresholds.
type InitStuckArgs struct {
	// InitTimeout is how long a pod may stay in its init containers, counted from its start on
	// the node (else its creation). Default 15m.
	InitTimeout config.Duration `yaml:"init_timeout"`
}

// DefaultInitStuckArgs returns the default InitStuck thresholds.
func DefaultInitStuckArgs() *InitStuckArgs {
	return &InitStuckArgs{InitTimeout: config.Duration{Duration: 15 * time.Minute}}
}

// Validate implements Args.
func (a *InitStuckArgs) Validate() []config.FieldError {
	return positiveDuration("init_timeout", a.InitTimeout)
}

// InitStuckDetector is the InitStuck detector.
type InitStuckDetector struct{ Args InitStuckArgs }

var _ Detector = InitStuckDetector{}

// imagePullReasons are the waiting reasons of a container whose image cannot be pulled.
var imagePullReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
}

// Detect implements Detector.
func (d InitStuckDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodPending {
		return nil
	}
	st, ok := initStatus(pod)
	if !ok {
		return nil
	}
	start := podStart(pod)
	waited := in.Now.Sub(start)
	if waited <= d.Args.InitTimeout.Duration {
		return nil
	}
	f := PodFinding(finding.InitStuck, pod, "")
	// One stuck start of one pod: a later look at the same pod is the same finding.
	f.Occurrence = timeString(metav1.NewTime(start))
	f.Evidence = append(f.Evidence, fmt.Sprintf("init container %s not complete after %s (%s), timeout %s",
		st.container, humanDuration(waited), st.display, humanDuration(d.Args.InitTimeout.Duration)))
	node := pod.Spec.NodeName
	if node == "" {
		node = "no node"
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("pod Pending on %s since %s", node, timeString(metav1.NewTime(start))))
	if st.detail != "" {
		f.Evidence = append(f.Evidence, st.detail)
	}
	events := podEvents(in)
	for _, e := range newestEvents(mountFailures(events), 4) {
		f.Evidence = append(f.Evidence, eventLine(e))
	}
	for _, c := range podClaims(pod) {
		f.Evidence = append(f.Evidence, claimLine(in.View, pod.Namespace, c))
	}
	for _, cs := range allStatuses(pod) {
		if w := cs.State.Waiting; w != nil && imagePullReasons[w.Reason] {
			f.Evidence = append(f.Evidence, imagePullLines(cs, events)...)
		}
	}
	return []finding.Finding{f}
}

// initState is where a pod is in its init containers.
type initState struct {
	container string // the first init container not complete
	display   string // the status kubectl shows, e.g. Init:0/1, Init:ImagePullBackOff
	detail    string // what the container is doing, when worth saying
}

// initStatus reports whether the pod's init containers have not all completed, and where it
// is, as kubectl's STATUS column shows it.
func initStatus(pod *corev1.Pod) (initState, bool) {
	n := len(pod.Spec.InitContainers)
	if n == 0 {
		return initState{}, false
	}
	if c := podCondition(pod, corev1.PodInitialized); c != nil && c.Status == corev1.ConditionTrue {
		return initState{}, false
	}
	if len(pod.Status.InitContainerStatuses) == 0 {
		if pod.Spec.NodeName == "" {
			return initState{}, false // not scheduled: Unschedulable's business
		}
		name := pod.Spec.InitContainers[0].Name
		return initState{container: name, display: fmt.Sprintf("Init:0/%d", n),
			detail: "init container " + name + " has not started"}, true
	}
	for i, cs := range pod.Status.InitContainerStatuses {
		spec := containerSpec(pod, cs.Name)
		sidecar := spec != nil && spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
		st := initState{container: cs.Name}
		switch t, w := cs.State.Terminated, cs.State.Waiting; {
		case t != nil && t.ExitCode == 0:
			continue
		case sidecar && cs.Started != nil && *cs.Started:
			continue
		case t != nil:
			switch {
			case t.Reason != "":
				st.display = "Init:" + t.Reason
			case t.Signal != 0:
				st.display = fmt.Sprintf("Init:Signal:%d", t.Signal)
			default:
				st.display = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
			}
			st.detail = fmt.Sprintf("init container %s failed: exit %d (%s) at %s, %d restarts",
				cs.Name, t.ExitCode, t.Reason, timeString(t.FinishedAt), cs.RestartCount)
		case w != nil && w.Reason != "" && w.Reason != "PodInitializing":
			st.display = "Init:" + w.Reason
			if imagePullReasons[w.Reason] {
				break // the image pull lines say it
			}
			st.detail = "init container " + cs.Name + " waiting: " + w.Reason
			if lt := cs.LastTerminationState.Terminated; lt != nil {
				st.detail += fmt.Sprintf(", %d restarts, last exit %d (%s) at %s",
					cs.RestartCount, lt.ExitCode, lt.Reason, timeString(lt.FinishedAt))
			}
			if w.Message != "" {
				st.detail += ": " + clipText(w.Message)
			}
		default:
			st.display = fmt.Sprintf("Init:%d/%d", i, n)
			if r := cs.State.Running; r != nil {
				st.detail = fmt.Sprintf("init container %s running since %s", cs.Name, timeString(r.StartedAt))
			} else {
				st.detail = "init container " + cs.Name + " has not started (waiting: PodInitializing)"
			}
		}
		return st, true
	}
	return initState{}, false
}

// imagePullLines describes a container that cannot pull its image: its waiting state and the
// kubelet's newest pull failure, which says why (not found, unauthorized, ...).
func imagePullLines(cs corev1.ContainerStatus, events []*corev1.Event) []string {
	w := cs.State.Waiting
	line := fmt.Sprintf("container %s cannot pull its image: %s", cs.Name, w.Reason)
	if w.Message != "" {
		line += ": " + clipText(w.Message)
	}
	out := []string{line}
	var pulls []*corev1.Event
	for _, e := range events {
		if e.Reason == "Failed" && eventAboutContainer(e, cs.Name) && strings.HasPrefix(e.Message, "Failed to pull image") {
			pulls = append(pulls, e)
		}
	}
	for _, e := range newestEvents(pulls, 1) {
		out = append(out, eventLine(e))
	}
	return out
}
