package bus

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The envelope's fast path must be invisible: the same bytes as json.Marshal, the same values
// as json.Unmarshal, and publish refusing exactly what a consumer would refuse.

var envelopeSeeds = []string{
	`{"v":1,"cluster":"prod","type":"MODIFIED","kind":"Pod","namespace":"airflow","name":"etl-1","uid":"u1","resourceVersion":"7","observedAt":"2026-11-20T02:13:09Z","object":{"metadata":{"name":"etl-1"}}}`,
	`{"v":1,"cluster":"prod","type":"RESYNC","kind":"Pod","namespace":"a","name":"n","uid":"u","resourceVersion":"7","observedAt":"2026-11-20T02:13:09.123456789+01:00","epoch":29587,"object":{"a":[1,-2.5e+3,true,false,null,"x\\"\u00e9\\u00e9<"]}}`,
	`{"v":1,"kind":"Event","reason":"FailedMount","object": { "a" : [ ] , "b":{}} }`,
	` {"V":1,"Kind":"Pod"} `,
	`{"v":1,"v":2}`,
	`{"v":1.0}`,
	`{"v":01}`,
	`{"v":-0,"epoch":123456789012345678901}`,
	`{"object":null,"name":null}`,
	`{"object":"x"}`,
	`{"object":{"a":1}}x`,
	`{"object":{"a":1`,
	`{"name":"a\u2028b","uid":"\u00ff"}`,
	`{}`,
	`[]`,
	``,
}

func FuzzEnvelopeDecodeFastPath(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Observation
		if !decodeFast(data, &fast) {
			return // encoding/json decides
		}
		var slow Observation
		require.NoError(t, json.Unmarshal(data, &slow), "the fast path accepted what encoding/json refuses: %q", data)
		require.True(t, reflect.DeepEqual(slow, fast), "fast %+v\nslow %+v\ninput %q", fast, slow, data)
	})
}

func FuzzEnvelopeEncodeFastPath(f *testing.F) {
	f.Add(1, "prod", "MODIFIED", "Pod", "airflow", "etl-1", "u1", "7", int64(1763604789), 5, "", int64(0), []byte(`{"metadata":{"name":"etl-1"}}`))
	f.Add(1, "p<r>od", "RESYNC", "Pod", "a\"b", "n\\", "u\u2028", "7", int64(-62135596800), 0, "Killing", int64(42), []byte(`{"a": 1}`))
	f.Add(0, "", "", "", "", "", "", "", int64(253402300800), 999999999, "r\x00", int64(-1), []byte(nil))
	f.Add(1, "c", "DELETED", "Event", "ns", "e", "u", "1", int64(0), 0, "", int64(0), []byte(`{"m":"<b>&\u2029é\xff"}`))
	f.Add(1, "c", "ADDED", "PersistentVolumeClaim", "ns", "e", "u", "1", int64(0), 0, "", int64(0), []byte(` {"a":[]}`))
	f.Add(1, "c", "ADDED", "Pod", "ns", "e", "u", "1", int64(0), 0, "", int64(0), []byte(`[1,{"x":null}]`))
	f.Add(1, "c", "ADDED", "Pod", "ns", "e", "u", "1", int64(0), 0, "", int64(0), []byte(``))
	f.Fuzz(func(t *testing.T, v int, cluster, typ, kind, ns, name, uid, rv string, sec int64, nsec int, reason string, epoch int64, object []byte) {
		o := &Observation{Version: v, Cluster: cluster, Type: ObservationType(typ), Kind: kind, Namespace: ns, Name: name,
			UID: uid, ResourceVersion: rv, ObservedAt: time.Unix(sec, int64(nsec)).In(time.FixedZone("", int(sec%50000))),
			Reason: reason, Epoch: epoch, Object: object}
		want, wantErr := json.Marshal(o)
		got, gotErr := o.Encode()
		require.Equal(t, wantErr != nil, gotErr != nil, "errors: json.Marshal %v, Encode %v", wantErr, gotErr)
		if wantErr == nil {
			require.True(t, bytes.Equal(want, got), "json.Marshal %s\nEncode       %s", want, got)
		}

		// Publishing refuses exactly what a consumer would refuse.
		_, _, prepErr := prepareObservation(o)
		consumerOK := false
		if wantErr == nil {
			_, err := DecodeObservation(want)
			consumerOK = err == nil
		}
		require.Equal(t, consumerOK, prepErr == nil, "consumer accepts: %v, publish error: %v", consumerOK, prepErr)
	})
}

func TestEnvelopeFastPathTaken(t *testing.T) {
	o := &Observation{Version: 1, Cluster: "prod", Type: Resync, Kind: KindPod, Namespace: "airflow", Name: "etl-1",
		UID: "u1", ResourceVersion: "7", ObservedAt: time.Date(2026, 11, 20, 2, 13, 9, 5, time.UTC), Epoch: 3,
		Object: json.RawMessage(`{"metadata":{"name":"etl-1","annotations":{"m":"a \"quoted\" \u00e9 \\u0026"}}}`)}
	data, ok := encodeFast(nil, o)
	require.True(t, ok, "podmedic's own envelopes take the fast path")
	var back Observation
	require.True(t, decodeFast(data, &back))
	require.Equal(t, *o, back)
}
