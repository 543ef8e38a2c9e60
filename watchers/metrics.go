package watchers

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podmedic/podmedic/bus"
)

// Metrics count what the watchers publish. A nil *Metrics records nothing.
type Metrics struct {
	observations  *prometheus.CounterVec
	unchangedObs  *prometheus.CounterVec
	publishErrors prometheus.Counter
}

// NewMetrics registers the watcher metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		observations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_observations_total",
			Help: "Observations published to the bus, by object kind and type.",
		}, []string{"kind", "type"}),
		unchangedObs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_observations_unchanged_total",
			Help: "Updates not published because nothing the detectors read changed, by object kind.",
		}, []string{"kind"}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_observation_publish_errors_total",
			Help: "Failed attempts to publish an observation (retried with backoff).",
		}),
	}
	reg.MustRegister(m.observations, m.unchangedObs, m.publishErrors)
	return m
}

func (m *Metrics) published(kind string, t bus.ObservationType) {
	if m != nil {
		m.observations.WithLabelValues(kind, string(t)).Inc()
	}
}

func (m *Metrics) publishError() {
	if m != nil {
		m.publishErrors.Inc()
	}
}

func (m *Metrics) unchanged(kind string) {
	if m != nil {
		m.unchangedObs.WithLabelValues(kind).Inc()
	}
}
