package actions

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podmedic/podmedic/finding"
)

// Metrics of the actions stage. A nil *Metrics records nothing.
//
// podmedic_actions_total{type,outcome} counts what the guard did, per replica (sum across
// replicas): outcome executed, dry-run, failed or refused. podmedic_action_refusals_total
// {type,reason} says why actions were refused.
//
// podmedic_proposals{state} is a gauge of the proposals in the shared store by state,
// refreshed from the store by the maintenance loop: every replica reports the same numbers
// (aggregate with max, not sum). A per-replica counter of proposals could not say how many
// are pending now, since another replica may decide them; the transitions each replica made
// are the counter podmedic_proposal_transitions_total{state}.
type Metrics struct {
	actions     *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	proposals   *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	suppressed  prometheus.Counter
	errors      *prometheus.CounterVec
}

// NewMetrics registers the actions metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_actions_total",
			Help: "Actions the guard handled, by action type and outcome (executed, dry-run, failed, refused).",
		}, []string{"type", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_action_refusals_total",
			Help: "Actions the guard refused, by action type and reason (budget, cooldown, protected-namespace, ...).",
		}, []string{"type", "reason"}),
		proposals: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podmedic_proposals",
			Help: "Proposals in the shared store by state (the same on every replica).",
		}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_proposal_transitions_total",
			Help: "Proposal state transitions made by this replica, by the state entered.",
		}, []string{"state"}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_findings_after_action_total",
			Help: "Findings about pods podmedic itself deleted or evicted, not reported or acted on again.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_actions_errors_total",
			Help: "Errors of the actions stage that did not stop it (audit publish, notice, store), by what failed.",
		}, []string{"what"}),
	}
	for _, s := range finding.ProposalStates() {
		m.proposals.WithLabelValues(string(s))
	}
	for _, what := range []string{"audit", "notify", "store"} {
		m.errors.WithLabelValues(what) // zeros from the start, for dashboards and alerts
	}
	reg.MustRegister(m.actions, m.refusals, m.proposals, m.transitions, m.suppressed, m.errors)
	return m
}

func (m *Metrics) action(t finding.ActionType, outcome string) {
	if m != nil {
		m.actions.WithLabelValues(string(t), outcome).Inc()
	}
}

func (m *Metrics) refused(t finding.ActionType, r Reason) {
	if m != nil {
		m.actions.WithLabelValues(string(t), finding.ResultRefused).Inc()
		m.refusals.WithLabelValues(string(t), string(r)).Inc()
	}
}

func (m *Metrics) transition(s finding.ProposalState) {
	if m != nil {
		m.transitions.WithLabelValues(string(s)).Inc()
	}
}

func (m *Metrics) setProposals(counts map[finding.ProposalState]int) {
	if m != nil {
		for _, s := range finding.ProposalStates() {
			m.proposals.WithLabelValues(string(s)).Set(float64(counts[s]))
		}
	}
}

func (m *Metrics) suppress() {
	if m != nil {
		m.suppressed.Inc()
	}
}

func (m *Metrics) error(what string) {
	if m != nil {
		m.errors.WithLabelValues(what).Inc()
	}
}
