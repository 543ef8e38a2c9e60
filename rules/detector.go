package rules

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
)

// View is the small slice of cluster state a detector may consult besides the object it is
// given: the events about an object and the PVCs a pod mounts. In the daemon it is served by
// the watchers' informer caches; in replay by the dump.
type View interface {
	// Pod returns the pod, or nil when it is not known.
	Pod(namespace, name string) *corev1.Pod
	// PVC returns the claim, or nil when it is not known.
	PVC(namespace, name string) *corev1.PersistentVolumeClaim
	// EventsFor returns the events whose involvedObject is the object with this UID (or, when
	// the event carries no UID, this kind/namespace/name), oldest first.
	EventsFor(kind, namespace, name string, uid string) []*corev1.Event
	// SparkApp returns the SparkApplication, or nil when it is not known (or not watched).
	SparkApp(namespace, name string) *spark.Application
	// ScheduledSparkApp returns the ScheduledSparkApplication, or nil when it is not known.
	ScheduledSparkApp(namespace, name string) *spark.ScheduledApplication
}

// Input is what a detector evaluates: exactly one of Pod, PVC, App or Schedule is set.
type Input struct {
	Pod *corev1.Pod
	PVC *corev1.PersistentVolumeClaim
	App *spark.Application
	// Schedule is a ScheduledSparkApplication (its runs are Apps), evaluated as an application.
	Schedule *spark.ScheduledApplication
	View     View
	Now      time.Time

	// events remembers the pod's events for the detectors of one evaluation (set by the
	// engine; nil in an Input made elsewhere, which then asks the view each time).
	events *podEventsMemo
}

// podEventsMemo holds the events of an evaluation's pod once looked up.
type podEventsMemo struct {
	done   bool
	events []*corev1.Event
}

// Detector recognises one kind of failure. Detect returns the findings for the input (usually
// zero or one), with Kind, target, evidence, Occurrence and task identity filled; the engine
// fills Rule, Severity, Route and Action.
type Detector interface {
	Detect(in Input) []finding.Finding
}

// DetectorFunc adapts a function to a Detector.
type DetectorFunc func(in Input) []finding.Finding

// Detect calls f.
func (f DetectorFunc) Detect(in Input) []finding.Finding { return f(in) }

// Plugin registers one detector kind.
type Plugin struct {
	Kind finding.Kind
	// Object is what the detector looks at: config.ObjectPod, ObjectPVC or ObjectSparkApp.
	Object string
	// Specificity orders the failure kinds of one pod: when several kinds with a non-zero
	// specificity fire for the same pod, only the highest is kept (one failure, one finding).
	// Zero means independent (an advisory such as LimitRatio).
	Specificity int
	// DefaultArgs returns a pointer to a new args struct filled with defaults. rules.yaml keys of
	// the detect block (other than kind) are decoded strictly into it.
	DefaultArgs func() config.Args
	// New builds the detector from validated args.
	New func(args config.Args) Detector
	// Summary says in a sentence what a finding of the kind is about, from the mentions the
	// notifier formats (Registry.Summary); nil: the notifier's generic sentence.
	Summary func(f *finding.Finding, r finding.SummaryRefs) string
	// FailureSince is when the failure began as the pod tells it, zero when it does not say
	// (Registry.FailureSince falls back to the pod's start); nil: the pod's start.
	FailureSince func(f *finding.Finding, pod *corev1.Pod) time.Time
}

// Registry holds the detector plugins. It is built explicitly (see NewDefaultRegistry) and
// passed in; there is no global registration.
type Registry struct {
	plugins map[finding.Kind]Plugin
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{plugins: map[finding.Kind]Plugin{}} }

// Register adds a plugin; registering a kind twice is a programming error.
func (r *Registry) Register(p Plugin) {
	if _, dup := r.plugins[p.Kind]; dup {
		panic(fmt.Sprintf("rules: detector %s registered twice", p.Kind))
	}
	if p.DefaultArgs == nil {
		p.DefaultArgs = func() config.Args { return &config.NoArgs{} }
	}
	r.plugins[p.Kind] = p
}

// Lookup returns the plugin for a kind.
func (r *Registry) Lookup(k finding.Kind) (Plugin, bool) {
	p, ok := r.plugins[k]
	return p, ok
}

// Kinds returns the registered kinds, sorted.
func (r *Registry) Kinds() []finding.Kind {
	out := make([]finding.Kind, 0, len(r.plugins))
	for k := range r.plugins {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Spec implements config.Detectors: what the loader needs to know of a kind.
func (r *Registry) Spec(k finding.Kind) (config.DetectorSpec, bool) {
	p, ok := r.plugins[k]
	if !ok {
		return config.DetectorSpec{}, false
	}
	return config.DetectorSpec{Kind: p.Kind, Object: p.Object, DefaultArgs: p.DefaultArgs}, true
}

var _ config.Detectors = (*Registry)(nil)
