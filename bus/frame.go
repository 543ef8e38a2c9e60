package bus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// A frame is one message carrying several observations: their envelopes, each exactly as
// Observation.Encode writes it (compact JSON, so without a raw newline), one per line. Bulk
// publishing (a resync pass, the initial list) sends frames: JetStream's cost is per message
// (store, dedup, deliver, ack, delete), so a frame of 128 observations costs about what one
// observation does. Changes published one at a time keep their own message and Nats-Msg-Id.
//
// A frame's message carries HeaderFrame (the number of observations) and is published on
// <SubjectObservations>.<cluster>.frame with the Nats-Msg-Id <cluster>/frame/<digest of the
// members' message ids>: replicas that frame the same observations alike publish one message.
const (
	// HeaderFrame marks a frame and holds its observation count.
	HeaderFrame = "Podmedic-Frame"
	// MaxFrameObservations and MaxFrameBytes bound a frame (well under NATS's 1 MiB payload).
	MaxFrameObservations = 256
	MaxFrameBytes        = 512 << 10
)

// frame is a frame being built: its members' messages (as PublishObservation sends them) and
// message ids.
type frame struct {
	cluster string
	msgs    []*nats.Msg
	size    int // of the frame's data
	ids     []string
	members []int // the index of each member in the caller's slice
}

func (f *frame) add(i int, cluster, id string, m *nats.Msg) {
	if f.cluster == "" {
		f.cluster = cluster
	}
	if len(f.msgs) > 0 {
		f.size++
	}
	f.msgs = append(f.msgs, m)
	f.size += len(m.Data)
	f.ids = append(f.ids, id)
	f.members = append(f.members, i)
}

func (f *frame) fits(cluster string, m *nats.Msg) bool {
	return len(f.members) == 0 ||
		(len(f.members) < MaxFrameObservations && f.size+1+len(m.Data) <= MaxFrameBytes && cluster == f.cluster)
}

// msg is the frame's message and its Nats-Msg-Id; a lone member goes out as its own message.
func (f *frame) msg() (*nats.Msg, string) {
	if len(f.msgs) == 1 {
		return f.msgs[0], f.ids[0]
	}
	h := sha256.New()
	for _, id := range f.ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	data := make([]byte, 0, f.size)
	for i, m := range f.msgs {
		if i > 0 {
			data = append(data, '\n')
		}
		data = append(data, m.Data...)
	}
	m := &nats.Msg{Subject: SubjectObservations + "." + Token(f.cluster) + ".frame", Data: data, Header: nats.Header{}}
	m.Header.Set(HeaderFrame, strconv.Itoa(len(f.ids)))
	return m, f.cluster + "/frame/" + hex.EncodeToString(h.Sum(nil)[:16])
}

// DecodeFrame splits a frame into its observations. Every member is decoded on its own: a
// malformed member is reported in its slot of errs (wrapping ErrMalformed) and does not
// spoil the others. The frame itself is malformed (err wraps ErrMalformed) when it is empty.
func DecodeFrame(data []byte) (obs []*Observation, errs []error, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		o, err := DecodeObservation(line)
		obs, errs = append(obs, o), append(errs, err)
	}
	return obs, errs, nil
}

// fail reports err for each member.
func (f *frame) fail(errs []error, err error) {
	for _, i := range f.members {
		errs[i] = err
	}
}
