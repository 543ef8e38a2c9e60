package watchers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strconv"

	"github.com/klauspost/compress/zstd"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// podRecord is how the pod informer caches a pod: its identity, and the JSON of the trimmed
// pod (TrimPod), deflated against a dictionary of typical trimmed pods. A trimmed
// *corev1.Pod costs about 8 KB of heap (the Pod struct alone is 1.2 KB; each resource list
// is a map of its own); a record costs about 0.5 KB, so 20,000 pods fit in 10 MB. The JSON
// is what the watchers publish, so a publish inflates it instead of encoding a pod; the few
// readers of a cached pod (Watcher.Pod, for events) decode it.
//
// A record is immutable. It implements runtime.Object and metav1.ObjectMetaAccessor so that
// the informer machinery (keys, namespace index) handles it like any object.
type podRecord struct {
	namespace, name, uid, resourceVersion string
	// fingerprint hashes the trimmed pod without its resourceVersion: two records with the
	// same fingerprint carry the same facts for the detectors.
	fingerprint uint64
	deflated    []byte
}

var (
	_ runtime.Object                  = (*podRecord)(nil)
	_ metav1.ObjectMetaAccessor       = (*podRecord)(nil)
	_ interface{ GetUID() types.UID } = (*podRecord)(nil)
)

func (r *podRecord) GetNamespace() string             { return r.namespace }
func (r *podRecord) GetName() string                  { return r.name }
func (r *podRecord) GetUID() types.UID                { return types.UID(r.uid) }
func (r *podRecord) GetResourceVersion() string       { return r.resourceVersion }
func (r *podRecord) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object; a record is immutable, so it is its own copy.
func (r *podRecord) DeepCopyObject() runtime.Object { return r }

// GetObjectMeta implements metav1.ObjectMetaAccessor with the identity of the pod (what keys
// and indexes read).
func (r *podRecord) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: r.namespace, Name: r.name, UID: types.UID(r.uid), ResourceVersion: r.resourceVersion}
}

// JSON returns the trimmed pod's JSON.
func (r *podRecord) JSON() ([]byte, error) { return inflate(r.deflated) }

// Pod decodes the trimmed pod.
func (r *podRecord) Pod() (*corev1.Pod, error) {
	raw, err := r.JSON()
	if err != nil {
		return nil, err
	}
	var p corev1.Pod
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("cached pod %s/%s: %w", r.namespace, r.name, err)
	}
	return &p, nil
}

// newPodRecord trims a pod and records it.
func newPodRecord(p *corev1.Pod) (*podRecord, error) {
	t := TrimPod(p)
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return &podRecord{namespace: t.Namespace, name: t.Name, uid: string(t.UID), resourceVersion: t.ResourceVersion,
		fingerprint: fingerprint(raw, t.ResourceVersion), deflated: deflate(raw)}, nil
}

// fingerprintSeed seeds the fingerprints: they are compared within one process only.
var fingerprintSeed = maphash.MakeSeed()

// fingerprint hashes a trimmed pod's JSON without its resourceVersion, which changes with
// every write, also with writes to fields the trimming drops.
func fingerprint(raw []byte, resourceVersion string) uint64 {
	if resourceVersion != "" {
		field := `,"resourceVersion":` + strconv.Quote(resourceVersion)
		if i := bytes.Index(raw, []byte(field)); i >= 0 {
			var h maphash.Hash
			h.SetSeed(fingerprintSeed)
			h.Write(raw[:i])
			h.Write(raw[i+len(field):])
			return h.Sum64()
		}
	}
	return maphash.Bytes(fingerprintSeed, raw)
}

// The codec: zstd against a dictionary of typical trimmed pods. One encoder and one decoder,
// both safe for concurrent use and with their state sized for pods (a 32 KB window).
var (
	podDict    = podDictionary()
	podEncoder = mustEncoder()
	podDecoder = mustDecoder()
)

func mustEncoder() *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(1, podDict), zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<15), zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err) // static options
	}
	return e
}

func mustDecoder() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(1, podDict), zstd.WithDecoderConcurrency(2),
		zstd.WithDecoderMaxWindow(1<<20), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(err) // static options
	}
	return d
}

func deflate(raw []byte) []byte {
	// Cloned to its length: the record keeps it for the pod's lifetime.
	return bytes.Clone(podEncoder.EncodeAll(raw, make([]byte, 0, len(raw)/2+64)))
}

func inflate(deflated []byte) ([]byte, error) {
	out, err := podDecoder.DecodeAll(deflated, make([]byte, 0, 8*len(deflated)+512))
	if err != nil {
		return nil, fmt.Errorf("inflate cached pod: %w", err)
	}
	return out, nil
}
