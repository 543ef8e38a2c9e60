package bus

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/podmedic/podmedic/internal/bench/podgen"
)

// trimmedPodJSON is a realistic Airflow worker pod as the watchers put it in an envelope:
// trimmed (no managed fields, no env, only the task-identity annotations), ~2 KB.
func trimmedPodJSON(b *testing.B) json.RawMessage {
	b.Helper()
	p := podgen.Stored("airflow", 7, false)
	// What watchers.TrimPod drops; bus cannot import watchers.
	p.ManagedFields, p.Spec.Affinity, p.Spec.Tolerations, p.Spec.SecurityContext = nil, nil, nil, nil
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].Env, p.Spec.Containers[i].Args, p.Spec.Containers[i].VolumeMounts = nil, nil, nil
	}
	raw, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func benchObservation(b *testing.B) *Observation {
	return &Observation{
		Version: EnvelopeVersion, Cluster: "prod-eu", Type: Updated, Kind: KindPod, Namespace: "airflow",
		Name: podgen.Name(7), UID: "a9728941-1c2d-4e5f-8a9b-000552e2c3ab", ResourceVersion: "100021",
		ObservedAt: time.Date(2026, 11, 20, 2, 30, 0, 0, time.UTC), Object: trimmedPodJSON(b),
	}
}

// BenchmarkObservationEncode is the envelope encoding of PublishObservation.
func BenchmarkObservationEncode(b *testing.B) {
	o := benchObservation(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeObservation is what every consumer does per message.
func BenchmarkDecodeObservation(b *testing.B) {
	data, err := benchObservation(b).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeObservation(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishPrepare is PublishObservation's work before the NATS call: encode, validate,
// subject, message id and headers.
func BenchmarkPublishPrepare(b *testing.B) {
	o := benchObservation(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := prepareObservation(o); err != nil {
			b.Fatal(err)
		}
	}
}
