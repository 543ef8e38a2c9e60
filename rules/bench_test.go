package rules

import (
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/watchers"
)

// benchEngine is the engine of the default rules.yaml with every default detector.
func benchEngine(b *testing.B) *Engine {
	b.Helper()
	reg := NewDefaultRegistry()
	cfg, err := config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), reg)
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEngine(cfg, reg, actions.MemoryPlanner{})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// benchPod is a realistic Airflow worker pod as the pipeline decodes it from an envelope
// (trimmed by the watchers), its JSON, and a view holding it with the kubelet's events about it.
func benchPod(b *testing.B, i int, oom bool) (*corev1.Pod, []byte, *StaticView) {
	b.Helper()
	pod := watchers.TrimPod(podgen.Stored("airflow", i, oom))
	raw, err := json.Marshal(pod)
	if err != nil {
		b.Fatal(err)
	}
	var events []*corev1.Event
	for k, r := range []string{"Scheduled", "Pulled", "Created", "Started"} {
		at := metav1.NewTime(podgen.Epoch.Add(time.Duration(k-20) * time.Minute))
		events = append(events, &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name + "." + r},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
				FieldPath: "spec.containers{base}"},
			Reason: r, Message: r + " container base", Type: corev1.EventTypeNormal, Count: 1,
			Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: at, LastTimestamp: at,
		})
	}
	return pod, raw, NewStaticView([]*corev1.Pod{pod}, nil, events)
}

// BenchmarkEvaluatePod runs every default rule on one pod: a running worker (no finding) and
// an OOM-killed one (an OOMKilled finding with a proposed memory limit).
func BenchmarkEvaluatePod(b *testing.B) {
	e := benchEngine(b)
	now := podgen.Epoch
	for _, c := range []struct {
		name  string
		oom   bool
		found int
	}{{"healthy", false, 0}, {"oomkilled", true, 1}} {
		b.Run(c.name, func(b *testing.B) {
			pod, _, view := benchPod(b, 7, c.oom)
			if n := len(e.EvaluatePod(pod, view, now)); n != c.found {
				b.Fatalf("%d findings, want %d", n, c.found)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.EvaluatePod(pod, view, now)
			}
		})
	}
}

// BenchmarkDecodeEvaluatePod is the rule handler's work per pod observation: decode the
// envelope's object (DecodePod), then evaluate it.
func BenchmarkDecodeEvaluatePod(b *testing.B) {
	e := benchEngine(b)
	now := podgen.Epoch
	for _, c := range []struct {
		name string
		oom  bool
	}{{"healthy", false}, {"oomkilled", true}} {
		b.Run(c.name, func(b *testing.B) {
			_, raw, view := benchPod(b, 7, c.oom)
			if _, ok := decodePodFast(raw); !ok {
				b.Fatal("the trimmed pod does not take the fast path")
			}
			b.ReportAllocs()
			for b.Loop() {
				pod, err := DecodePod(raw)
				if err != nil {
					b.Fatal(err)
				}
				e.EvaluatePod(pod, view, now)
			}
		})
	}
}

// BenchmarkDecodePod compares the decoder of trimmed pods with encoding/json.
func BenchmarkDecodePod(b *testing.B) {
	_, raw, _ := benchPod(b, 7, false)
	b.Run("DecodePod", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodePod(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p corev1.Pod
			if err := json.Unmarshal(raw, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
