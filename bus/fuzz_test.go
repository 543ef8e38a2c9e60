package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeObservation: whatever arrives on the bus, decoding never panics, every refusal is
// ErrMalformed (so the consumer terminates it rather than retrying forever), and what is
// accepted re-encodes to an envelope that decodes the same.
func FuzzDecodeObservation(f *testing.F) {
	good, _ := (&Observation{Version: EnvelopeVersion, Cluster: "c", Type: Updated, Kind: KindPod, Namespace: "airflow",
		Name: "etl-load-7f9c", UID: "u", ResourceVersion: "7", Object: json.RawMessage(`{"metadata":{"name":"etl-load-7f9c"}}`)}).Encode()
	for _, seed := range [][]byte{
		good, []byte(`{"v":99}`), []byte("not json"), []byte(`{}`), []byte(`null`), []byte(`[]`),
		[]byte(`{"v":1,"kind":"Pod","type":"RESYNC","name":"a","uid":"b","object":{},"epoch":-1}`),
		[]byte(`{"v":1,"kind":"Event","type":"ADDED","name":"a","uid":"b","object":"x"}`),
		[]byte(`{"v":1,"kind":"Pod","type":"ADDED","name":"a","uid":"b","object":{"a":` + "\x00" + `}}`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := DecodeObservation(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("refusal is not ErrMalformed: %v", err)
			}
			return
		}
		again, err := o.Encode()
		if err != nil {
			t.Fatalf("accepted envelope does not encode: %v", err)
		}
		o2, err := DecodeObservation(again)
		if err != nil {
			t.Fatalf("re-encoded envelope refused: %v", err)
		}
		if o2.MsgID() != o.MsgID() || o2.Subject() != o.Subject() {
			t.Fatalf("round trip changed identity: %s %s vs %s %s", o.MsgID(), o.Subject(), o2.MsgID(), o2.Subject())
		}
	})
}

// FuzzDecodeFrame: whatever a frame holds, decoding never panics, a refused frame or member
// is ErrMalformed, and there is one result per line.
func FuzzDecodeFrame(f *testing.F) {
	a, _ := podObs(1).Encode()
	b, _ := podObs(2).Encode()
	for _, seed := range [][]byte{
		append(append(append([]byte{}, a...), '\n'), b...), a, []byte(""), []byte("\n"), []byte("{}\n{}"),
		append(append([]byte{}, a...), "\nnot json"...),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obs, errs, err := DecodeFrame(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("refusal is not ErrMalformed: %v", err)
			}
			return
		}
		if len(obs) != len(errs) || len(obs) != bytes.Count(data, []byte{'\n'})+1 {
			t.Fatalf("%d observations, %d errors for %d lines", len(obs), len(errs), bytes.Count(data, []byte{'\n'})+1)
		}
		for i, err := range errs {
			if (err == nil) == (obs[i] == nil) || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Fatalf("member %d: %v, %v", i, obs[i], err)
			}
		}
	})
}
