package schedule

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/podmedic/podmedic/finding"
)

// Report is what one run of a job did. Sweeps fill the counts; a digest run carries its
// Digest. Reports are published on the audit stream (podmedic.audit.<cluster>.schedule, one
// per job and tick) and summarised by the digest.
type Report struct {
	Job  string `json:"job"`
	Type string `json:"type"` // sweep or digest
	// Tick is the scheduled time the run is for; Started and Finished when it ran, and
	// Leader the replica (its lease identity) that ran it.
	Tick     time.Time `json:"tick"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Leader   string    `json:"leader,omitempty"`

	// A sweep's selection and action.
	Kind      finding.Kind       `json:"kind,omitempty"`
	OlderThan time.Duration      `json:"older_than,omitempty"`
	Action    finding.ActionType `json:"action,omitempty"`
	Mode      finding.Mode       `json:"mode,omitempty"`
	Budget    int                `json:"budget,omitempty"`
	DryRun    bool               `json:"dry_run,omitempty"`

	// Candidates are the pods with a finding of the kind whose failure is old enough;
	// Younger those whose failure is not (left alone).
	Candidates int `json:"candidates"`
	Younger    int `json:"younger"`
	// Acted: actions taken (auto mode; dry-run: would have been taken). Proposed: proposals
	// made (approve mode). Failed: actions tried that failed.
	Acted    int `json:"acted"`
	Proposed int `json:"proposed"`
	Failed   int `json:"failed"`
	// Refused counts the guard's refusals by reason (budget, cooldown, owner-policy, ...).
	Refused map[string]int `json:"refused,omitempty"`
	// Pending: a proposal about the pod is waiting for a decision already (made by a rule or
	// an earlier run). Handled: podmedic acted on the pod or decided about it before.
	Pending int `json:"pending"`
	Handled int `json:"handled"`
	// Remaining: candidates left for a later run (the run's budget, or a global budget, was
	// spent).
	Remaining int `json:"remaining"`
	// Targets names the pods acted on or proposed (at most maxTargets), oldest failure first.
	Targets []string `json:"targets,omitempty"`

	// Digest of a digest run.
	Digest *Digest `json:"digest,omitempty"`
	// Error ends a run early: what went wrong.
	Error string `json:"error,omitempty"`
}

// maxTargets bounds Report.Targets.
const maxTargets = 20

// RefusedTotal is the number of refusals, all reasons.
func (r *Report) RefusedTotal() int {
	n := 0
	for _, c := range r.Refused {
		n += c
	}
	return n
}

// worthTelling reports whether a sweep's run deserves a notice: it did or tried something,
// or left work behind. A run that found nothing, or only pods waiting for a decision, is
// logged and recorded, not notified (every ten minutes would be noise).
func (r *Report) worthTelling() bool {
	if r.Type == JobDigestType {
		return true
	}
	if r.Mode == finding.ModeNotify {
		return r.Candidates > 0
	}
	return r.Acted+r.Proposed+r.Failed+r.RefusedTotal()+r.Remaining > 0 || r.Error != ""
}

// Job types of a Report.
const (
	JobSweepType  = "sweep"
	JobDigestType = "digest"
)

// verb says what a sweep's action did to a pod, in the past tense.
func verb(t finding.ActionType, mode finding.Mode, dryRun bool) string {
	if mode == finding.ModeNotify || t == finding.ActionNotify {
		return "found"
	}
	if mode == finding.ModeApprove {
		return "proposed"
	}
	v := map[finding.ActionType]string{
		finding.ActionDeletePod:          "deleted",
		finding.ActionEvictPod:           "evicted",
		finding.ActionProposeMemoryLimit: "raised the memory limit of",
		finding.ActionAirflowClearTask:   "cleared the Airflow task of",
	}[t]
	if dryRun {
		return "would have " + v
	}
	return v
}

// Title is the report's one-line summary, e.g. "Sweep sweep-evicted: deleted 10 of 30 Evicted
// pods; 20 remain".
func (r *Report) Title() string {
	if r.Type == JobDigestType {
		if r.Digest != nil {
			return r.Digest.Title()
		}
		return "Digest " + r.Job
	}
	done := r.Acted + r.Proposed
	what := fmt.Sprintf("%s %d of %d %s pod%s", verb(r.Action, r.Mode, r.DryRun), done, r.Candidates, r.Kind, plural(r.Candidates))
	if r.Mode == finding.ModeNotify {
		what = fmt.Sprintf("found %d %s pod%s", r.Candidates, r.Kind, plural(r.Candidates))
	}
	title := fmt.Sprintf("Sweep %s: %s", r.Job, what)
	if r.Remaining > 0 {
		title += fmt.Sprintf("; %d remain", r.Remaining)
	}
	if r.Error != "" {
		title += " (stopped by an error)"
	}
	return title
}

// Text is the report in a few aligned lines.
func (r *Report) Text() string {
	if r.Type == JobDigestType {
		if r.Digest != nil {
			return r.Digest.Text()
		}
		return r.Error + "\n"
	}
	var b strings.Builder
	age := ""
	if r.OlderThan > 0 {
		age = ", failed more than " + human(r.OlderThan) + " ago"
	}
	mode := string(r.Mode)
	if r.DryRun {
		mode += ", dry-run"
	}
	layout := "2006-01-02 15:04 UTC"
	if r.Tick.Second() != 0 {
		layout = "2006-01-02 15:04:05 UTC"
	}
	fmt.Fprintf(&b, "%s, run of %s: %s pods%s; %s (%s), at most %d a run\n", r.Job, r.Tick.UTC().Format(layout),
		r.Kind, age, r.Action, mode, r.Budget)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	found := fmt.Sprintf("%d", r.Candidates)
	if r.Younger > 0 {
		found += fmt.Sprintf(" (and %d more not old enough, left alone)", r.Younger)
	}
	row("found", "%s", found)
	switch {
	case r.Mode == finding.ModeNotify:
		row("listed", "%s (mode notify: nothing done)", targets(r.Targets, r.Candidates))
	case r.Mode == finding.ModeApprove:
		row("proposed", "%d%s", r.Proposed, colon(targets(r.Targets, r.Proposed)))
	default:
		row(strings.Fields(verb(r.Action, r.Mode, r.DryRun))[0], "%d%s", r.Acted, colon(targets(r.Targets, r.Acted)))
	}
	if r.Failed > 0 {
		row("failed", "%d", r.Failed)
	}
	row("refused", "%d%s", r.RefusedTotal(), colon(reasons(r.Refused)))
	if r.Pending > 0 {
		row("waiting", "%d already proposed, waiting for a decision", r.Pending)
	}
	if r.Handled > 0 {
		row("handled", "%d handled before", r.Handled)
	}
	if r.Remaining > 0 {
		row("remaining", "%d remain for the next run", r.Remaining)
	} else {
		row("remaining", "0")
	}
	if r.Error != "" {
		row("error", "%s", r.Error)
	}
	return b.String()
}

func colon(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// targets lists the first targets and how many more there are.
func targets(ts []string, total int) string {
	if len(ts) == 0 {
		return ""
	}
	shown := ts
	if len(shown) > 10 {
		shown = shown[:10]
	}
	s := strings.Join(shown, ", ")
	if more := total - len(shown); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// reasons is "budget 3, cooldown 1", most frequent first.
func reasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// human writes a duration as 90s, 15m, 1h30m, 2d.
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour:
		return strings.TrimSuffix(strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s"), "0m")
	case d >= time.Minute:
		return strings.TrimSuffix(d.Truncate(time.Second).String(), "0s")
	}
	return d.String()
}
