package rules

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/spark"
)

// StaticView is a View over a fixed set of objects, as read from a dump.
type StaticView struct {
	pods   map[string]*corev1.Pod
	pvcs   map[string]*corev1.PersistentVolumeClaim
	events map[string][]*corev1.Event // by involvedObject uid, and by kind/namespace/name
	apps   map[string]*spark.Application
	scheds map[string]*spark.ScheduledApplication
}

var _ View = (*StaticView)(nil)

// NewStaticView indexes the objects. Events are kept oldest first.
func NewStaticView(pods []*corev1.Pod, pvcs []*corev1.PersistentVolumeClaim, events []*corev1.Event) *StaticView {
	v := &StaticView{pods: byName(nil, pods), pvcs: byName(nil, pvcs), events: map[string][]*corev1.Event{}}
	sorted := append([]*corev1.Event(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return EventTime(sorted[i]).Before(EventTime(sorted[j])) })
	for _, e := range sorted {
		for _, k := range EventKeys(e) {
			v.events[k] = append(v.events[k], e)
		}
	}
	return v
}

// byName adds objs to m (made when nil) by namespace/name and returns it.
func byName[T metav1.Object](m map[string]T, objs []T) map[string]T {
	if m == nil {
		m = make(map[string]T, len(objs))
	}
	for _, o := range objs {
		m[o.GetNamespace()+"/"+o.GetName()] = o
	}
	return m
}

// WithApps adds SparkApplications to the view and returns it.
func (v *StaticView) WithApps(apps []*spark.Application) *StaticView {
	v.apps = byName(v.apps, apps)
	return v
}

// WithSchedules adds ScheduledSparkApplications to the view and returns it.
func (v *StaticView) WithSchedules(scheds []*spark.ScheduledApplication) *StaticView {
	v.scheds = byName(v.scheds, scheds)
	return v
}

// ScheduledSparkApp implements View.
func (v *StaticView) ScheduledSparkApp(namespace, name string) *spark.ScheduledApplication {
	return v.scheds[namespace+"/"+name]
}

// SparkApp implements View.
func (v *StaticView) SparkApp(namespace, name string) *spark.Application {
	return v.apps[namespace+"/"+name]
}

// Pod implements View.
func (v *StaticView) Pod(namespace, name string) *corev1.Pod { return v.pods[namespace+"/"+name] }

// PVC implements View.
func (v *StaticView) PVC(namespace, name string) *corev1.PersistentVolumeClaim {
	return v.pvcs[namespace+"/"+name]
}

// EventsFor implements View.
func (v *StaticView) EventsFor(kind, namespace, name, uid string) []*corev1.Event {
	if uid != "" {
		if evs := v.events["uid/"+uid]; len(evs) > 0 {
			return evs
		}
	}
	return v.events[ObjectKey(kind, namespace, name)]
}

// EventKeys returns the index keys of an event's involved object: by UID when it has one, and
// always by kind/namespace/name (kubelet events about volumes sometimes carry no UID).
func EventKeys(e *corev1.Event) []string {
	io := e.InvolvedObject
	keys := []string{ObjectKey(io.Kind, io.Namespace, io.Name)}
	if io.UID != "" {
		keys = append(keys, "uid/"+string(io.UID))
	}
	return keys
}

// ObjectKey is the kind/namespace/name index key of an involved object.
func ObjectKey(kind, namespace, name string) string {
	return "obj/" + kind + "/" + namespace + "/" + name
}

// EventTime is the best time of an event: last seen, else event time, else creation.
func EventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
