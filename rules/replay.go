package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
)

// Dump is the content of one or more `kubectl get pods,pvc,events -A -o json` outputs.
type Dump struct {
	Pods   []*corev1.Pod
	PVCs   []*corev1.PersistentVolumeClaim
	Events []*corev1.Event
	// Apps are the SparkApplications (`kubectl get ...,sparkapplications`), as podmedic reads
	// them (package spark: the rest of each object is not decoded).
	Apps []*spark.Application
	// Schedules are the ScheduledSparkApplications (`...,scheduledsparkapplications`).
	Schedules []*spark.ScheduledApplication
	// Skipped counts items of other kinds, which replay ignores.
	Skipped int

	// Trim, when set, is applied to each object as it is read (the daemon's own trimming,
	// watchers.Trim*), so that a dump costs what the informers' caches cost, not its size.
	Trim Trimmer
}

// Trimmer drops from objects what the detectors never read.
type Trimmer struct {
	Pod   func(*corev1.Pod) *corev1.Pod
	PVC   func(*corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim
	Event func(*corev1.Event) *corev1.Event
}

type untypedItem struct {
	index int
	raw   json.RawMessage
}

type itemHeader struct {
	Kind string `json:"kind"`
}

// ReadDump adds the items of a v1 List (as printed by kubectl get -o json) to d. A document
// that is not a List, or an item that does not decode, is an error naming what and where.
//
// The List is read as a stream, one item at a time (a dump of a large cluster is hundreds of
// megabytes; only the decoded, trimmed objects are kept). kubectl prints "items" before
// "kind", so the List's kind is checked when it comes; items without a kind of their own (a
// typed list such as PodList, straight from the API) wait for it.
func (d *Dump) ReadDump(r io.Reader) error {
	dec := json.NewDecoder(r)
	fail := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("truncated input: %v (expected a Kubernetes v1 List)", err)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not JSON at byte %d: %v (expected a Kubernetes v1 List)", se.Offset, err)
		}
		return fmt.Errorf("not a Kubernetes List: %v", err)
	}
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return errors.New("empty input: expected a Kubernetes v1 List (kubectl get pods,pvc,events -A -o json)")
	}
	if err != nil {
		return fail(err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("not a Kubernetes List: the input is a JSON %s, not an object", jsonKind(tok))
	}
	var (
		listKind string
		untyped  []untypedItem // items without a kind, until the List's kind is known
		index    int
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := tok.(string)
		switch key {
		case "kind":
			if err := dec.Decode(&listKind); err != nil {
				return fmt.Errorf("not a Kubernetes List: kind: %v", err)
			}
		case "items":
			if tok, err = dec.Token(); err != nil {
				return fail(err)
			}
			if tok == nil {
				continue // "items": null
			}
			if tok != json.Delim('[') {
				return fmt.Errorf("not a Kubernetes List: items is a JSON %s, not an array", jsonKind(tok))
			}
			for ; dec.More(); index++ {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return fmt.Errorf("items[%d]: %w", index, fail(err))
				}
				var h itemHeader
				if err := json.Unmarshal(raw, &h); err != nil {
					return fmt.Errorf("items[%d]: %v", index, err)
				}
				if h.Kind == "" {
					untyped = append(untyped, untypedItem{index, raw})
					continue
				}
				if err := d.add(index, h.Kind, raw); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ]
				return fail(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return fail(err)
	}
	if listKind != "List" && !strings.HasSuffix(listKind, "List") {
		return fmt.Errorf("not a Kubernetes List: kind is %q (expected a v1 List from kubectl get pods,pvc,events -A -o json)", listKind)
	}
	for _, u := range untyped {
		if listKind == "List" {
			return fmt.Errorf("items[%d]: an item of a List without a kind", u.index)
		}
		if err := d.add(u.index, strings.TrimSuffix(listKind, "List"), u.raw); err != nil {
			return err
		}
	}
	return nil
}

// add decodes item index of the given kind and keeps it, trimmed.
func (d *Dump) add(index int, kind string, raw json.RawMessage) error {
	var err error
	switch kind {
	case "Pod":
		p := &corev1.Pod{}
		if err = json.Unmarshal(raw, p); err == nil {
			if d.Trim.Pod != nil {
				p = d.Trim.Pod(p)
			}
			d.Pods = append(d.Pods, p)
		}
	case "PersistentVolumeClaim":
		c := &corev1.PersistentVolumeClaim{}
		if err = json.Unmarshal(raw, c); err == nil {
			if d.Trim.PVC != nil {
				c = d.Trim.PVC(c)
			}
			d.PVCs = append(d.PVCs, c)
		}
	case "Event":
		e := &corev1.Event{}
		if err = json.Unmarshal(raw, e); err == nil {
			if d.Trim.Event != nil {
				e = d.Trim.Event(e)
			}
			d.Events = append(d.Events, e)
		}
	case spark.KindApplication:
		var a *spark.Application
		if a, err = spark.Decode(raw); err == nil {
			d.Apps = append(d.Apps, a)
		}
	case spark.KindScheduledApplication:
		var s *spark.ScheduledApplication
		if s, err = spark.DecodeScheduled(raw); err == nil {
			d.Schedules = append(d.Schedules, s)
		}
	default:
		d.Skipped++
	}
	if err != nil {
		return fmt.Errorf("items[%d] (%s): %v", index, kind, err)
	}
	return nil
}

// jsonKind names the JSON value a token starts.
func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
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
	for _, a := range d.Apps {
		see(a.CreationTimestamp)
		see(a.Status.LastSubmissionAttemptTime)
		see(a.Status.TerminationTime)
	}
	for _, s := range d.Schedules {
		see(s.CreationTimestamp)
		see(s.Status.LastRun)
	}
	return t
}

// View returns a View over the dump.
func (d *Dump) View() *StaticView {
	return NewStaticView(d.Pods, d.PVCs, d.Events).WithApps(d.Apps).WithSchedules(d.Schedules)
}

// Replay runs the engine over every pod, PVC, SparkApplication and ScheduledSparkApplication of the dump at time now and returns the
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
	for _, a := range d.Apps {
		all = append(all, e.EvaluateSparkApp(a, v, now)...)
	}
	for _, s := range d.Schedules {
		all = append(all, e.EvaluateScheduledSparkApp(s, v, now)...)
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
		if an, bn := objectName(&a), objectName(&b); an != bn {
			return an < bn
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Container < b.Container
	})
	return out
}

// objectName is the name of the object a finding is about: its pod, PVC or SparkApplication.
func objectName(f *finding.Finding) string {
	if f.Pod == "" && f.PVC == "" && f.Spark != nil {
		return f.Spark.Application
	}
	return f.Pod + f.PVC
}
