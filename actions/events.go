package actions

import (
	"fmt"
	"strings"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"

	"github.com/podmedic/podmedic/finding"
)

// Reasons of the Kubernetes Events podmedic writes on the targets of its actions, so that
// `kubectl describe` and `kubectl events` show what podmedic did or proposed, who decided and
// why.
const (
	EventProposed = "PodmedicProposed"
	EventApproved = "PodmedicApproved"
	EventDenied   = "PodmedicDenied"
	EventExpired  = "PodmedicExpired"
	EventExecuted = "PodmedicExecuted"
	EventFailed   = "PodmedicFailed"
	EventRefused  = "PodmedicRefused"
)

// noteLimit is the API's limit on an Event's note.
const noteLimit = 1024

// emit records an Event regarding the target (or, for a target that is not a Kubernetes
// object, the finding's pod), related to the finding's pod when the target is its workload.
func emit(rec events.EventRecorder, t finding.Target, f *finding.Finding, eventtype, reason string, action finding.ActionType, note string) {
	if rec == nil {
		return
	}
	regarding, related := objectFor(t), runtime.Object(nil)
	if f != nil && f.Pod != "" {
		pod := podRef(f.Namespace, f.Pod, f.UID)
		switch {
		case regarding == nil:
			regarding = pod
		case t.Kind != "Pod":
			related = pod
		}
	}
	if regarding == nil {
		return
	}
	if len(note) > noteLimit {
		note = note[:noteLimit-3]
		for !utf8.ValidString(note) {
			note = note[:len(note)-1]
		}
		note += "..."
	}
	rec.Eventf(regarding, related, eventtype, reason, string(action), "%s", note)
}

// objectFor returns an object the event recorder can reference for a target, or nil.
func objectFor(t finding.Target) runtime.Object {
	m := metav1.ObjectMeta{Namespace: t.Namespace, Name: t.Name, UID: types.UID(t.UID)}
	switch t.Kind {
	case "Pod":
		return &corev1.Pod{ObjectMeta: m}
	case "Deployment":
		return &appsv1.Deployment{ObjectMeta: m}
	case "StatefulSet":
		return &appsv1.StatefulSet{ObjectMeta: m}
	case "DaemonSet":
		return &appsv1.DaemonSet{ObjectMeta: m}
	case "ReplicaSet":
		return &appsv1.ReplicaSet{ObjectMeta: m}
	case "CronJob":
		return &batchv1.CronJob{ObjectMeta: m}
	case "Job":
		return &batchv1.Job{ObjectMeta: m}
	}
	return nil
}

func podRef(ns, name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
}

// why is "; finding <kind>, rule <r>: <first evidence>" for an event note.
func why(f *finding.Finding) string {
	if f == nil {
		return ""
	}
	s := fmt.Sprintf("; finding %s, rule %s", f.Kind, f.Rule)
	if len(f.Evidence) > 0 {
		s += ": " + f.Evidence[0]
	}
	return s
}

// because is why without its leading separator.
func because(f *finding.Finding) string { return strings.TrimPrefix(why(f), "; ") }
