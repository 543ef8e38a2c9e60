package actions

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/finding"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventLog is an events.EventRecorder that keeps what was recorded.
type eventLog struct {
	mu     sync.Mutex
	events []recordedEvent
}

type recordedEvent struct {
	Regarding string // "*v1.Pod ns/name"
	Type      string
	Reason    string
	Action    string
	Note      string
}

func (l *eventLog) Eventf(regarding, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	m, _ := meta.Accessor(regarding)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, recordedEvent{
		Regarding: fmt.Sprintf("%T %s/%s", regarding, m.GetNamespace(), m.GetName()),
		Type:      eventtype, Reason: reason, Action: action, Note: fmt.Sprintf(note, args...),
	})
}

func (l *eventLog) reasons() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Reason)
	}
	return out
}

func (l *eventLog) find(reason string) (recordedEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Reason == reason {
			return e, true
		}
	}
	return recordedEvent{}, false
}

// auditLog is an AuditPublisher that keeps msg ids.
type auditLog struct {
	mu  sync.Mutex
	ids []string
}

func (a *auditLog) PublishJSON(_ context.Context, subject, msgID string, _ any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !strings.HasPrefix(subject, "podmedic.audit.") {
		return fmt.Errorf("subject %s", subject)
	}
	a.ids = append(a.ids, msgID)
	return nil
}

func (a *auditLog) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.ids...)
}

// stuckPod is an Airflow worker stuck in its init container.
func stuckPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "10",
			Labels:      map[string]string{"kubernetes_executor": "True"},
			Annotations: map[string]string{"dag_id": "etl", "task_id": "load", "run_id": "r1", "try_number": "1"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "wait-for-pvc"}},
			Containers:     []corev1.Container{{Name: "base"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

// stuckFinding is the InitStuck finding of stuckPod with the rule's action.
func stuckFinding(pod *corev1.Pod, rule string, mode finding.Mode) *finding.Finding {
	f := &finding.Finding{
		Kind: finding.InitStuck, Rule: rule, Severity: finding.SeverityWarning,
		Namespace: pod.Namespace, Pod: pod.Name, UID: string(pod.UID),
		Evidence:   []string{"init container wait-for-pvc not complete after 20m"},
		Occurrence: "start",
		Action:     &finding.Action{Type: finding.ActionDeletePod, Mode: mode, Params: map[string]string{}},
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		f.Owner = finding.Owner{Kind: ref.Kind, Name: ref.Name}
	}
	if pod.Labels["kubernetes_executor"] == "True" {
		f.Airflow = &finding.AirflowTask{DagID: "etl", TaskID: "load", RunID: "r1", TryNumber: 1}
	}
	return f
}

func owned(p *corev1.Pod, kind, name string) *corev1.Pod {
	p.Labels = nil
	p.Annotations = nil
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: "owner-uid", Controller: ptr(true)}}
	return p
}

func ptr[T any](v T) *T { return &v }

// podExists reports whether the pod is still in the fake cluster.
func podExists(t *testing.T, c *fake.Clientset, ns, name string) bool {
	t.Helper()
	_, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err == nil {
		return true
	}
	require.True(t, strings.Contains(err.Error(), "not found"), err)
	return false
}
