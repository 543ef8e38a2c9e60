package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/overrides"
)

// ProposalLister lists the proposals in the store now (the actions Service's Proposals, or
// the proposals bucket read directly): the digest counts the pending ones.
type ProposalLister interface {
	Proposals(ctx context.Context) ([]finding.Proposal, error)
}

// Digest summarises a window of the audit stream for the on-call channel.
type Digest struct {
	Cluster string    `json:"cluster"`
	Since   time.Time `json:"since"`
	Until   time.Time `json:"until"`

	// Incidents are the findings of the window: by kind (each with its namespaces), by
	// namespace, and the Airflow tasks that failed most.
	Incidents   int          `json:"incidents"`
	ByKind      []KindCount  `json:"by_kind"`
	ByNamespace []NameCount  `json:"by_namespace"`
	TopTasks    []TaskCount  `json:"top_tasks"`
	Actions     ActionCounts `json:"actions"`
	// Pending are the proposals waiting for a decision now, oldest first; Expired those that
	// expired in the window without one.
	Pending []ProposalLine `json:"pending"`
	Expired []ProposalLine `json:"expired"`
	// Sweeps summarises the scheduled sweeps' runs in the window.
	Sweeps []SweepCount `json:"sweeps"`
	// Overrides are the memory overrides in force at the end of the window, those expiring
	// within 3 days first (nil when podmedic keeps none).
	Overrides []OverrideLine `json:"overrides,omitempty"`

	top int
}

// OverrideLine is one memory override in force.
type OverrideLine struct {
	ID        string    `json:"id"`
	Namespace string    `json:"namespace"`
	DagID     string    `json:"dag_id"`
	TaskID    string    `json:"task_id"`
	Container string    `json:"container"`
	Limit     string    `json:"limit"`
	Request   string    `json:"request,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	Expiring  bool      `json:"expiring"` // within 3 days of the digest's end
}

// expiringWithin is when an override counts as expiring soon in the digest.
const expiringWithin = 3 * 24 * time.Hour

// overrideLines are the overrides in force at until, the soonest to expire first.
func overrideLines(os []overrides.Override, until time.Time) []OverrideLine {
	out := []OverrideLine{}
	for _, o := range os {
		if !o.Active(until) {
			continue
		}
		out = append(out, OverrideLine{ID: o.ID, Namespace: o.Task.Namespace, DagID: o.Task.DagID, TaskID: o.Task.TaskID,
			Container: o.Task.Column(), Limit: o.Limit, Request: o.Request, ExpiresAt: o.ExpiresAt,
			Expiring: o.ExpiresAt.Sub(until) <= expiringWithin})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExpiresAt.Before(out[j].ExpiresAt) })
	return out
}

// NameCount is a count by name (a namespace, a kind, a refusal reason).
type NameCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// KindCount is the findings of one kind, with the namespaces that had most.
type KindCount struct {
	Kind       finding.Kind `json:"kind"`
	Count      int          `json:"count"`
	Namespaces []NameCount  `json:"namespaces"`
}

// TaskCount is the failures of one Airflow task (dag_id.task_id), by kind.
type TaskCount struct {
	DagID  string      `json:"dag_id"`
	TaskID string      `json:"task_id"`
	Count  int         `json:"count"`
	Kinds  []NameCount `json:"kinds"`
	Runs   int         `json:"runs"`
}

// ActionCounts are the actions of the window, from the proposal transitions (rules and
// approve-mode sweeps) and the sweeps' reports (refusals of auto-mode sweeps).
type ActionCounts struct {
	// Taken: executed (or, in dry-run, recorded); Failed: tried and failed; Refused: refused
	// by the guard (after an approval, or by a sweep); Denied: by a human.
	Taken   int `json:"taken"`
	Failed  int `json:"failed"`
	Refused int `json:"refused"`
	Denied  int `json:"denied"`
	// ByType breaks Taken and Failed down by action type.
	ByType []TypeCount `json:"by_type"`
	// RefusedBy are the refusals by reason.
	RefusedBy []NameCount `json:"refused_by"`
}

// TypeCount is one action type's outcomes.
type TypeCount struct {
	Type   finding.ActionType `json:"type"`
	Taken  int                `json:"taken"`
	Failed int                `json:"failed"`
	Auto   int                `json:"auto"` // of Taken, without a human decision
}

// ProposalLine is one proposal in the digest.
type ProposalLine struct {
	ID        string             `json:"id"`
	Rule      string             `json:"rule"`
	Action    finding.ActionType `json:"action"`
	Target    string             `json:"target"`
	CreatedAt time.Time          `json:"created_at"`
	ExpiresAt time.Time          `json:"expires_at"`
}

// SweepCount is one sweep job's runs in the window.
type SweepCount struct {
	Job       string `json:"job"`
	Runs      int    `json:"runs"`
	Acted     int    `json:"acted"`
	Proposed  int    `json:"proposed"`
	Refused   int    `json:"refused"`
	Remaining int    `json:"remaining"` // after its last run
}

// BuildDigest summarises the records of [since, until) and the proposals pending now. top
// bounds the lists (namespaces per kind, tasks, pending and expired proposals).
func BuildDigest(cluster string, since, until time.Time, records []audit.Record, proposals []finding.Proposal, top int) *Digest {
	top = max(top, 1)
	d := &Digest{Cluster: cluster, Since: since, Until: until, top: top}
	kinds := map[finding.Kind]map[string]int{}
	namespaces := map[string]int{}
	type taskKey struct{ dag, task string }
	tasks := map[taskKey]map[string]int{}
	taskRuns := map[taskKey]map[string]bool{}
	latest := map[string]finding.Proposal{} // proposal id -> its last transition in the window
	var order []string
	sweeps := map[string]*SweepCount{}
	refusedBy := map[string]int{}

	for _, r := range records {
		if r.Time.Before(since) || !r.Time.Before(until) {
			continue
		}
		switch r.Type {
		case audit.Finding:
			var f finding.Finding
			if json.Unmarshal(r.Data, &f) != nil || f.Kind == "" {
				continue
			}
			d.Incidents++
			if kinds[f.Kind] == nil {
				kinds[f.Kind] = map[string]int{}
			}
			kinds[f.Kind][f.Namespace]++
			namespaces[f.Namespace]++
			if a := f.Airflow; a != nil && a.DagID != "" {
				k := taskKey{a.DagID, a.TaskID}
				if tasks[k] == nil {
					tasks[k], taskRuns[k] = map[string]int{}, map[string]bool{}
				}
				tasks[k][string(f.Kind)]++
				taskRuns[k][a.Run()] = true
			}
		case audit.Proposal:
			var p finding.Proposal
			if json.Unmarshal(r.Data, &p) != nil || p.ID == "" {
				continue
			}
			if _, seen := latest[p.ID]; !seen {
				order = append(order, p.ID)
			}
			if cur, ok := latest[p.ID]; !ok || rankState(p.State) >= rankState(cur.State) {
				latest[p.ID] = p
			}
		case audit.Refusal:
			// Refused rule actions (auto mode, or proposals refused before they were made),
			// counted once per notice.
			var rec audit.RefusalRecord
			if json.Unmarshal(r.Data, &rec) != nil || rec.Count <= 0 {
				continue
			}
			d.Actions.Refused += rec.Count
			refusedBy[string(rec.Reason)] += rec.Count
		case audit.Schedule:
			var rep Report
			if json.Unmarshal(r.Data, &rep) != nil || rep.Type != JobSweepType {
				continue
			}
			s := sweeps[rep.Job]
			if s == nil {
				s = &SweepCount{Job: rep.Job}
				sweeps[rep.Job] = s
			}
			s.Runs++
			s.Acted += rep.Acted
			s.Proposed += rep.Proposed
			s.Refused += rep.RefusedTotal()
			s.Remaining = rep.Remaining
			// A sweep's auto-mode refusals are in its reports only (approve-mode ones happen
			// after the approval and are in the proposal's transitions).
			if rep.Mode == finding.ModeAuto {
				for reason, n := range rep.Refused {
					refusedBy[reason] += n
					d.Actions.Refused += n
				}
			}
		}
	}

	for k, byNS := range kinds {
		kc := KindCount{Kind: k}
		for ns, n := range byNS {
			kc.Count += n
			kc.Namespaces = append(kc.Namespaces, NameCount{ns, n})
		}
		kc.Namespaces = topOf(kc.Namespaces, top)
		d.ByKind = append(d.ByKind, kc)
	}
	sort.Slice(d.ByKind, func(i, j int) bool {
		if d.ByKind[i].Count != d.ByKind[j].Count {
			return d.ByKind[i].Count > d.ByKind[j].Count
		}
		return kindOrder(d.ByKind[i].Kind) < kindOrder(d.ByKind[j].Kind)
	})
	for ns, n := range namespaces {
		d.ByNamespace = append(d.ByNamespace, NameCount{ns, n})
	}
	d.ByNamespace = topOf(d.ByNamespace, top)
	for k, byKind := range tasks {
		tc := TaskCount{DagID: k.dag, TaskID: k.task, Runs: len(taskRuns[k])}
		for kind, n := range byKind {
			tc.Count += n
			tc.Kinds = append(tc.Kinds, NameCount{kind, n})
		}
		tc.Kinds = topOf(tc.Kinds, len(tc.Kinds))
		d.TopTasks = append(d.TopTasks, tc)
	}
	sort.Slice(d.TopTasks, func(i, j int) bool {
		a, b := d.TopTasks[i], d.TopTasks[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.DagID+"."+a.TaskID < b.DagID+"."+b.TaskID
	})
	if len(d.TopTasks) > top {
		d.TopTasks = d.TopTasks[:top]
	}

	byType := map[finding.ActionType]*TypeCount{}
	tc := func(t finding.ActionType) *TypeCount {
		if byType[t] == nil {
			byType[t] = &TypeCount{Type: t}
		}
		return byType[t]
	}
	for _, id := range order {
		p := latest[id]
		switch p.State {
		case finding.StateExecuted:
			d.Actions.Taken++
			tc(p.Action.Type).Taken++
			if p.DecidedBy == actions.AutoDecider {
				tc(p.Action.Type).Auto++
			}
		case finding.StateFailed:
			if p.Outcome != nil && p.Outcome.Result == finding.ResultRefused {
				d.Actions.Refused++
				refusedBy[reasonOf(p.Outcome)]++
				continue
			}
			d.Actions.Failed++
			tc(p.Action.Type).Failed++
		case finding.StateDenied:
			d.Actions.Denied++
		case finding.StateExpired:
			d.Expired = append(d.Expired, line(p))
		}
	}
	for _, t := range finding.ActionTypes() {
		if c := byType[t]; c != nil {
			d.Actions.ByType = append(d.Actions.ByType, *c)
		}
	}
	for reason, n := range refusedBy {
		d.Actions.RefusedBy = append(d.Actions.RefusedBy, NameCount{reason, n})
	}
	d.Actions.RefusedBy = topOf(d.Actions.RefusedBy, len(d.Actions.RefusedBy))

	if proposals != nil {
		for _, p := range proposals {
			if p.State == finding.StatePending && until.Before(p.ExpiresAt) {
				d.Pending = append(d.Pending, line(p))
			}
		}
	} else {
		// Without the store: the proposals whose last transition in the window is pending.
		for _, id := range order {
			if p := latest[id]; p.State == finding.StatePending && until.Before(p.ExpiresAt) {
				d.Pending = append(d.Pending, line(p))
			}
		}
	}
	sort.Slice(d.Pending, func(i, j int) bool { return d.Pending[i].CreatedAt.Before(d.Pending[j].CreatedAt) })
	for _, s := range sweeps {
		d.Sweeps = append(d.Sweeps, *s)
	}
	sort.Slice(d.Sweeps, func(i, j int) bool { return d.Sweeps[i].Job < d.Sweeps[j].Job })
	return d
}

func rankState(s finding.ProposalState) int {
	switch s {
	case finding.StatePending:
		return 0
	case finding.StateApproved:
		return 1
	}
	return 2
}

// reasonOf names the reason of a refused outcome; "other" for a record written before outcomes
// carried their reason.
func reasonOf(o *finding.Outcome) string {
	if o.Reason == "" {
		return "other"
	}
	return string(o.Reason)
}

func line(p finding.Proposal) ProposalLine {
	target := p.Target.String()
	if p.Target.Name == "" {
		target = p.Finding.Name()
	}
	return ProposalLine{ID: p.ID, Rule: p.Finding.Rule, Action: p.Action.Type, Target: target,
		CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt}
}

// topOf sorts counts by count (then name) and keeps the first n.
func topOf(cs []NameCount, n int) []NameCount {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Count != cs[j].Count {
			return cs[i].Count > cs[j].Count
		}
		return cs[i].Name < cs[j].Name
	})
	if len(cs) > n {
		cs = cs[:n]
	}
	return cs
}

func kindOrder(k finding.Kind) int {
	for i, c := range finding.Kinds() {
		if c == k {
			return i
		}
	}
	return len(finding.Kinds())
}

// Title is the digest's one line: "Digest · prod-eu-1 · last 24h: 14 incidents, 9 actions,
// 2 pending approvals".
func (d *Digest) Title() string {
	cluster := d.Cluster
	if cluster == "" {
		cluster = "all clusters"
	}
	return fmt.Sprintf("Digest · %s · last %s: %d incident%s, %d action%s taken, %d pending approval%s", cluster,
		human(d.Until.Sub(d.Since)), d.Incidents, plural(d.Incidents), d.Actions.Taken, plural(d.Actions.Taken),
		len(d.Pending), plural(len(d.Pending)))
}

// Text renders the digest as aligned plain text (the console, `podmedic digest`, and Slack in
// a code block).
func (d *Digest) Text() string {
	var b strings.Builder
	cluster := d.Cluster
	if cluster == "" {
		cluster = "all clusters"
	}
	fmt.Fprintf(&b, "%s, %s to %s\n", cluster, d.Since.UTC().Format("2006-01-02 15:04"), d.Until.UTC().Format("2006-01-02 15:04 UTC"))

	fmt.Fprintf(&b, "\nIncidents: %d\n", d.Incidents)
	if len(d.ByKind) > 0 {
		fmt.Fprintf(&b, "  %-18s %5s  %s\n", "kind", "count", "namespaces")
		for _, k := range d.ByKind {
			fmt.Fprintf(&b, "  %-18s %5d  %s\n", k.Kind, k.Count, counts(k.Namespaces))
		}
		fmt.Fprintf(&b, "  by namespace: %s\n", counts(d.ByNamespace))
	}

	if len(d.TopTasks) > 0 {
		fmt.Fprintf(&b, "\nAirflow tasks that failed most\n")
		width := 0
		for _, t := range d.TopTasks {
			width = max(width, len(t.DagID)+1+len(t.TaskID))
		}
		for _, t := range d.TopTasks {
			fmt.Fprintf(&b, "  %-*s %4d  (%s; %d run%s)\n", width, t.DagID+"."+t.TaskID, t.Count, counts(t.Kinds), t.Runs, plural(t.Runs))
		}
	}

	a := d.Actions
	fmt.Fprintf(&b, "\nActions: %d taken, %d failed, %d refused, %d denied\n", a.Taken, a.Failed, a.Refused, a.Denied)
	for _, t := range a.ByType {
		s := fmt.Sprintf("%d taken", t.Taken)
		if t.Auto > 0 {
			s += fmt.Sprintf(" (%d in auto mode)", t.Auto)
		}
		if t.Failed > 0 {
			s += fmt.Sprintf(", %d failed", t.Failed)
		}
		fmt.Fprintf(&b, "  %-22s %s\n", t.Type, s)
	}
	if len(a.RefusedBy) > 0 {
		fmt.Fprintf(&b, "  refused by reason: %s\n", counts(a.RefusedBy))
	}

	fmt.Fprintf(&b, "\nPending approvals: %d\n", len(d.Pending))
	proposals(&b, d.Pending, d.top, "since", func(p ProposalLine) time.Time { return p.CreatedAt })
	fmt.Fprintf(&b, "Expired without a decision: %d\n", len(d.Expired))
	proposals(&b, d.Expired, d.top, "expired", func(p ProposalLine) time.Time { return p.ExpiresAt })

	if d.Overrides != nil {
		expiring := 0
		for _, o := range d.Overrides {
			if o.Expiring {
				expiring++
			}
		}
		fmt.Fprintf(&b, "\nMemory overrides in force: %d (%d expire within 3 days)\n", len(d.Overrides), expiring)
		for i, o := range d.Overrides {
			if d.top > 0 && i == d.top {
				fmt.Fprintf(&b, "  … and %d more (podmedic overrides list)\n", len(d.Overrides)-i)
				break
			}
			req := ""
			if o.Request != "" {
				req = ", request " + o.Request
			}
			fmt.Fprintf(&b, "  %s/%s.%s %s: limit %s%s until %s (%s)\n", o.Namespace, o.DagID, o.TaskID, o.Container, o.Limit, req,
				o.ExpiresAt.UTC().Format("2006-01-02"), o.ID)
		}
	}

	if len(d.Sweeps) > 0 {
		fmt.Fprintf(&b, "\nSweeps\n")
		for _, s := range d.Sweeps {
			fmt.Fprintf(&b, "  %-22s %d run%s, %d acted, %d proposed, %d refused, %d remain\n", s.Job, s.Runs, plural(s.Runs),
				s.Acted, s.Proposed, s.Refused, s.Remaining)
		}
	}
	return b.String()
}

func proposals(b *strings.Builder, ps []ProposalLine, top int, label string, when func(ProposalLine) time.Time) {
	for i, p := range ps {
		if i == top {
			fmt.Fprintf(b, "  ... and %d more\n", len(ps)-top)
			break
		}
		fmt.Fprintf(b, "  %s  %-20s %s (rule %s), %s %s\n", p.ID, p.Action, p.Target, p.Rule, label, when(p).UTC().Format("01-02 15:04Z"))
	}
}

// counts is "airflow 5, spark-jobs 2".
func counts(cs []NameCount) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		name := c.Name
		if name == "" {
			name = "(none)"
		}
		parts[i] = fmt.Sprintf("%s %d", name, c.Count)
	}
	return strings.Join(parts, ", ")
}

// Digester builds digests from the audit stream.
type Digester struct {
	Source    audit.Source
	Proposals ProposalLister // may be nil: pending approvals are then read from the stream
	Overrides OverrideLister // may be nil: no memory overrides section
}

// OverrideLister lists the memory overrides (overrides.Store).
type OverrideLister interface {
	List(ctx context.Context) ([]overrides.Override, error)
}

// Build reads the window [until-window, until) of cluster's audit records and summarises it.
func (g *Digester) Build(ctx context.Context, cluster string, until time.Time, window time.Duration, top int) (*Digest, error) {
	since := until.Add(-window)
	recs, err := g.Source.Records(ctx, cluster, since)
	if err != nil {
		return nil, fmt.Errorf("read the audit stream: %w", err)
	}
	var ps []finding.Proposal
	if g.Proposals != nil {
		if ps, err = g.Proposals.Proposals(ctx); err != nil {
			return nil, fmt.Errorf("list proposals: %w", err)
		}
		if ps == nil {
			ps = []finding.Proposal{}
		}
	}
	d := BuildDigest(cluster, since, until, recs, ps, top)
	if g.Overrides != nil {
		os, err := g.Overrides.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list memory overrides: %w", err)
		}
		var mine []overrides.Override
		for _, o := range os {
			if cluster == "" || o.Task.Cluster == cluster {
				mine = append(mine, o)
			}
		}
		d.Overrides = overrideLines(mine, until)
	}
	return d, nil
}
