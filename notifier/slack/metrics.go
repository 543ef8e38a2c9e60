package slack

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of a Notifier.
type metrics struct {
	latency      *prometheus.HistogramVec
	apiErrors    *prometheus.CounterVec
	interactions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, queue func() float64) *metrics {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podmedic_notify_latency_seconds",
			Help:    "Time from a notice being accepted by the Slack notifier to its content being in Slack (posted, updated or listed in a thread), by notice type.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"type"}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_slack_api_errors_total",
			Help: "Failed Slack Web API calls by method and code (HTTP status such as 429 or 503, Slack error such as channel_not_found, or network).",
		}, []string{"method", "code"}),
		interactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_slack_interactions_total",
			Help: "Approve/Deny clicks and interaction requests by result (approved, denied, revoked, refused, forbidden, error, disabled, duplicate, replay, bad_signature, bad_request).",
		}, []string{"result"}),
	}
	// Every result exists from the start, so dashboards and alerts see zeros rather than nothing.
	for _, r := range []string{"approved", "denied", "revoked", "refused", "forbidden", "error", "disabled", "duplicate", "replay", "bad_signature", "bad_request"} {
		m.interactions.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.latency, m.apiErrors, m.interactions,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "podmedic_slack_queue_depth",
				Help: "Notices accepted by the Slack notifier and not yet delivered.",
			}, queue))
	}
	return m
}
