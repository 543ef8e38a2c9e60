package bus

import (
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcomes of one delivered observation, the values of the "outcome" label of
// podmedic_bus_handled_total.
const (
	OutcomeAck  = "ack"
	OutcomeNak  = "nak"
	OutcomeTerm = "term"
)

// Metrics are the bus's Prometheus counters. A nil *Metrics counts nothing.
type Metrics struct {
	// Published counts messages JetStream stored (duplicates excluded).
	Published prometheus.Counter
	// Duplicates counts publishes JetStream dropped as duplicates of a Nats-Msg-Id seen within
	// the stream's duplicate window (several watcher replicas publishing the same change).
	Duplicates prometheus.Counter
	// PublishErrors counts publishes that failed.
	PublishErrors prometheus.Counter
	// Handled counts delivered observations by outcome (ack, nak, term).
	Handled *prometheus.CounterVec
	// Malformed counts messages that failed DecodeObservation; they are terminated and also
	// counted as Handled{outcome="term"}.
	Malformed prometheus.Counter
}

// NewMetrics creates the bus counters and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Published: f.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_bus_published_total",
			Help: "Messages published to JetStream and stored.",
		}),
		Duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_bus_duplicates_total",
			Help: "Publishes dropped by JetStream as duplicates (same Nats-Msg-Id within the duplicate window).",
		}),
		PublishErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_bus_publish_errors_total",
			Help: "Publishes to JetStream that failed.",
		}),
		Handled: f.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_bus_handled_total",
			Help: "Observations delivered to the rules consumer, by outcome (ack, nak, term).",
		}, []string{"outcome"}),
		Malformed: f.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_bus_malformed_total",
			Help: "Messages on the observation stream that could not be decoded; terminated, never retried.",
		}),
	}
	// Make every outcome visible from the start, so rate() works before the first failure.
	for _, o := range []string{OutcomeAck, OutcomeNak, OutcomeTerm} {
		m.Handled.WithLabelValues(o)
	}
	return m
}

// acked counts a publish JetStream acknowledged: stored, or dropped as a duplicate.
func (m *Metrics) acked(ack *jetstream.PubAck) {
	if ack.Duplicate {
		m.duplicate()
	} else {
		m.published()
	}
}

func (m *Metrics) published() {
	if m != nil {
		m.Published.Inc()
	}
}

func (m *Metrics) duplicate() {
	if m != nil {
		m.Duplicates.Inc()
	}
}

func (m *Metrics) publishError() {
	if m != nil {
		m.PublishErrors.Inc()
	}
}

func (m *Metrics) malformed() {
	if m != nil {
		m.Malformed.Inc()
	}
}

func (m *Metrics) handled(outcome string) {
	if m != nil {
		m.Handled.WithLabelValues(outcome).Inc()
	}
}
