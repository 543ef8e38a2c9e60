package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvelopeVersion is the version of the Observation JSON envelope. Consumers refuse (Term)
// envelopes of a version they do not know.
const EnvelopeVersion = 1

// ObservationType says why an object was published.
type ObservationType string

const (
	Added   ObservationType = "ADDED"
	Updated ObservationType = "MODIFIED"
	Deleted ObservationType = "DELETED"
	// Resync is an informer resync or the initial list: the object did not necessarily change.
	Resync ObservationType = "RESYNC"
)

// Object kinds carried on the bus.
const (
	KindPod   = "Pod"
	KindPVC   = "PersistentVolumeClaim"
	KindEvent = "Event"
	// KindSparkApp is a SparkApplication (sparkoperator.k8s.io/v1beta2), as JSON.
	KindSparkApp = "SparkApplication"
	// KindScheduledSparkApp is a ScheduledSparkApplication, as JSON.
	KindScheduledSparkApp = "ScheduledSparkApplication"
)

// Observation is the versioned envelope of one observed object.
type Observation struct {
	Version         int             `json:"v"`
	Cluster         string          `json:"cluster"`
	Type            ObservationType `json:"type"`
	Kind            string          `json:"kind"`
	Namespace       string          `json:"namespace"`
	Name            string          `json:"name"`
	UID             string          `json:"uid"`
	ResourceVersion string          `json:"resourceVersion"`
	ObservedAt      time.Time       `json:"observedAt"`
	// Reason is the Event's reason (events only); it is also sent as a header.
	Reason string `json:"reason,omitempty"`
	// Epoch numbers the resync period a Resync observation belongs to (ObservedAt divided by
	// the resync period). It is part of the message id, so every watcher replica's resync of
	// one object in one period is one message, while the next period's resync is not swallowed
	// by the dedup window.
	Epoch int64 `json:"epoch,omitempty"`
	// Object is the trimmed Kubernetes object as JSON.
	Object json.RawMessage `json:"object"`
}

// MsgID is the JetStream dedup id: <cluster>/<uid>/<resourceVersion>, so several watcher
// replicas publishing the same change produce one message. A delete keeps the resourceVersion
// of the last state, so it is told apart by the suffix /DELETED; a resync of an unchanged
// object by /RESYNC/<epoch>.
func (o *Observation) MsgID() string {
	id := o.Cluster + "/" + o.UID + "/" + o.ResourceVersion
	switch o.Type {
	case Deleted:
		id += "/" + string(Deleted)
	case Resync:
		id += "/" + string(Resync) + "/" + strconv.FormatInt(o.Epoch, 10)
	}
	return id
}

// Subject is podmedic.obs.<cluster>.<kind>.<namespace>.<name>, with '.' (and other characters
// NATS reserves in tokens) inside names replaced by '_'.
func (o *Observation) Subject() string {
	return SubjectObservations + "." + Token(o.Cluster) + "." + Token(strings.ToLower(o.Kind)) + "." +
		Token(o.Namespace) + "." + Token(o.Name)
}

// Token makes s safe as one NATS subject token: '.', '*', '>' and whitespace become '_', and
// an empty string becomes "_".
func Token(s string) string {
	if s == "" {
		return "_"
	}
	if !strings.ContainsAny(s, ".*> \t\r\n") {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		switch c {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			b[i] = '_'
		}
	}
	return string(b)
}

// ErrMalformed wraps every decoding failure of an envelope: such a message is a poison message
// (terminate, count, never retry).
var ErrMalformed = errors.New("malformed observation")

// DecodeObservation parses and checks an envelope.
func DecodeObservation(data []byte) (*Observation, error) {
	var o Observation
	if !decodeFast(data, &o) {
		o = Observation{}
		if err := json.Unmarshal(data, &o); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	return &o, nil
}

// check reports (wrapping ErrMalformed) what makes a decoded envelope unusable.
func (o *Observation) check() error {
	switch {
	case o.Version != EnvelopeVersion:
		return fmt.Errorf("%w: envelope version %d, want %d", ErrMalformed, o.Version, EnvelopeVersion)
	case o.Kind != KindPod && o.Kind != KindPVC && o.Kind != KindEvent && o.Kind != KindSparkApp && o.Kind != KindScheduledSparkApp:
		return fmt.Errorf("%w: unknown kind %q", ErrMalformed, o.Kind)
	case o.Type != Added && o.Type != Updated && o.Type != Deleted && o.Type != Resync:
		return fmt.Errorf("%w: unknown type %q", ErrMalformed, o.Type)
	case o.Name == "" || o.UID == "":
		return fmt.Errorf("%w: missing name or uid", ErrMalformed)
	case firstNonSpace(o.Object) != '{':
		return fmt.Errorf("%w: object is not a JSON object", ErrMalformed)
	}
	return nil
}

// firstNonSpace is the first byte of a JSON text, 0 when there is none.
func firstNonSpace(data []byte) byte {
	if i := skipSpace(data, 0); i < len(data) {
		return data[i]
	}
	return 0
}

// Encode returns the envelope's JSON, exactly as json.Marshal writes it.
func (o *Observation) Encode() ([]byte, error) {
	if data, ok := encodeFast(make([]byte, 0, len(o.Object)+320), o); ok {
		return data, nil
	}
	return json.Marshal(o)
}
