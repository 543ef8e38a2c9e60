package rules

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/finding"
)

// Live is the engine in force — replaced when rules.yaml is reloaded — with the view of the
// cluster it evaluates against and the clock. The rule handler, the sweeps and the guard's
// re-check share one.
type Live struct {
	engine atomic.Pointer[Engine]
	// View is the cluster as the watchers' cache shows it.
	View View
	// Now is the clock (time.Now unless a test or the demo sets it).
	Now func() time.Time
}

// NewLive returns a Live with e in force; now nil means time.Now.
func NewLive(e *Engine, view View, now func() time.Time) *Live {
	if now == nil {
		now = time.Now
	}
	l := &Live{View: view, Now: now}
	l.engine.Store(e)
	return l
}

// Engine returns the engine in force.
func (l *Live) Engine() *Engine { return l.engine.Load() }

// Set puts e in force.
func (l *Live) Set(e *Engine) { l.engine.Store(e) }

// Recheck re-evaluates a finding with the engine in force on a pod just read from the API (it
// implements actions.Rechecker): it holds when the engine still finds a failure of the same
// kind (and container).
func (l *Live) Recheck(_ context.Context, f *finding.Finding, pod *corev1.Pod) (bool, string) {
	for _, g := range l.Engine().EvaluatePod(pod, l.View, l.Now()) {
		if g.Kind == f.Kind && g.Container == f.Container {
			return true, ""
		}
	}
	phase := string(pod.Status.Phase)
	if pod.DeletionTimestamp != nil {
		phase += ", terminating"
	}
	return false, fmt.Sprintf("re-evaluated as it is now (%s), the pod is no longer %s", phase, f.Kind)
}
