package slack

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
)

// Action ids of the buttons (DESIGN.md): the value and block_id carry the proposal id.
const (
	ActionApprove = "podmedic.approve"
	ActionDeny    = "podmedic.deny"
	// ActionRevoke ends the memory override an approval stored (its value is the override's id).
	ActionRevoke = "podmedic.revoke"
)

// Slack's limits on block text, kept with a margin.
const (
	maxHeader   = 150
	maxSection  = 2900
	maxField    = 1900
	maxEvidence = 700 // one evidence line
	maxLine     = 250 // one member line: ten of them fit a section
)

// rendered is a message's content: its blocks and the notification text (the fallback
// shown in notifications and where blocks cannot be).
type rendered struct {
	Blocks []slack.Block
	Text   string
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// esc escapes text for mrkdwn.
func esc(s string) string { return escaper.Replace(s) }

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// code renders s as inline code.
func code(s string) string { return "`" + esc(strings.ReplaceAll(s, "`", "'")) + "`" }

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// clock renders a time for mrkdwn: Slack shows it in the reader's time zone; the fallback is
// UTC.
func clock(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{time}|%s>", t.Unix(), t.UTC().Format("15:04 UTC"))
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// who renders who decided: a Slack mention, an inbox user, or podmedic itself.
func who(s string) string {
	switch {
	case slackUserID.MatchString(s):
		return "<@" + s + ">"
	case strings.HasPrefix(s, "inbox:"):
		return esc(strings.TrimPrefix(s, "inbox:")) + " (local inbox)"
	case s == "system" || s == "":
		return "podmedic"
	}
	return esc(s)
}

func severityEmoji(s finding.Severity) string {
	switch s {
	case finding.SeverityCritical:
		return ":red_circle:"
	case finding.SeverityInfo:
		return ":large_blue_circle:"
	}
	return ":large_orange_circle:"
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// header is the message's header block: severity, kind and what it is about.
func header(f *finding.Finding, about string) slack.Block {
	sev := f.Severity
	if sev == "" {
		sev = finding.SeverityWarning
	}
	return slack.NewHeaderBlock(plain(truncate(fmt.Sprintf("%s %s · %s · %s", severityEmoji(sev), titleCase(string(sev)), f.Kind, about), maxHeader)))
}

// podRef is the finding's object as inline code: `ns/pod` or `ns/pvc`.
func podRef(f *finding.Finding) string {
	switch {
	case f.Pod != "":
		return code(f.Namespace + "/" + f.Pod)
	case f.PVC == "" && f.Spark != nil && f.Spark.Application != "":
		return code(f.Namespace + "/" + f.Spark.Application)
	}
	return code(f.Namespace + "/" + f.PVC)
}

// Summarizer says in a sentence what a finding is about, from the mentions r; false when it
// does not know the kind. rules.Registry implements it: each kind's plugin carries its summary.
type Summarizer interface {
	Summary(f *finding.Finding, r finding.SummaryRefs) (string, bool)
}

// summary says in a sentence what happened.
func summary(sum Summarizer, f *finding.Finding) string {
	pod := "pod " + podRef(f)
	ctr := pod
	if f.Container != "" {
		ctr = "container " + code(f.Container) + " of pod " + podRef(f)
	}
	var s string
	if sum != nil {
		s, _ = sum.Summary(f, finding.SummaryRefs{Pod: pod, Container: ctr, Object: podRef(f)})
	}
	if s == "" {
		s = esc(string(f.Kind)) + " on " + podRef(f) + "."
	}
	if a := f.Airflow; a != nil && a.DagID != "" {
		s += " Airflow task " + code(a.DagID+"."+a.TaskID) + "."
	}
	if sp := f.Spark; sp != nil && sp.AppName != "" {
		role := sp.Role
		if role == "" {
			role = "pod"
		}
		s += " Spark " + esc(role) + " of " + code(sp.AppName) + "."
	}
	return s
}

// fields are the finding's particulars, two columns.
func fields(f *finding.Finding) []*slack.TextBlockObject {
	var out []*slack.TextBlockObject
	add := func(label, value string) {
		out = append(out, mrkdwn(truncate("*"+label+"*\n"+value, maxField)))
	}
	add("Namespace", code(f.Namespace))
	if f.Pod != "" {
		add("Pod", code(f.Pod))
	}
	if f.PVC != "" {
		add("PVC", code(f.PVC))
	}
	if f.Container != "" {
		add("Container", code(f.Container))
	}
	if f.Owner.Kind != "" {
		add("Owner", code(f.Owner.Kind+"/"+f.Owner.Name))
	}
	if a := f.Airflow; a != nil {
		v := fmt.Sprintf("DAG %s, task %s, try %d", code(a.DagID), code(a.TaskID), a.TryNumber)
		if a.MapIndex != nil {
			v += fmt.Sprintf(", map index %d", *a.MapIndex)
		}
		add("Airflow", v)
		if a.RunID != "" {
			add("DAG run", code(a.RunID))
		} else if a.ExecutionDate != "" {
			add("Execution date", code(a.ExecutionDate)+" (a worker from before run ids)")
		}
	}
	if s := f.Spark; s != nil && s.Schedule {
		add("Spark", fmt.Sprintf("ScheduledSparkApplication %s, %s", code(s.Application), esc(s.State)))
	} else if s != nil && s.Application != "" {
		v := fmt.Sprintf("application %s, %s after %d attempt(s)", code(s.Application), esc(s.State), s.Attempts)
		if s.AppID != "" {
			v += "\n" + code(s.AppID)
		}
		add("Spark", v)
	} else if s != nil {
		v := "app " + code(s.AppName)
		if s.Role != "" {
			v += ", " + esc(s.Role)
		}
		if s.AppID != "" {
			v += "\n" + code(s.AppID)
		}
		add("Spark", v)
	}
	add("Rule", code(f.Rule))
	if len(out) > 10 {
		out = out[:10]
	}
	return out
}

// evidenceText lists the evidence, each line and the whole within Slack's limits.
func evidenceText(ev []string) string {
	if len(ev) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*Evidence*")
	for i, e := range ev {
		line := "\n• " + esc(truncate(e, maxEvidence))
		if b.Len()+len(line) > maxSection-40 {
			fmt.Fprintf(&b, "\n• _…and %d more_", len(ev)-i)
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// oldMemory finds the current memory limit and request in the evidence ("memory limit 2Gi",
// "memory request 1Gi", "no memory limit").
func oldMemory(ev []string) (limit, request string) {
	for _, e := range ev {
		switch {
		case e == "no memory limit":
			limit = "none"
		case e == "no memory request":
			request = "none"
		case strings.HasPrefix(e, "memory limit ") && !strings.Contains(strings.TrimPrefix(e, "memory limit "), " "):
			limit = strings.TrimPrefix(e, "memory limit ")
		case strings.HasPrefix(e, "memory request ") && !strings.Contains(strings.TrimPrefix(e, "memory request "), " "):
			request = strings.TrimPrefix(e, "memory request ")
		}
	}
	return limit, request
}

// change renders "old -> new", "new (unchanged)" or "-> new" when the old value is unknown.
func change(old, new string) string {
	switch {
	case old == "":
		return "-> " + new
	case old == new:
		return new + " (unchanged)"
	}
	return old + " -> " + new
}

func gracePeriod(p map[string]string) string {
	if p["force"] == "true" {
		return " at once (force: grace period 0)"
	}
	if gp := p["grace_period"]; gp != "" {
		return " with a grace period of " + esc(gp) + "s"
	}
	return ""
}

// ActionWords says what an action does, with its exact parameters, e.g. "raise the memory
// of container `base`: limit 2Gi -> 3Gi, request 1Gi -> 2Gi".
func ActionWords(f *finding.Finding, a *finding.Action) string {
	p := a.Params
	switch a.Type {
	case finding.ActionDeletePod:
		return "delete pod " + podRef(f) + gracePeriod(p)
	case finding.ActionEvictPod:
		return "evict pod " + podRef(f) + " through the Eviction API (PodDisruptionBudgets apply)" + gracePeriod(p)
	case finding.ActionProposeMemoryLimit:
		ctr := p["container"]
		if ctr == "" {
			ctr = f.Container
		}
		oldLimit, oldRequest := oldMemory(f.Evidence)
		var parts []string
		if l := p["limit"]; l != "" {
			parts = append(parts, "limit "+change(oldLimit, l))
		}
		if r := p["request"]; r != "" {
			parts = append(parts, "request "+change(oldRequest, r))
		}
		s := "raise the memory of container " + code(ctr)
		if f.Owner.Kind != "" {
			s += " of " + code(f.Owner.Kind+"/"+f.Owner.Name)
		}
		return s + ": " + esc(strings.Join(parts, ", "))
	case finding.ActionAirflowClearTask:
		s := "clear Airflow task " + code(p["task_id"])
		mapped := f.Airflow != nil && f.Airflow.MapIndex != nil
		switch {
		case p["map_index"] != "":
			s += " map_index " + code(p["map_index"])
		case mapped:
			// Airflow 2's API names no map index: every failed one of the task is cleared.
			s += fmt.Sprintf(" (a mapped task: every failed map index, %d included)", *f.Airflow.MapIndex)
		}
		s += " of DAG " + code(p["dag_id"])
		switch {
		case p["dag_run_id"] != "":
			s += " in run " + code(p["dag_run_id"])
		case p["execution_date"] != "":
			s += " in the run at execution date " + code(p["execution_date"]) + " (its run id is looked up in Airflow)"
		}
		s += " so that Airflow runs it again"
		if p["only_failed"] == "true" {
			s += " (only if it failed)"
		}
		return s
	case finding.ActionNotify:
		return "notify only"
	}
	return code(string(a.Type)) + " " + esc(notifier.FormatParams(p))
}

// destructive actions ask for confirmation before approval.
func destructive(t finding.ActionType) bool {
	return t == finding.ActionDeletePod || t == finding.ActionEvictPod || t == finding.ActionAirflowClearTask
}

func outcomeEmoji(result string) string {
	switch result {
	case finding.ResultExecuted:
		return ":white_check_mark:"
	case finding.ResultFailed:
		return ":x:"
	case finding.ResultRefused:
		return ":no_entry:"
	case finding.ResultDryRun:
		return ":test_tube:"
	}
	return ":information_source:"
}

// outcomeText is "executed: pod deleted".
func outcomeText(o *finding.Outcome) string {
	if o.Message == "" {
		return esc(o.Result)
	}
	return esc(o.Result + ": " + o.Message)
}

// decisionText is the line that replaces the buttons: "Approved by <@U123> at 03:12 -> pod
// deleted", "Denied by …", "Expired at … without a decision", ….
func decisionText(p *finding.Proposal, state finding.ProposalState) string {
	at := p.DecidedAt
	if at.IsZero() && p.Outcome != nil {
		at = p.Outcome.At
	}
	by := func(verb string) string {
		s := "*" + verb + "* by " + who(p.DecidedBy)
		if !at.IsZero() {
			s += " at " + clock(at)
		}
		return s
	}
	msg := ""
	if p.Outcome != nil && p.Outcome.Message != "" {
		msg = esc(p.Outcome.Message)
	}
	switch state {
	case finding.StateApproved:
		return ":hourglass_flowing_sand: " + by("Approved") + " -&gt; executing…"
	case finding.StateExecuted:
		if msg == "" {
			msg = "done"
		}
		if p.Outcome != nil && p.Outcome.Result == finding.ResultDryRun {
			msg = "dry run, nothing changed: " + msg
		}
		return ":white_check_mark: " + by("Approved") + " -&gt; " + msg
	case finding.StateFailed:
		if msg == "" {
			msg = "the action failed"
		}
		if p.DecidedBy == "" {
			return ":x: *Failed*: " + msg
		}
		return ":x: " + by("Approved") + " -&gt; failed: " + msg
	case finding.StateDenied:
		s := ":no_entry_sign: " + by("Denied")
		if msg != "" {
			s += ": " + msg
		}
		return s
	case finding.StateExpired:
		when := p.ExpiresAt
		if !p.DecidedAt.IsZero() {
			when = p.DecidedAt
		}
		s := ":hourglass: *Expired* without a decision"
		if !when.IsZero() {
			s = ":hourglass: *Expired* at " + clock(when) + " without a decision"
		}
		if msg != "" {
			s += ": " + msg
		}
		return s
	}
	return ""
}

// findingBody is the part of a finding message between header and context: what happened,
// particulars, evidence, action and outcome.
func findingBody(sum Summarizer, f *finding.Finding, a *finding.Action, outcome *finding.Outcome, p *finding.Proposal, state finding.ProposalState) []slack.Block {
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(summary(sum, f)), nil, nil),
		slack.NewSectionBlock(nil, fields(f), nil),
	}
	if ev := evidenceText(f.Evidence); ev != "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(ev), nil, nil))
	}
	if a != nil && a.Type != "" && a.Type != finding.ActionNotify {
		words := ActionWords(f, a)
		var s string
		switch {
		case p != nil && state == finding.StatePending:
			s = ":point_right: *Proposed action* (needs approval): " + words
		case p != nil:
			s = "*Proposed action*: " + words
		case a.Mode == finding.ModeAuto:
			s = "*Action taken automatically*: " + words
		case a.Mode == finding.ModeNotify:
			s = "*Suggested action* (notify mode, not executed): " + words
		default:
			s = "*Action*: " + words
		}
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncate(s, maxSection)), nil, nil))
	}
	if outcome != nil && (p == nil || state == finding.StatePending) {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(truncate(outcomeEmoji(outcome.Result)+" *Outcome*: "+outcomeText(outcome), maxSection)), nil, nil))
	}
	return blocks
}

// proposalControls are the buttons of a pending proposal, or the decision line that replaces
// them.
func proposalControls(f *finding.Finding, p *finding.Proposal, state finding.ProposalState) slack.Block {
	if state != finding.StatePending {
		return slack.NewSectionBlock(mrkdwn(truncate(decisionText(p, state), maxSection)), nil, nil)
	}
	approve := slack.NewButtonBlockElement(ActionApprove, p.ID, plain("Approve")).WithStyle(slack.StylePrimary)
	if destructive(p.Action.Type) {
		what := map[finding.ActionType]string{
			finding.ActionDeletePod:        "Delete the pod?",
			finding.ActionEvictPod:         "Evict the pod?",
			finding.ActionAirflowClearTask: "Clear the Airflow task?",
		}[p.Action.Type]
		approve = approve.WithConfirm(slack.NewConfirmationBlockObject(
			plain(what),
			mrkdwn(truncate("podmedic will "+ActionWords(f, &p.Action)+".", maxSection)),
			plain("Approve"), plain("Cancel")).WithStyle(slack.StyleDanger))
	}
	deny := slack.NewButtonBlockElement(ActionDeny, p.ID, plain("Deny")).WithStyle(slack.StyleDanger)
	return slack.NewActionBlock(p.ID, approve, deny)
}

// textSummary is the notification text of a finding.
func textSummary(f *finding.Finding) string {
	return esc(fmt.Sprintf("%s %s %s (rule %s)", titleCase(string(f.Severity)), f.Kind, f.Name(), f.Rule))
}

// renderProposal renders the message of a proposal, showing it in state (its own state, or
// expired once its time is up).
func renderProposal(sum Summarizer, p *finding.Proposal, outcome *finding.Outcome, state finding.ProposalState) rendered {
	f := &p.Finding
	a := &p.Action
	blocks := []slack.Block{header(f, f.Name())}
	blocks = append(blocks, findingBody(sum, f, a, outcome, p, state)...)
	blocks = append(blocks, proposalControls(f, p, state))
	ctx := "rule " + code(f.Rule) + " · proposal " + code(p.ID)
	if state == finding.StatePending && !p.ExpiresAt.IsZero() {
		ctx += " · expires " + clock(p.ExpiresAt)
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(ctx)))
	text := textSummary(f)
	if state == finding.StatePending {
		text += ": approval needed to " + stripMrkdwn(ActionWords(f, a))
	} else {
		text += ": " + stripMrkdwn(decisionText(p, state))
	}
	return rendered{Blocks: blocks, Text: text}
}

// stripMrkdwn makes mrkdwn readable as notification text: dates become their fallback, bold
// and code marks go; entities and mentions stay (the text field is mrkdwn-escaped too).
var slackDate = regexp.MustCompile(`<!date\^\d+\^[^|]*\|([^>]*)>`)

func stripMrkdwn(s string) string {
	s = slackDate.ReplaceAllString(s, "$1")
	return strings.NewReplacer("*", "", "`", "").Replace(s)
}

// member is one failure folded into a group.
type member struct {
	f       *finding.Finding
	action  *finding.Action
	outcome *finding.Outcome
	at      time.Time
}

// memberLine is one line of a group's list: the object, Airflow try, outcome.
func memberLine(m member) string {
	s := "• " + code(m.f.Name())
	if a := m.f.Airflow; a != nil {
		if a.RunID != "" {
			s += " run " + code(a.RunID)
		} else if a.ExecutionDate != "" {
			s += " execution date " + code(a.ExecutionDate)
		}
		s += " try " + strconv.Itoa(a.TryNumber)
	}
	if m.outcome != nil {
		s += " -&gt; " + outcomeText(m.outcome)
	}
	return truncate(s, maxLine)
}

// GroupKey is the storm group of a finding: its rule and namespace plus the Airflow DAG and
// task, else the owner, else the Spark application, else nothing more (bare pods of a rule in
// a namespace fold together).
func GroupKey(f *finding.Finding) string {
	k := f.Rule + "|" + f.Namespace + "|"
	switch {
	case f.Airflow != nil && f.Airflow.DagID != "":
		return k + "airflow|" + f.Airflow.DagID + "|" + f.Airflow.TaskID
	case f.Owner.Kind != "":
		return k + "owner|" + f.Owner.Kind + "|" + f.Owner.Name
	case f.Spark != nil && (f.Spark.AppID != "" || f.Spark.AppName != ""):
		return k + "spark|" + f.Spark.AppID + "|" + f.Spark.AppName
	}
	return k + "kind|" + string(f.Kind)
}

// groupLabel names a group for humans.
func groupLabel(f *finding.Finding) (plainLabel, md string) {
	switch {
	case f.Airflow != nil && f.Airflow.DagID != "":
		return "DAG " + f.Airflow.DagID + ", task " + f.Airflow.TaskID,
			"DAG " + code(f.Airflow.DagID) + ", task " + code(f.Airflow.TaskID)
	case f.Owner.Kind != "":
		return f.Owner.Kind + " " + f.Namespace + "/" + f.Owner.Name, code(f.Owner.Kind+"/"+f.Owner.Name) + " in " + code(f.Namespace)
	case f.Spark != nil && f.Spark.AppName != "":
		return "Spark app " + f.Spark.AppName, "Spark app " + code(f.Spark.AppName)
	}
	return "namespace " + f.Namespace, "namespace " + code(f.Namespace)
}

// renderGroup renders a group's message: the first failure in full, then the others (the
// first inline of them in the message, the rest counted and listed in the thread).
func renderGroup(sum Summarizer, ms []member, inline int) rendered {
	first := ms[0]
	f := first.f
	if len(ms) == 1 {
		blocks := []slack.Block{header(f, f.Name())}
		blocks = append(blocks, findingBody(sum, f, first.action, first.outcome, nil, "")...)
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn("rule "+code(f.Rule)+" · seen "+clock(first.at))))
		text := textSummary(f)
		if first.outcome != nil {
			text += ": " + stripMrkdwn(outcomeText(first.outcome))
		}
		return rendered{Blocks: blocks, Text: text}
	}
	label, md := groupLabel(f)
	n := len(ms)
	last := ms[n-1].at
	blocks := []slack.Block{
		header(f, fmt.Sprintf("%d× · %s", n, label)),
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*%d failures* of rule %s in %s between %s and %s. The first is shown in full; the others follow.",
			n, code(f.Rule), md, clock(first.at), clock(last))), nil, nil),
		slack.NewDividerBlock(),
	}
	blocks = append(blocks, findingBody(sum, f, first.action, first.outcome, nil, "")...)
	blocks = append(blocks, slack.NewDividerBlock())
	others := ms[1:]
	// Exactly the first inline others are listed here (ten lines of at most maxLine fit a
	// section); the sender lists the rest in thread replies.
	shown := min(len(others), inline)
	var b strings.Builder
	fmt.Fprintf(&b, "*Also affected* (%d)", len(others))
	for _, m := range others[:shown] {
		b.WriteString("\n" + memberLine(m))
	}
	if rest := len(others) - shown; rest > 0 {
		fmt.Fprintf(&b, "\n_…and %d more, listed in the thread._", rest)
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(b.String()), nil, nil))
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("rule %s · %d failures · first %s · latest %s", code(f.Rule), n, clock(first.at), clock(last)))))
	text := esc(fmt.Sprintf("%s %s ×%d in %s (rule %s)", titleCase(string(f.Severity)), f.Kind, n, label, f.Rule))
	return rendered{Blocks: blocks, Text: text}
}

// renderMembers renders a thread reply listing members from..from+len(ms)-1 (1-based among
// the others) of total.
func renderMembers(ms []member, from, total int) rendered {
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*Also affected*, %d–%d of %d:", from, from+len(ms)-1, total)), nil, nil)}
	var b strings.Builder
	names := make([]string, 0, len(ms))
	for _, m := range ms {
		names = append(names, m.f.Name())
		line := memberLine(m)
		if b.Len() > 0 && b.Len()+1+len(line) > maxSection {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn(b.String()), nil, nil))
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
	}
	if b.Len() > 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(b.String()), nil, nil))
	}
	text := esc(fmt.Sprintf("Also affected, %d–%d of %d: %s", from, from+len(ms)-1, total, strings.Join(names, ", ")))
	return rendered{Blocks: blocks, Text: truncate(text, 39000)}
}

// renderDecisionReply is the thread reply that records a proposal's outcome.
func renderDecisionReply(p *finding.Proposal) rendered {
	line := decisionText(p, p.State)
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(truncate(line, maxSection)), nil, nil)}
	var ctx []string
	ctx = append(ctx, "proposal "+code(p.ID), "action "+code(string(p.Action.Type)))
	if p.Outcome != nil {
		ctx = append(ctx, "result "+code(p.Outcome.Result))
		if !p.Outcome.At.IsZero() {
			ctx = append(ctx, "at "+clock(p.Outcome.At))
		}
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(strings.Join(ctx, " · "))))
	if o := p.Outcome; o != nil && o.Override != "" && o.Result == finding.ResultExecuted {
		// The override applies to the task's next tries for its TTL: one click ends it.
		revoke := slack.NewButtonBlockElement(ActionRevoke, o.Override, plain("Revoke override")).WithStyle(slack.StyleDanger)
		revoke = revoke.WithConfirm(slack.NewConfirmationBlockObject(plain("Revoke the override?"),
			mrkdwn("New pods of this task will get the memory the DAG asks for again ("+code(o.Override)+")."),
			plain("Revoke"), plain("Cancel")).WithStyle(slack.StyleDanger))
		blocks = append(blocks, slack.NewActionBlock("revoke-"+o.Override, revoke))
	}
	return rendered{Blocks: blocks, Text: stripMrkdwn(line)}
}

// renderFollowUp renders a follow-up of a proposal's remedy: one line in its thread.
func renderFollowUp(text string) rendered {
	line := truncate(text, maxSection)
	return rendered{Blocks: []slack.Block{slack.NewSectionBlock(mrkdwn(esc(line)), nil, nil)}, Text: line}
}

// renderRefusal renders a guard's refusal.
func renderRefusal(n *finding.Notice) rendered {
	count := max(n.Count, 1)
	msg := "refused"
	if n.Outcome != nil && n.Outcome.Message != "" {
		msg = n.Outcome.Message
	}
	title := fmt.Sprintf(":no_entry: Refused · %d action", count)
	if count > 1 {
		title += "s"
	}
	var ctx []string
	if f := n.Finding; f != nil {
		title += " · " + string(f.Kind)
		ctx = append(ctx, "rule "+code(f.Rule), "e.g. "+code(f.Name()))
		if f.Action != nil {
			ctx = append(ctx, "action "+code(string(f.Action.Type)))
		}
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(plain(truncate(title, maxHeader))),
		slack.NewSectionBlock(mrkdwn(truncate("The guard refused to act: "+esc(msg)+".", maxSection)), nil, nil),
	}
	if len(ctx) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(strings.Join(ctx, " · "))))
	}
	return rendered{Blocks: blocks, Text: esc(fmt.Sprintf("Refused %d action(s): %s", count, msg))}
}

// Limits of a report: the text goes in at most maxReportSections code blocks.
const maxReportSections = 12

// renderReport renders a scheduled job's report (a sweep's run, the digest): a header with the
// title and the text in code blocks, split at line ends, so that its columns line up.
func renderReport(n *finding.Notice) rendered {
	blocks := []slack.Block{slack.NewHeaderBlock(plain(truncate(":clipboard: "+n.Title, maxHeader)))}
	lines := strings.Split(strings.TrimRight(n.Text, "\n"), "\n")
	var chunk []string
	size, sections := 0, 0
	flush := func() {
		if len(chunk) > 0 {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn("```"+esc(strings.Join(chunk, "\n"))+"```"), nil, nil))
			sections++
		}
		chunk, size = nil, 0
	}
	for i, line := range lines {
		line = truncate(line, maxLine*2)
		// esc may lengthen a line (& < >): count what is sent.
		if len(chunk) > 0 && size+len(esc(line))+1 > maxSection-8 {
			flush()
		}
		if sections == maxReportSections-1 && len(chunk) == 0 && i < len(lines) {
			rest := len(lines) - i
			chunk = []string{fmt.Sprintf("… %d more line(s) not shown", rest)}
			flush()
			break
		}
		chunk = append(chunk, line)
		size += len(esc(line)) + 1
	}
	flush()
	text := n.Title
	if n.Text != "" {
		text += "\n" + n.Text
	}
	return rendered{Blocks: blocks, Text: truncate(esc(text), 39000)}
}
