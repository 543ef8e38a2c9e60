package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/finding"
)

// Dump is the content of one or more `kubectl get pods,pvc,events -A -o json` outputs.
type Dump struct {
	Pods   []*corev1.Pod
	PVCs   []*corev1.PersistentVolumeClaim
	Events []*corev1.Event
	// Skipped counts items of other kinds, which replay ignores.
	Skipped int
}

type listHeader struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

type itemHeader struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ReadDump adds the items of a v1 List (as printed by kubectl get -o json) to d. A document
// that is not a List, or an item that does not decode, is an error naming what and where.
func (d *Dump) ReadDump(r io.Reader) error {
	dec := json.NewDecoder(r)
	var l listHeader
	if err := dec.Decode(&l); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty input: expected a Kubernetes v1 List (kubectl get pods,pvc,events -A -o json)")
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not JSON at byte %d: %v (expected a Kubernetes v1 List)", se.Offset, err)
		}
		return fmt.Errorf("not a Kubernetes List: %v", err)
	}
	if l.Kind != "List" && !(len(l.Kind) > 4 && l.Kind[len(l.Kind)-4:] == "List") {
		return fmt.Errorf("not a Kubernetes List: kind is %q (expected a v1 List from kubectl get pods,pvc,events -A -o json)", l.Kind)
	}
	for i, raw := range l.Items {
		var h itemHeader
		if err := json.Unmarshal(raw, &h); err != nil {
			return fmt.Errorf("items[%d]: %v", i, err)
		}
		kind := h.Kind
		if kind == "" && l.Kind != "List" {
			kind = l.Kind[:len(l.Kind)-4] // a typed list (PodList) omits the item kind
		}
		var err error
		switch kind {
		case "Pod":
			var p corev1.Pod
			if err = json.Unmarshal(raw, &p); err == nil {
				d.Pods = append(d.Pods, &p)
			}
		case "PersistentVolumeClaim":
			var c corev1.PersistentVolumeClaim
			if err = json.Unmarshal(raw, &c); err == nil {
				d.PVCs = append(d.PVCs, &c)
			}
		case "Event":
			var e corev1.Event
			if err = json.Unmarshal(raw, &e); err == nil {
				d.Events = append(d.Events, &e)
			}
		default:
			d.Skipped++
		}
		if err != nil {
			return fmt.Errorf("items[%d] (%s): %v", i, kind, err)
		}
	}
	return nil
}

// Newest returns the newest timestamp in the dump (creation, status, container and event
// times): the default "now" of a replay, so a dump replays the same way whenever it is read.
func (d *Dump) Newest() time.Time {
	var t time.Time
	see := func(m metav1.Time) {
		if m.After(t) {
			t = m.Time
		}
	}
	for _, p := range d.Pods {
		see(p.CreationTimestamp)
		if p.Status.StartTime != nil {
			see(*p.Status.StartTime)
		}
		for _, c := range p.Status.Conditions {
			see(c.LastTransitionTime)
		}
		for _, cs := range allStatuses(p) {
			for _, st := range []corev1.ContainerState{cs.State, cs.LastTerminationState} {
				if st.Terminated != nil {
					see(st.Terminated.FinishedAt)
				}
				if st.Running != nil {
					see(st.Running.StartedAt)
				}
			}
		}
	}
	for _, c := range d.PVCs {
		see(c.CreationTimestamp)
	}
	for _, e := range d.Events {
		see(metav1.Time{Time: EventTime(e)})
	}
	return t
}

// View returns a View over the dump.
func (d *Dump) View() *StaticView { return NewStaticView(d.Pods, d.PVCs, d.Events) }

// Replay runs the engine over every pod and PVC of the dump at time now and returns the
// findings in a stable order (namespace, pod/pvc, kind, container). As in the daemon, a
// finding whose Key was already reported is not reported again: a per-owner advisory such as
// LimitRatio appears once for all the owner's pods.
func Replay(e *Engine, d *Dump, now time.Time) []finding.Finding {
	v := d.View()
	var all []finding.Finding
	for _, p := range d.Pods {
		all = append(all, e.EvaluatePod(p, v, now)...)
	}
	for _, c := range d.PVCs {
		all = append(all, e.EvaluatePVC(c, v, now)...)
	}
	seen := make(map[string]bool, len(all))
	out := all[:0]
	for _, f := range all {
		if k := f.Key(); !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Pod+a.PVC != b.Pod+b.PVC {
			return a.Pod+a.PVC < b.Pod+b.PVC
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Container < b.Container
	})
	return out
}
