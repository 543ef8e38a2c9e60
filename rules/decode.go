package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/podmedic/podmedic/internal/jsonscan"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DecodePod decodes the JSON of a pod as carried in an observation envelope. The result is
// exactly json.Unmarshal's.
//
// Decoding is most of a rule handler's work (encoding/json spends ~35 µs on a 1.7 KB trimmed
// pod, reflection and a nested decode per timestamp; the detectors then take ~4 µs). Pods as
// the watchers trim them go through a decoder written for that shape, about four times faster;
// anything it does not expect (another field, a repeated key, a key in another case, a number
// where a string belongs, an escape in a key...) goes to encoding/json, which then decides. The
// two are fuzzed against each other (FuzzDecodePod).
func DecodePod(data []byte) (*corev1.Pod, error) {
	if p, ok := decodePodFast(data); ok {
		return p, nil
	}
	var pod corev1.Pod
	if err := json.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("decode pod: %w", err)
	}
	return &pod, nil
}

// decodePodFast decodes a trimmed pod, or reports false.
func decodePodFast(data []byte) (*corev1.Pod, bool) {
	d := &jdec{data: data}
	p := &corev1.Pod{}
	var seen uint32
	ok := d.object(func(k string) bool {
		switch k {
		case "metadata":
			return once(&seen, 1) && d.meta(&p.ObjectMeta)
		case "spec":
			return once(&seen, 2) && d.podSpec(&p.Spec)
		case "status":
			return once(&seen, 4) && d.podStatus(&p.Status)
		case "kind":
			return once(&seen, 8) && d.str(&p.Kind)
		case "apiVersion":
			return once(&seen, 16) && d.str(&p.APIVersion)
		}
		return false
	})
	if !ok || d.ws() != len(data) {
		return nil, false
	}
	return p, true
}

// once records bit in seen and reports whether it was not there: a repeated key in a struct
// merges in encoding/json, which the fast decoder leaves to it.
func once(seen *uint32, bit uint32) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// jdec is a JSON reader over a trimmed pod. Every method reports whether it read a value the
// way encoding/json would have decoded it; on false the whole decode is left to encoding/json.
// A null leaves the destination at its zero value, as encoding/json does for a field it has
// not set before (repeated keys are refused).
type jdec struct {
	data []byte
	i    int
}

func (d *jdec) ws() int {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return d.i
		}
	}
	return d.i
}

func (d *jdec) consume(c byte) bool {
	if d.ws() < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *jdec) null() bool {
	if d.ws()+4 <= len(d.data) && string(d.data[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// object reads an object, calling f with d at the value of each key. Keys with escapes are
// refused.
func (d *jdec) object(f func(key string) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		d.ws()
		key, ok := d.plainString()
		if !ok || !d.consume(':') || !f(key) {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// array reads an array, calling f with d at each element.
func (d *jdec) array(f func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		if !f() {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume(']')
	}
}

// plainString reads a string without escapes or control characters, in valid UTF-8 (what
// encoding/json would copy unchanged), at d.i.
func (d *jdec) plainString() (string, bool) {
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return "", false
	}
	ascii := true
	for j := d.i + 1; j < len(d.data); j++ {
		switch c := d.data[j]; {
		case c == '"':
			b := d.data[d.i+1 : j]
			if !ascii && !utf8.Valid(b) {
				return "", false
			}
			d.i = j + 1
			return string(b), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// stringValue reads a string value, escapes and all.
func (d *jdec) stringValue() (string, bool) {
	d.ws()
	if s, ok := d.plainString(); ok {
		return s, true
	}
	// Escapes (quotes in a message, HTML characters json.Marshal escapes): the string alone
	// goes through encoding/json.
	start := d.i
	end, _, ok := jsonscan.String(d.data, start)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(d.data[start:end], &s); err != nil {
		return "", false
	}
	d.i = end
	return s, true
}

func (d *jdec) str(dst *string) bool {
	if d.null() {
		return true
	}
	s, ok := d.stringValue()
	*dst = s
	return ok
}

// strAs reads a string into a field of a string type.
func strAs[T ~string](d *jdec, dst *T) bool {
	var s string
	ok := d.str(&s)
	*dst = T(s)
	return ok
}

func strPtr[T ~string](d *jdec, dst **T) bool {
	if d.null() {
		return true
	}
	s, ok := d.stringValue()
	v := T(s)
	*dst = &v
	return ok
}

// integer reads an integer within [lo, hi] (no fraction or exponent: encoding/json refuses
// those for integer fields).
func (d *jdec) integer(lo, hi int64) (int64, bool) {
	n, j, ok := jsonscan.Int(d.data, d.ws())
	if !ok || n < lo || n > hi {
		return 0, false
	}
	d.i = j
	return n, true
}

func (d *jdec) int32(dst *int32) bool {
	if d.null() {
		return true
	}
	n, ok := d.integer(-1<<31, 1<<31-1)
	*dst = int32(n)
	return ok
}

func (d *jdec) int64(dst *int64) bool {
	if d.null() {
		return true
	}
	n, ok := d.integer(-1<<62, 1<<62)
	*dst = n
	return ok
}

func (d *jdec) int64Ptr(dst **int64) bool {
	if d.null() {
		return true
	}
	n, ok := d.integer(-1<<62, 1<<62)
	*dst = &n
	return ok
}

func (d *jdec) bool(dst *bool) bool {
	if d.null() {
		return true
	}
	d.ws()
	switch {
	case bytes.HasPrefix(d.data[d.i:], []byte("true")):
		*dst, d.i = true, d.i+4
	case bytes.HasPrefix(d.data[d.i:], []byte("false")):
		*dst, d.i = false, d.i+5
	default:
		return false
	}
	return true
}

func (d *jdec) boolPtr(dst **bool) bool {
	if d.null() {
		return true
	}
	var b bool
	ok := d.bool(&b)
	*dst = &b
	return ok
}

// time reads a metav1.Time as its UnmarshalJSON does: RFC 3339, in the local zone.
func (d *jdec) time(dst *metav1.Time) bool {
	if d.null() {
		return true // metav1.Time's UnmarshalJSON zeroes it
	}
	d.ws()
	s, ok := d.plainString()
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return false
	}
	dst.Time = t.Local()
	return true
}

func (d *jdec) timePtr(dst **metav1.Time) bool {
	if d.null() {
		return true
	}
	t := &metav1.Time{}
	*dst = t
	return d.time(t)
}

func (d *jdec) stringMap(dst *map[string]string) bool {
	if d.null() {
		return true
	}
	m := map[string]string{}
	*dst = m
	return d.object(func(k string) bool {
		if d.null() {
			m[k] = ""
			return true
		}
		v, ok := d.stringValue()
		m[k] = v
		return ok
	})
}

// resources reads a ResourceList: Quantity's UnmarshalJSON gets each value's raw JSON, as from
// encoding/json.
func (d *jdec) resources(dst *corev1.ResourceList) bool {
	if d.null() {
		return true
	}
	l := corev1.ResourceList{}
	*dst = l
	return d.object(func(k string) bool {
		start := d.ws()
		end, ok := scanJSONValue(d.data, start, 0)
		if !ok {
			return false
		}
		var q resource.Quantity
		if err := q.UnmarshalJSON(d.data[start:end]); err != nil {
			return false
		}
		l[corev1.ResourceName(k)] = q
		d.i = end
		return true
	})
}

func (d *jdec) meta(m *metav1.ObjectMeta) bool {
	if d.null() {
		return true
	}
	var seen uint32
	return d.object(func(k string) bool {
		switch k {
		case "name":
			return once(&seen, 1) && d.str(&m.Name)
		case "namespace":
			return once(&seen, 2) && d.str(&m.Namespace)
		case "uid":
			return once(&seen, 4) && strAs(d, &m.UID)
		case "resourceVersion":
			return once(&seen, 8) && d.str(&m.ResourceVersion)
		case "creationTimestamp":
			return once(&seen, 16) && d.time(&m.CreationTimestamp)
		case "deletionTimestamp":
			return once(&seen, 32) && d.timePtr(&m.DeletionTimestamp)
		case "deletionGracePeriodSeconds":
			return once(&seen, 64) && d.int64Ptr(&m.DeletionGracePeriodSeconds)
		case "labels":
			return once(&seen, 128) && d.stringMap(&m.Labels)
		case "annotations":
			return once(&seen, 256) && d.stringMap(&m.Annotations)
		case "ownerReferences":
			return once(&seen, 512) && d.owners(&m.OwnerReferences)
		case "generateName":
			return once(&seen, 1024) && d.str(&m.GenerateName)
		case "generation":
			return once(&seen, 2048) && d.int64(&m.Generation)
		}
		return false
	})
}

func (d *jdec) owners(dst *[]metav1.OwnerReference) bool {
	if d.null() {
		return true
	}
	out := []metav1.OwnerReference{}
	ok := d.array(func() bool {
		var o metav1.OwnerReference
		var seen uint32
		ok := d.null() || d.object(func(k string) bool {
			switch k {
			case "apiVersion":
				return once(&seen, 1) && d.str(&o.APIVersion)
			case "kind":
				return once(&seen, 2) && d.str(&o.Kind)
			case "name":
				return once(&seen, 4) && d.str(&o.Name)
			case "uid":
				return once(&seen, 8) && strAs[types.UID](d, &o.UID)
			case "controller":
				return once(&seen, 16) && d.boolPtr(&o.Controller)
			case "blockOwnerDeletion":
				return once(&seen, 32) && d.boolPtr(&o.BlockOwnerDeletion)
			}
			return false
		})
		out = append(out, o)
		return ok
	})
	*dst = out
	return ok
}

func (d *jdec) podSpec(s *corev1.PodSpec) bool {
	if d.null() {
		return true
	}
	var seen uint32
	return d.object(func(k string) bool {
		switch k {
		case "volumes":
			return once(&seen, 1) && d.volumes(&s.Volumes)
		case "initContainers":
			return once(&seen, 2) && d.containers(&s.InitContainers)
		case "containers":
			return once(&seen, 4) && d.containers(&s.Containers)
		case "restartPolicy":
			return once(&seen, 8) && strAs(d, &s.RestartPolicy)
		case "terminationGracePeriodSeconds":
			return once(&seen, 16) && d.int64Ptr(&s.TerminationGracePeriodSeconds)
		case "activeDeadlineSeconds":
			return once(&seen, 32) && d.int64Ptr(&s.ActiveDeadlineSeconds)
		case "nodeName":
			return once(&seen, 64) && d.str(&s.NodeName)
		case "priorityClassName":
			return once(&seen, 128) && d.str(&s.PriorityClassName)
		}
		return false
	})
}

func (d *jdec) volumes(dst *[]corev1.Volume) bool {
	if d.null() {
		return true
	}
	out := []corev1.Volume{}
	ok := d.array(func() bool {
		var v corev1.Volume
		var seen uint32
		ok := d.null() || d.object(func(k string) bool {
			switch k {
			case "name":
				return once(&seen, 1) && d.str(&v.Name)
			case "persistentVolumeClaim":
				if !once(&seen, 2) {
					return false
				}
				if d.null() {
					return true
				}
				c := &corev1.PersistentVolumeClaimVolumeSource{}
				v.PersistentVolumeClaim = c
				var cs uint32
				return d.object(func(k string) bool {
					switch k {
					case "claimName":
						return once(&cs, 1) && d.str(&c.ClaimName)
					case "readOnly":
						return once(&cs, 2) && d.bool(&c.ReadOnly)
					}
					return false
				})
			}
			return false
		})
		out = append(out, v)
		return ok
	})
	*dst = out
	return ok
}

func (d *jdec) containers(dst *[]corev1.Container) bool {
	if d.null() {
		return true
	}
	out := []corev1.Container{}
	ok := d.array(func() bool {
		var c corev1.Container
		var seen uint32
		ok := d.null() || d.object(func(k string) bool {
			switch k {
			case "name":
				return once(&seen, 1) && d.str(&c.Name)
			case "image":
				return once(&seen, 2) && d.str(&c.Image)
			case "resources":
				if !once(&seen, 4) {
					return false
				}
				if d.null() {
					return true
				}
				var rs uint32
				return d.object(func(k string) bool {
					switch k {
					case "limits":
						return once(&rs, 1) && d.resources(&c.Resources.Limits)
					case "requests":
						return once(&rs, 2) && d.resources(&c.Resources.Requests)
					}
					return false
				})
			case "restartPolicy":
				return once(&seen, 8) && strPtr(d, &c.RestartPolicy)
			case "livenessProbe":
				// Trimmed to a marker: only an empty probe.
				if !once(&seen, 16) {
					return false
				}
				if d.null() {
					return true
				}
				c.LivenessProbe = &corev1.Probe{}
				return d.object(func(string) bool { return false })
			}
			return false
		})
		out = append(out, c)
		return ok
	})
	*dst = out
	return ok
}

func (d *jdec) podStatus(s *corev1.PodStatus) bool {
	if d.null() {
		return true
	}
	var seen uint32
	return d.object(func(k string) bool {
		switch k {
		case "phase":
			return once(&seen, 1) && strAs(d, &s.Phase)
		case "conditions":
			return once(&seen, 2) && d.conditions(&s.Conditions)
		case "message":
			return once(&seen, 4) && d.str(&s.Message)
		case "reason":
			return once(&seen, 8) && d.str(&s.Reason)
		case "startTime":
			return once(&seen, 16) && d.timePtr(&s.StartTime)
		case "initContainerStatuses":
			return once(&seen, 32) && d.statuses(&s.InitContainerStatuses)
		case "containerStatuses":
			return once(&seen, 64) && d.statuses(&s.ContainerStatuses)
		case "qosClass":
			return once(&seen, 128) && strAs(d, &s.QOSClass)
		case "nominatedNodeName":
			return once(&seen, 256) && d.str(&s.NominatedNodeName)
		}
		return false
	})
}

func (d *jdec) conditions(dst *[]corev1.PodCondition) bool {
	if d.null() {
		return true
	}
	out := []corev1.PodCondition{}
	ok := d.array(func() bool {
		var c corev1.PodCondition
		var seen uint32
		ok := d.null() || d.object(func(k string) bool {
			switch k {
			case "type":
				return once(&seen, 1) && strAs(d, &c.Type)
			case "observedGeneration":
				return once(&seen, 2) && d.int64(&c.ObservedGeneration)
			case "status":
				return once(&seen, 4) && strAs(d, &c.Status)
			case "lastProbeTime":
				return once(&seen, 8) && d.time(&c.LastProbeTime)
			case "lastTransitionTime":
				return once(&seen, 16) && d.time(&c.LastTransitionTime)
			case "reason":
				return once(&seen, 32) && d.str(&c.Reason)
			case "message":
				return once(&seen, 64) && d.str(&c.Message)
			}
			return false
		})
		out = append(out, c)
		return ok
	})
	*dst = out
	return ok
}

func (d *jdec) statuses(dst *[]corev1.ContainerStatus) bool {
	if d.null() {
		return true
	}
	out := []corev1.ContainerStatus{}
	ok := d.array(func() bool {
		var s corev1.ContainerStatus
		var seen uint32
		ok := d.null() || d.object(func(k string) bool {
			switch k {
			case "name":
				return once(&seen, 1) && d.str(&s.Name)
			case "state":
				return once(&seen, 2) && d.state(&s.State)
			case "lastState":
				return once(&seen, 4) && d.state(&s.LastTerminationState)
			case "ready":
				return once(&seen, 8) && d.bool(&s.Ready)
			case "restartCount":
				return once(&seen, 16) && d.int32(&s.RestartCount)
			case "image":
				return once(&seen, 32) && d.str(&s.Image)
			case "imageID":
				return once(&seen, 64) && d.str(&s.ImageID)
			case "containerID":
				return once(&seen, 128) && d.str(&s.ContainerID)
			case "started":
				return once(&seen, 256) && d.boolPtr(&s.Started)
			}
			return false
		})
		out = append(out, s)
		return ok
	})
	*dst = out
	return ok
}

func (d *jdec) state(s *corev1.ContainerState) bool {
	if d.null() {
		return true
	}
	var seen uint32
	return d.object(func(k string) bool {
		switch k {
		case "waiting":
			if !once(&seen, 1) {
				return false
			}
			if d.null() {
				return true
			}
			w := &corev1.ContainerStateWaiting{}
			s.Waiting = w
			var ws uint32
			return d.object(func(k string) bool {
				switch k {
				case "reason":
					return once(&ws, 1) && d.str(&w.Reason)
				case "message":
					return once(&ws, 2) && d.str(&w.Message)
				}
				return false
			})
		case "running":
			if !once(&seen, 2) {
				return false
			}
			if d.null() {
				return true
			}
			r := &corev1.ContainerStateRunning{}
			s.Running = r
			var rs uint32
			return d.object(func(k string) bool {
				return k == "startedAt" && once(&rs, 1) && d.time(&r.StartedAt)
			})
		case "terminated":
			if !once(&seen, 4) {
				return false
			}
			if d.null() {
				return true
			}
			t := &corev1.ContainerStateTerminated{}
			s.Terminated = t
			var ts uint32
			return d.object(func(k string) bool {
				switch k {
				case "exitCode":
					return once(&ts, 1) && d.int32(&t.ExitCode)
				case "signal":
					return once(&ts, 2) && d.int32(&t.Signal)
				case "reason":
					return once(&ts, 4) && d.str(&t.Reason)
				case "message":
					return once(&ts, 8) && d.str(&t.Message)
				case "startedAt":
					return once(&ts, 16) && d.time(&t.StartedAt)
				case "finishedAt":
					return once(&ts, 32) && d.time(&t.FinishedAt)
				case "containerID":
					return once(&ts, 64) && d.str(&t.ContainerID)
				}
				return false
			})
		}
		return false
	})
}

// scanJSONValue returns the end of the valid JSON value at data[i] (RFC 8259 as encoding/json
// reads it), refusing nesting deeper than a quantity could need.
func scanJSONValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) || depth > 64 {
		return i, false
	}
	d := &jdec{data: data, i: i}
	switch c := data[i]; {
	case c == '"':
		end, _, ok := jsonscan.String(data, i)
		return end, ok
	case c == '{':
		ok := d.object(func(string) bool {
			end, ok := scanJSONValue(data, d.ws(), depth+1)
			d.i = end
			return ok
		})
		return d.i, ok
	case c == '[':
		ok := d.array(func() bool {
			end, ok := scanJSONValue(data, d.ws(), depth+1)
			d.i = end
			return ok
		})
		return d.i, ok
	case c == 't' || c == 'f':
		var b bool
		return d.i, d.bool(&b)
	case c == 'n':
		return d.i, d.null()
	case c == '-' || (c >= '0' && c <= '9'):
		return jsonscan.Number(data, i)
	}
	return i, false
}
