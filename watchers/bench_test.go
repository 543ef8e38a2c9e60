package watchers

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/internal/bench/podgen"
)

// storedPodJSON is a worker pod as the apiserver serves it (managed fields, status): ~9.5 KB.
func storedPodJSON(b *testing.B, i int, oom bool) []byte {
	b.Helper()
	raw, err := json.Marshal(podgen.Stored("airflow", i, oom))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// decodePod decodes a pod the way the informer gets it: every string freshly allocated.
func decodePod(b *testing.B, raw []byte) *corev1.Pod {
	b.Helper()
	var p corev1.Pod
	if err := json.Unmarshal(raw, &p); err != nil {
		b.Fatal(err)
	}
	return &p
}

// BenchmarkTransformPod trims a realistic Airflow worker pod (10 labels, 8 annotations, 30 env
// vars, 3 volumes, managed fields, a running status), as SetTransform does for every pod the
// informer receives.
func BenchmarkTransformPod(b *testing.B) {
	pod := decodePod(b, storedPodJSON(b, 7, false))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Transform(pod); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishPod is what a watcher worker does per pod: encode the cached (trimmed) pod
// and build its envelope, then the bus's encoding of the envelope (PublishObservation up to the
// NATS call, which BenchmarkPublishConsume in bus measures).
func BenchmarkPublishPod(b *testing.B) {
	pod := decodePod(b, storedPodJSON(b, 7, false))
	trimmed, _ := Transform(pod)
	w, err := New(Options{Client: fake.NewClientset(), Cluster: "prod-eu", Publisher: encoder{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.scopes[0].pods.GetStore().Add(trimmed); err != nil {
		b.Fatal(err)
	}
	it := item{kind: bus.KindPod, namespace: "airflow", name: pod.Name}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := w.publish(ctx, it); err != nil { // no pending entry: published as an update
			b.Fatal(err)
		}
	}
}

// encoder is a Publisher that encodes the envelope and validates it as the bus does, without
// sending it.
type encoder struct{}

func (encoder) PublishObservation(_ context.Context, o *bus.Observation) error {
	data, err := o.Encode()
	if err != nil {
		return err
	}
	_, err = bus.DecodeObservation(data)
	return err
}

// BenchmarkPodCacheFootprint measures the heap a trimmed pod keeps in an informer's indexer
// (key and object, as the pod informer keeps them), decoded from JSON so that no string is shared between pods.
// The figure of interest is B/pod: 20,000 pods times it is the informer cache's share of RSS.
func BenchmarkPodCacheFootprint(b *testing.B) {
	const n = 2000
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = storedPodJSON(b, i, i%50 == 0)
	}
	b.ReportAllocs()
	var perPod float64
	for b.Loop() {
		store := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, cache.Indexers{}) // as the pod informer: keys only
		before := heapInUse()
		for _, raw := range raws {
			obj, err := Transform(decodePod(b, raw))
			if err != nil {
				b.Fatal(err)
			}
			if err := store.Add(obj); err != nil {
				b.Fatal(err)
			}
		}
		perPod = float64(heapInUse()-before) / n
		runtime.KeepAlive(store)
	}
	b.ReportMetric(perPod, "B/pod")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
