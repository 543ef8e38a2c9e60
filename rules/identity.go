package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// Labels and annotations that identify Airflow KubernetesExecutor workers and Spark pods.
const (
	LabelAirflowExecutor = "kubernetes_executor" // "True" on KubernetesExecutor workers
	LabelAirflowWorker   = "airflow-worker"      // the worker's scheduler job id
	LabelSparkRole       = "spark-role"          // driver or executor
	LabelSparkAppSel     = "spark-app-selector"  // the application id
	LabelSparkAppName    = "spark-app-name"      // the application name (Spark 3.4+)
	LabelSparkOperator   = "sparkoperator.k8s.io/app-name"
)

// IsAirflowWorker reports whether pod is an Airflow KubernetesExecutor worker.
func IsAirflowWorker(m *metav1.ObjectMeta) bool {
	if v, ok := m.Labels[LabelAirflowExecutor]; ok && (v == "True" || v == "true") {
		return true
	}
	_, ok := m.Labels[LabelAirflowWorker]
	return ok
}

// IsSpark reports whether pod belongs to a Spark application (or is one: see sparkAppMeta).
func IsSpark(m *metav1.ObjectMeta) bool {
	_, role := m.Labels[LabelSparkRole]
	_, sel := m.Labels[LabelSparkAppSel]
	_, op := m.Labels[LabelSparkOperator]
	return role || sel || op
}

// AirflowIdentity returns the task instance an Airflow worker pod runs, or nil. The
// annotations carry the exact values; the labels are sanitized (run_id in particular), so they
// are only a fallback.
func AirflowIdentity(m *metav1.ObjectMeta) *finding.AirflowTask {
	if !IsAirflowWorker(m) {
		return nil
	}
	get := func(k string) string {
		if v := m.Annotations[k]; v != "" {
			return v
		}
		return m.Labels[k]
	}
	t := airflowTask(get)
	if t == nil {
		return nil
	}
	if t.RunID = get("run_id"); t.RunID == "" {
		// Workers of Airflow 1.10, 2.0 and 2.1 name the run by its execution date: exact in
		// the annotation, label-safe in the label.
		t.ExecutionDate = executionDate(m.Annotations["execution_date"], m.Labels["execution_date"])
	}
	return t
}

// airflowTask reads a task instance's dag_id, task_id, try_number and map_index with get;
// nil when it names neither a DAG nor a task.
func airflowTask(get func(string) string) *finding.AirflowTask {
	t := &finding.AirflowTask{DagID: get("dag_id"), TaskID: get("task_id")}
	if t.DagID == "" && t.TaskID == "" {
		return nil
	}
	if n, err := strconv.Atoi(get("try_number")); err == nil {
		t.TryNumber = n
	}
	if n, err := strconv.Atoi(get("map_index")); err == nil && n >= 0 {
		t.MapIndex = &n
	}
	return t
}

// executionDate reads a worker's execution date, from its annotation (isoformat()) or, without
// one, from its label, which Airflow makes label-safe: ':' becomes '_' and '+' '_plus_'
// (airflow.kubernetes.pod_generator.datetime_to_label_safe_datestring). The result is RFC 3339
// when it parses, else the value as found.
func executionDate(annotation, label string) string {
	v := annotation
	if v == "" && label != "" {
		v = strings.ReplaceAll(strings.ReplaceAll(label, "_plus_", "+"), "_", ":")
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.Format(time.RFC3339Nano)
	}
	return v
}

// SparkIdentity returns the Spark application a pod belongs to, or nil.
func SparkIdentity(m *metav1.ObjectMeta) *finding.SparkApp {
	if !IsSpark(m) {
		return nil
	}
	s := &finding.SparkApp{
		AppName: m.Labels[LabelSparkAppName],
		AppID:   m.Labels[LabelSparkAppSel],
		Role:    m.Labels[LabelSparkRole],
	}
	for _, o := range m.OwnerReferences {
		if o.Kind == "SparkApplication" {
			s.Owner = o.Name
		}
	}
	if s.Owner == "" {
		s.Owner = m.Labels[LabelSparkOperator]
	}
	if s.AppName == "" {
		s.AppName = s.Owner
	}
	return s
}

// OwnerOf returns the controller owner of an object ({"",""} for a bare pod).
func OwnerOf(m *metav1.ObjectMeta) finding.Owner {
	if ref := metav1.GetControllerOf(m); ref != nil {
		return finding.Owner{Kind: ref.Kind, Name: ref.Name}
	}
	return finding.Owner{}
}

// PodFinding returns a finding of kind k about pod (and container, when not empty) with the
// target, owner and task identity filled.
func PodFinding(k finding.Kind, pod *corev1.Pod, container string) finding.Finding {
	return finding.Finding{
		Kind:      k,
		Namespace: pod.Namespace,
		Pod:       pod.Name,
		Container: container,
		UID:       string(pod.UID),
		Owner:     OwnerOf(&pod.ObjectMeta),
		Airflow:   AirflowIdentity(&pod.ObjectMeta),
		Spark:     SparkIdentity(&pod.ObjectMeta),
	}
}

// containerSpec returns the spec of the named container or init container.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// allStatuses returns the init container statuses followed by the container statuses.
func allStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	if len(pod.Status.InitContainerStatuses) == 0 {
		return pod.Status.ContainerStatuses
	}
	out := make([]corev1.ContainerStatus, 0, len(pod.Status.InitContainerStatuses)+len(pod.Status.ContainerStatuses))
	out = append(out, pod.Status.InitContainerStatuses...)
	return append(out, pod.Status.ContainerStatuses...)
}

// timeString formats a Kubernetes time as RFC 3339 UTC, or "unknown time".
func timeString(t metav1.Time) string {
	if t.IsZero() {
		return "unknown time"
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// Helpers shared by the detectors.

// argsOf returns a detector's args as P (a pointer to its args struct): the defaults when the
// rule gave none (nil), else the args the plugin's DefaultArgs made. Any other type is a
// programming error.
func argsOf[P config.Args](args config.Args, defaults func() P) P {
	if args == nil {
		return defaults()
	}
	a, ok := args.(P)
	if !ok {
		var want P
		panic(fmt.Sprintf("rules: detector args are %T, want %T", args, want))
	}
	return a
}

// positiveDuration validates a duration threshold.
func positiveDuration(field string, d config.Duration) []config.FieldError {
	if d.Duration <= 0 {
		return []config.FieldError{{Field: field, Message: "must be greater than 0"}}
	}
	return nil
}

// terminationOccurrence identifies one termination of a container: its finish time and the
// number of restarts before it. A termination first seen in the current state (restartCount n)
// and then, after the restart, in the last state (restartCount n+1) gets the same occurrence,
// so a restart does not turn one failure into two findings.
func terminationOccurrence(cs corev1.ContainerStatus, term *corev1.ContainerStateTerminated) string {
	restarts := cs.RestartCount
	if cs.State.Terminated != term && restarts > 0 {
		restarts-- // the last state: the restart after it has been counted
	}
	return fmt.Sprintf("%s/%d", timeString(term.FinishedAt), restarts)
}

// podStart is when the pod started on its node, else when it was created.
func podStart(pod *corev1.Pod) time.Time {
	if pod.Status.StartTime != nil && !pod.Status.StartTime.IsZero() {
		return pod.Status.StartTime.Time
	}
	return pod.CreationTimestamp.Time
}

// podDone reports whether the pod has reached a terminal phase.
func podDone(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// podCondition returns the pod's condition of type t, or nil.
func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// podEvents returns the events about the input's pod, oldest first. Events about an earlier pod
// of the same name (another UID) are left out: they are not evidence about this one.
func podEvents(in Input) []*corev1.Event {
	if in.Pod == nil {
		return nil
	}
	if m := in.events; m != nil {
		// Several detectors read the events of one pod: look them up once. Detectors only
		// read the slice (those that sort or filter copy it first).
		if !m.done {
			m.events, m.done = objectEvents(in.View, config.ObjectPod, &in.Pod.ObjectMeta), true
		}
		return m.events
	}
	return objectEvents(in.View, config.ObjectPod, &in.Pod.ObjectMeta)
}

// objectEvents returns the events whose involved object is this object.
func objectEvents(v View, kind string, m *metav1.ObjectMeta) []*corev1.Event {
	if v == nil {
		return nil
	}
	var out []*corev1.Event
	for _, e := range v.EventsFor(kind, m.Namespace, m.Name, string(m.UID)) {
		io := e.InvolvedObject
		if (io.Kind != "" && io.Kind != kind) || io.Name != m.Name ||
			(io.Namespace != "" && io.Namespace != m.Namespace) ||
			(io.UID != "" && m.UID != "" && io.UID != m.UID) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// eventCount is how many times an event was seen (at least 1), from its series when it was
// recorded through the events.k8s.io API (the scheduler's), else its count.
func eventCount(e *corev1.Event) int {
	if e.Series != nil && e.Series.Count > 0 {
		return int(e.Series.Count)
	}
	return max(int(e.Count), 1)
}

// eventFirstSeen is when an event was first seen.
func eventFirstSeen(e *corev1.Event) time.Time {
	switch {
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return EventTime(e)
}

// eventLastSeen is when an event was last seen, including the last observation of an
// events.k8s.io series (which EventTime does not look at).
func eventLastSeen(e *corev1.Event) time.Time {
	if e.Series != nil && !e.Series.LastObservedTime.IsZero() {
		return e.Series.LastObservedTime.Time
	}
	return EventTime(e)
}

// eventsWithin estimates how many of an event's repeats fall within [from, to], assuming they
// are spread evenly between its first and last sighting.
func eventsWithin(e *corev1.Event, from, to time.Time) int {
	n := eventCount(e)
	first, last := eventFirstSeen(e), eventLastSeen(e)
	if first.IsZero() || first.After(last) {
		first = last
	}
	if last.Before(from) || first.After(to) {
		return 0
	}
	if n == 1 || !last.After(first) {
		return n
	}
	lo, hi := first, last
	if from.After(lo) {
		lo = from
	}
	if to.Before(hi) {
		hi = to
	}
	k := int(math.Ceil(float64(n) * float64(hi.Sub(lo)) / float64(last.Sub(first))))
	return min(max(k, 1), n)
}

// eventSource names the component that reported an event.
func eventSource(e *corev1.Event) string {
	if e.Source.Component != "" {
		return e.Source.Component
	}
	if e.ReportingController != "" {
		return e.ReportingController
	}
	return e.ReportingInstance
}

// eventLine describes an event for evidence, e.g.
// `event FailedMount x12 (last 02:10:05Z): MountVolume.SetUp failed for volume "history" : ...`.
// The source is named unless it is the kubelet, which reports most pod events.
func eventLine(e *corev1.Event) string {
	var b strings.Builder
	b.WriteString("event ")
	b.WriteString(e.Reason)
	if n := eventCount(e); n > 1 {
		fmt.Fprintf(&b, " x%d", n)
	}
	if t := eventLastSeen(e); !t.IsZero() {
		b.WriteString(" (last " + t.UTC().Format("15:04:05Z") + ")")
	}
	if src := eventSource(e); src != "" && src != "kubelet" {
		b.WriteString(" from " + src)
	}
	b.WriteString(": ")
	b.WriteString(clipText(e.Message))
	return b.String()
}

// newestEvents returns the latest event of each reason and message, at most n of them (the
// most recently seen), oldest first.
func newestEvents(events []*corev1.Event, n int) []*corev1.Event {
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b *corev1.Event) int { return eventLastSeen(a).Compare(eventLastSeen(b)) })
	seen := map[string]bool{}
	var out []*corev1.Event
	for i := len(events) - 1; i >= 0 && len(out) < n; i-- {
		e := events[i]
		k := e.Reason + "\x00" + e.Message
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// maxEvidenceText bounds a message quoted in evidence.
const maxEvidenceText = 400

// clipText trims a free-text message for evidence.
func clipText(s string) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > maxEvidenceText {
		return string(r[:maxEvidenceText]) + "…"
	}
	return s
}

// humanDuration formats a duration as kubectl does (47m, 3h10m, 2d).
func humanDuration(d time.Duration) string { return duration.HumanDuration(d) }

// claimOf is one PersistentVolumeClaim a pod mounts.
type claimOf struct {
	Volume string // the pod's volume name
	Claim  string // the claim name
}

// podClaims returns the PVCs the pod mounts, in volume order.
func podClaims(pod *corev1.Pod) []claimOf {
	var out []claimOf
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, claimOf{Volume: v.Name, Claim: v.PersistentVolumeClaim.ClaimName})
		}
	}
	return out
}

// claimLine describes a claim a pod mounts, with its phase from the view, e.g.
// "volume history: PVC spark-history-server-pvc is Bound (ReadWriteOnce, volume pvc-3f2a...)".
func claimLine(v View, namespace string, c claimOf) string {
	head := "volume " + c.Volume + ": PVC " + c.Claim
	var pvc *corev1.PersistentVolumeClaim
	if v != nil {
		pvc = v.PVC(namespace, c.Claim)
	}
	if pvc == nil {
		return head + " not found"
	}
	phase := string(pvc.Status.Phase)
	if phase == "" {
		phase = "Pending"
	}
	var details []string
	for _, m := range pvc.Spec.AccessModes {
		details = append(details, string(m))
	}
	if pvc.Spec.VolumeName != "" {
		details = append(details, "volume "+pvc.Spec.VolumeName)
	}
	if pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName != "" {
		details = append(details, "storage class "+*pvc.Spec.StorageClassName)
	}
	s := head + " is " + phase
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}
