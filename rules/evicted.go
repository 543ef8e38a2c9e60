package rules

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// EvictedPlugin detects pods the cluster took away from their node: kubelet node-pressure
// evictions (status.reason Evicted), disruptions recorded by the DisruptionTarget condition
// (Eviction API, scheduler preemption, taint manager, kubelet), and the cluster-autoscaler's and
// Karpenter's scale-down events on the pod. For batch pods disrupted on purpose (scale-down,
// Eviction API) the evidence names the annotation that prevents it. It has no thresholds.
func EvictedPlugin() Plugin {
	return Plugin{
		Kind: finding.Evicted,
		Summary: func(_ *finding.Finding, r finding.SummaryRefs) string {
			return capitalized(r.Pod) + " was evicted or disrupted before it finished."
		},
		FailureSince: evictedSince,
		Object:       config.ObjectPod,
		Specificity:  80,
		New:          func(config.Args) Detector { return EvictedDetector{} },
	}
}

// EvictedDetector is the Evicted detector.
type EvictedDetector struct{}

var _ Detector = EvictedDetector{}

// Reasons and annotations of disruptions.
const (
	// ReasonEvicted is the pod status reason of a kubelet node-pressure eviction.
	ReasonEvicted = "Evicted"
	// ConditionDisruptionTarget is the pod condition set when a pod is about to be disrupted.
	ConditionDisruptionTarget corev1.PodConditionType = "DisruptionTarget"
	// AnnotationSafeToEvict set to "false" keeps the cluster-autoscaler from scaling the pod's
	// node down.
	AnnotationSafeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	// AnnotationDoNotDisrupt set to "true" keeps Karpenter from voluntarily disrupting the pod's
	// node.
	AnnotationDoNotDisrupt = "karpenter.sh/do-not-disrupt"

	reasonEvictionAPI   = "EvictionByEvictionAPI"
	reasonNodeShutdown  = "NodeShutdown"
	componentAutoscaler = "cluster-autoscaler"
	componentKarpenter  = "karpenter"
)

// Detect implements Detector.
func (EvictedDetector) Detect(in Input) []finding.Finding {
	pod := in.Pod
	if pod == nil || pod.Status.Phase == corev1.PodSucceeded {
		return nil
	}
	d := disruptionOf(pod, podEvents(in))
	if !d.evicted() {
		return nil
	}
	f := PodFinding(finding.Evicted, pod, "")
	// A pod is disrupted at most once: its UID (in the key) is the occurrence. The condition,
	// the status and the events may be seen in any order, so none of their times is used.
	f.Occurrence = "disrupted"
	node := "node " + pod.Spec.NodeName
	if pod.Spec.NodeName == "" {
		node = "its node"
	}
	if d.kubelet {
		what := "resources"
		if d.resource != "" {
			what = d.resource
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("pod evicted by the kubelet: %s was low on %s (phase %s)",
			node, what, phaseOf(pod)))
		if pod.Status.Message != "" {
			f.Evidence = append(f.Evidence, "message: "+clipText(pod.Status.Message))
		}
		for _, m := range evictedUsage.FindAllStringSubmatch(pod.Status.Message, -1) {
			f.Evidence = append(f.Evidence, usageAdvice(m[1], m[2], m[3], m[4]))
		}
	}
	if c := d.cond; c != nil {
		line := fmt.Sprintf("condition DisruptionTarget=True (%s) at %s", c.Reason, timeString(c.LastTransitionTime))
		if c.Message != "" && !(d.kubelet && c.Message == pod.Status.Message) { // said above
			line += ": " + clipText(c.Message)
		}
		f.Evidence = append(f.Evidence, line)
	}
	for _, e := range d.events {
		f.Evidence = append(f.Evidence, eventLine(e))
	}
	if d.shutdown {
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s shut down while the pod ran", node))
	}
	if a := d.advice(pod); a != "" {
		f.Evidence = append(f.Evidence, a)
	}
	return []finding.Finding{f}
}

// evictedUsage parses the kubelet's eviction message about the container that used most:
// "Container base was using 3513364Ki, request is 1Gi, has larger consumption of memory."
var evictedUsage = regexp.MustCompile(`Container (\S+) was using (\S+), request is (\S+), has larger consumption of ([a-z-]+)`)

// usageAdvice explains the kubelet's "Container X was using U, request is R" line. Under node
// pressure the kubelet evicts first the pods whose usage exceeds their requests; a pod within
// its request was evicted for its priority, because every pod on the node was within its
// requests (the node is overcommitted by limits).
func usageAdvice(container, used, request, res string) string {
	u, uerr := resource.ParseQuantity(used)
	r, rerr := resource.ParseQuantity(request)
	if uerr == nil && rerr == nil && u.Cmp(r) <= 0 {
		return fmt.Sprintf("container %s used %s of %s, within its request of %s: the node was overcommitted by the limits of its pods; keep limits within max_limit_request_ratio of requests",
			container, humanQuantity(used), res, request)
	}
	return fmt.Sprintf("container %s used %s of %s against a request of %s: under node pressure the kubelet evicts first the pods using most above their requests; raise the request towards the usage",
		container, humanQuantity(used), res, request)
}

// evictedResource parses "The node was low on resource: memory."
var evictedResource = regexp.MustCompile(`low on resource: ([a-z][a-z-]*)`)

// disruption is what took (or is taking) a pod away from its node.
type disruption struct {
	kubelet  bool                 // status.reason Evicted: kubelet node-pressure eviction
	resource string               // the resource the node was low on
	cond     *corev1.PodCondition // DisruptionTarget=True
	events   []*corev1.Event      // scale-down, Karpenter, preemption and taint-manager events
	shutdown bool                 // the node shut down (a SIGKILL cause, not an eviction)
	// byComponent: an event of the component that disrupts pods this way (the autoscaler,
	// Karpenter, the scheduler, the taint manager); goingAway: the pod is being deleted or
	// has failed.
	byComponent, goingAway bool
	// autoscaler and karpenter record who disrupted the pod on purpose.
	autoscaler, karpenter bool
}

// evicted reports whether the pod's own state shows that it was disrupted: the kubelet's
// status reason, the DisruptionTarget condition, or — for the disruptions that delete pods
// without either (a Karpenter expiry, an autoscaler scale-down) — an event of the component
// that does it on a pod that is being deleted or has failed. Events are evidence, never a
// trigger on their own: anyone who may create Events in a namespace can write one that names
// any pod, so an event about a pod that runs on undisturbed changes nothing.
func (d disruption) evicted() bool {
	return d.kubelet || d.cond != nil || (d.byComponent && d.goingAway)
}

// eviction reports whether the pod was evicted, as opposed to killed by a node shutdown: the
// SIGKILL of its containers is then part of the eviction.
func (d disruption) eviction() bool {
	if d.kubelet || len(d.events) > 0 {
		return true
	}
	return d.cond != nil && !d.shutdown
}

// voluntary reports whether the pod was disrupted on purpose by a scale-down or the Eviction
// API, which an annotation on the pod template can prevent.
func (d disruption) voluntary() bool {
	return d.autoscaler || d.karpenter || (d.cond != nil && d.cond.Reason == reasonEvictionAPI)
}

// advice recommends the annotation that prevents a voluntary disruption of a batch pod, or says
// that the pod had it.
func (d disruption) advice(pod *corev1.Pod) string {
	if !d.voluntary() || !(IsAirflowWorker(&pod.ObjectMeta) || IsSpark(&pod.ObjectMeta)) {
		return ""
	}
	var had []string
	if v, ok := pod.Annotations[AnnotationSafeToEvict]; ok && strings.EqualFold(v, "false") {
		had = append(had, fmt.Sprintf("%s: %q", AnnotationSafeToEvict, v))
	}
	if v, ok := pod.Annotations[AnnotationDoNotDisrupt]; ok && strings.EqualFold(v, "true") {
		had = append(had, fmt.Sprintf("%s: %q", AnnotationDoNotDisrupt, v))
	}
	if len(had) > 0 {
		return "the pod had " + strings.Join(had, " and ") +
			" and was disrupted anyway: a drain, a forced expiry or an explicit eviction does not honour it"
	}
	ca := fmt.Sprintf("%s: \"false\"", AnnotationSafeToEvict)
	kp := fmt.Sprintf("%s: \"true\"", AnnotationDoNotDisrupt)
	switch {
	case d.karpenter && !d.autoscaler:
		return "batch pod disrupted by Karpenter: add the annotation " + kp + " to the pod template so its node is not disrupted while it runs"
	case d.autoscaler && !d.karpenter:
		return "batch pod disrupted by a cluster-autoscaler scale-down: add the annotation " + ca + " to the pod template so its node is not scaled down while it runs"
	}
	return "batch pod disrupted by the Eviction API: add the annotation " + ca + " (cluster-autoscaler) or " + kp + " (Karpenter) to the pod template so its node is not scaled down while it runs"
}

// disruptionOf collects what disrupted a pod from its status, conditions and events.
func disruptionOf(pod *corev1.Pod, events []*corev1.Event) disruption {
	d := disruption{goingAway: pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed}
	st := pod.Status
	if st.Reason == ReasonEvicted {
		d.kubelet = true
		if m := evictedResource.FindStringSubmatch(st.Message); m != nil {
			d.resource = m[1]
		}
	}
	if mentionsShutdown(st.Reason + " " + st.Message) {
		d.shutdown = true
	}
	if c := podCondition(pod, ConditionDisruptionTarget); c != nil && c.Status == corev1.ConditionTrue {
		d.cond = c
		if mentionsShutdown(c.Message) {
			d.shutdown = true
		}
	}
	for _, e := range events {
		src := eventSource(e)
		switch {
		case e.Reason == "ScaleDown" && strings.Contains(src, componentAutoscaler):
			d.autoscaler, d.byComponent = true, true
		case strings.Contains(src, componentKarpenter) && (e.Reason == "Disrupting" || e.Reason == "Disrupted" ||
			e.Reason == "Evicted" || e.Reason == "Evicting"):
			d.karpenter, d.byComponent = true, true
		case e.Reason == "Preempted" || e.Reason == "Preempting":
			d.byComponent = d.byComponent || strings.Contains(src, "scheduler")
		case (e.Reason == "TaintManagerEviction" || e.Reason == "NodeControllerEviction") &&
			strings.HasPrefix(e.Message, "Marking for deletion"):
			d.byComponent = d.byComponent || strings.Contains(src, "controller")
		case e.Reason == ReasonEvicted && src == "kubelet":
			if d.kubelet && d.resource == "" {
				if m := evictedResource.FindStringSubmatch(e.Message); m != nil {
					d.resource = m[1]
				}
			}
			continue // the status says the same
		case e.Reason == reasonNodeShutdown:
			d.shutdown = true
			continue
		default:
			continue
		}
		d.events = append(d.events, e)
	}
	return d
}

// mentionsShutdown reports whether a reason or message is about a node shutdown.
func mentionsShutdown(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "shutdown") || strings.Contains(s, "shut down")
}

// phaseOf is the pod's phase, or Unknown.
func phaseOf(pod *corev1.Pod) string {
	if pod.Status.Phase == "" {
		return "Unknown"
	}
	return string(pod.Status.Phase)
}

// humanQuantity rewrites a byte quantity such as 3513364Ki as 3.4Gi or 512Mi; anything else is
// returned as it is.
func humanQuantity(s string) string {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return s
	}
	b := q.Value()
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGi", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%dMi", b>>20)
	}
	return s
}

// evictedSince is when an eviction began: the DisruptionTarget condition's lastTransitionTime
// (the kubelet, the Eviction API and preemption set it), else when the pod stopped being
// Ready, else when its last container ended.
func evictedSince(_ *finding.Finding, pod *corev1.Pod) time.Time {
	if c := podCondition(pod, ConditionDisruptionTarget); c != nil && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	if t := notReadySince(pod); !t.IsZero() {
		return t
	}
	return lastTermination(pod, "")
}
