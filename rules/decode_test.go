package rules

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/watchers"
)

// decodeSeeds are pods as the watchers publish them: trimmed fixtures of the bad night and
// generated Airflow workers, plus the same pods untrimmed (which take the slow path).
func decodeSeeds(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.Open("testdata/replay/bad-night.json")
	require.NoError(t, err)
	defer f.Close()
	d := &Dump{}
	require.NoError(t, d.ReadDump(f))
	pods := append([]*corev1.Pod(nil), d.Pods...)
	pods = append(pods, podgen.Stored("airflow", 1, false), podgen.Stored("airflow", 2, true))
	var out [][]byte
	for _, p := range pods {
		for _, v := range []*corev1.Pod{watchers.TrimPod(p), p} {
			raw, err := json.Marshal(v)
			require.NoError(t, err)
			out = append(out, raw)
		}
	}
	return out
}

func TestDecodePodTakesTheFastPathForTrimmedPods(t *testing.T) {
	seeds := decodeSeeds(t)
	for i := 0; i < len(seeds); i += 2 {
		fast, ok := decodePodFast(seeds[i])
		require.True(t, ok, "a trimmed pod must not need encoding/json: %s", seeds[i])
		var want corev1.Pod
		require.NoError(t, json.Unmarshal(seeds[i], &want))
		require.True(t, reflect.DeepEqual(&want, fast), "fast %+v\nwant %+v", fast, want)
	}
	got, err := DecodePod(seeds[1]) // untrimmed: encoding/json
	require.NoError(t, err)
	require.NotEmpty(t, got.Name)
}

func TestDecodePodEdges(t *testing.T) {
	for _, in := range []string{
		`{"metadata":{"name":"a","labels":{}},"spec":{"containers":[]},"status":{"conditions":null}}`,
		` { "metadata" : { "name" : "a\"b" , "annotations" : { "k" : "v\u003c" } } } `,
		`{"metadata":{"creationTimestamp":null,"deletionTimestamp":"2026-11-20T02:13:09+01:00","deletionGracePeriodSeconds":30}}`,
		`{"spec":{"containers":[{"name":"c","resources":{"limits":{"memory":"2Gi","cpu":1.5}},"livenessProbe":{}}]}}`,
		`{"status":{"containerStatuses":[{"name":"c","state":{"terminated":{"exitCode":137,"reason":"OOMKilled"}},"lastState":{},"ready":false,"restartCount":2147483647,"started":null}]}}`,
	} {
		fast, ok := decodePodFast([]byte(in))
		require.True(t, ok, in)
		var want corev1.Pod
		require.NoError(t, json.Unmarshal([]byte(in), &want))
		require.True(t, reflect.DeepEqual(&want, fast), "%s\nfast %+v\nwant %+v", in, fast, want)
	}
	for _, in := range []string{
		`{"metadata":{"name":"a"},"metadata":{"uid":"u"}}`,        // repeated: merged by encoding/json
		`{"Metadata":{"name":"a"}}`,                               // another case
		`{"metadata":{"name":"a","finalizers":["x"]}}`,            // not trimmed
		`{"status":{"containerStatuses":[{"restartCount":1.0}]}}`, // encoding/json refuses
		`{"status":{"containerStatuses":[{"restartCount":2147483648}]}}`,
		`{"metadata":{"creationTimestamp":"yesterday"}}`,
		`{"metadata":{"name":"a"}} x`,
		`null`,
	} {
		_, ok := decodePodFast([]byte(in))
		require.False(t, ok, in)
	}
}

func FuzzDecodePod(f *testing.F) {
	for _, s := range decodeSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"metadata":{"name":"a","labels":{"a":"b"}},"status":{"startTime":"2026-11-20T02:13:09Z"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodePodFast(data)
		if !ok {
			return
		}
		var want corev1.Pod
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("the fast path accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(&want, fast) {
			t.Fatalf("fast %+v\nwant %+v\ninput %q", fast, want, data)
		}
	})
}
