package config

import (
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time zones of schedules load the same on every machine, distroless images included

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/podmedic/podmedic/finding"
)

// actionParams lists the params (yaml keys of ActionParams) each action type takes.
var actionParams = map[finding.ActionType][]string{
	finding.ActionDeletePod:          {"grace_period", "force"},
	finding.ActionEvictPod:           {"grace_period"},
	finding.ActionProposeMemoryLimit: {"bump_ratio", "min_bump", "max_limit", "max_limit_request_ratio"},
	finding.ActionAirflowClearTask:   {"only_failed"},
	finding.ActionNotify:             nil,
}

// Workloads lists the valid match.workload values.
func Workloads() []Workload { return []Workload{WorkloadAny, WorkloadAirflow, WorkloadSpark} }

// AirflowAPIVersions lists the valid airflow.api_version values.
func AirflowAPIVersions() []string { return []string{"v1", "v2"} }

var (
	ruleName    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	clusterName = regexp.MustCompile(`^[A-Za-z0-9]([-_A-Za-z0-9]*[A-Za-z0-9])?$`)
)

// validator checks a decoded, defaulted Config; it positions each problem through the source
// and stays quiet about fields that already failed to decode.
type validator struct {
	src *source
	reg Detectors
}

// validate reports every problem of c to src.
func validate(c *Config, src *source, reg Detectors) {
	v := &validator{src: src, reg: reg}
	v.config(c)
}

// errorf reports a problem with the value at path.
func (v *validator) errorf(path, format string, args ...any) {
	if v.src.hasFailed(path) {
		return
	}
	v.src.errorAt(v.src.node(path), path, format, args...)
}

// keyErrorf reports a problem with the key at path (a key that should not be there).
func (v *validator) keyErrorf(path, format string, args ...any) {
	if v.src.hasFailed(path) {
		return
	}
	v.src.errorAt(v.src.key(path), path, format, args...)
}

func (v *validator) config(c *Config) {
	switch {
	case !v.src.set("version"):
		v.errorf("version", "required; add version: 1 at the top of the file")
	case c.Version != 1:
		v.errorf("version", "unsupported version %d; this podmedic reads version 1", c.Version)
	}
	if !clusterName.MatchString(c.Cluster) || len(c.Cluster) > 63 {
		v.errorf("cluster", "invalid cluster name %q: use letters, digits, '-' and '_', starting and ending with a letter or digit (at most 63 characters)", c.Cluster)
	}
	v.scope("namespaces", c.Namespaces)
	v.budget("budgets.total", c.Budgets.Total)
	v.budget("budgets.per_namespace", c.Budgets.PerNamespace)
	if c.Proposals.TTL.Duration <= 0 {
		v.errorf("proposals.ttl", "must be greater than 0")
	}
	if d := c.Overrides.TTL.Duration; d < time.Hour || d > 366*24*time.Hour {
		v.errorf("overrides.ttl", "must be between 1h and 366d: how long the next tries of a task run with an approved memory raise")
	}
	if c.NATS.MaxMemory.Sign() <= 0 {
		v.errorf("nats.max_memory", "must be greater than 0")
	}
	if c.NATS.MaxStore.Sign() <= 0 {
		v.errorf("nats.max_store", "must be greater than 0")
	}
	routes := v.slack(c.Slack)
	v.airflow(c.Airflow)
	for i, ns := range c.Airflow.Namespaces {
		v.namespace(index("airflow.namespaces", i), ns)
	}
	for i, ns := range c.Spark.Namespaces {
		v.namespace(index("spark.namespaces", i), ns)
	}
	for i, p := range c.Evidence.Redact {
		path := index("evidence.redact", i)
		if p == "" {
			v.errorf(path, "must not be empty")
		} else if _, err := regexp.Compile(p); err != nil {
			v.errorf(path, "invalid pattern: %v", err)
		}
	}

	if len(c.Rules) == 0 {
		v.errorf("rules", "at least one rule is required")
	}
	names := map[string]string{} // name -> path of the rule that has it
	for i := range c.Rules {
		path := index("rules", i)
		v.rule(&c.Rules[i], path, c, routes)
		name := c.Rules[i].Name
		if first, dup := names[name]; dup && name != "" {
			v.errorf(join(path, "name"), "duplicate rule name %q (%s at line %d has it too)",
				name, first, v.src.node(join(first, "name")).Line)
		} else if !dup {
			names[name] = path
		}
	}
	v.schedules(c, routes, names)
}

func (v *validator) scope(path string, s NamespaceScope) {
	for i, ns := range s.Include {
		v.namespace(index(join(path, "include"), i), ns)
	}
	for i, ns := range s.Exclude {
		v.namespace(index(join(path, "exclude"), i), ns)
	}
}

func (v *validator) namespace(path, ns string) {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		v.errorf(path, "invalid namespace %q: %s", ns, strings.Join(errs, "; "))
	}
}

func (v *validator) budget(path string, b *Budget) {
	if b == nil {
		return
	}
	switch {
	case !v.src.set(join(path, "max")):
		v.errorf(join(path, "max"), "required: the most actions in a window, at least 1")
	case b.Max < 1:
		v.errorf(join(path, "max"), "must be at least 1")
	}
	switch {
	case !v.src.set(join(path, "window")):
		v.errorf(join(path, "window"), "required: the length of the sliding window, e.g. 1h")
	case b.Window.Duration <= 0:
		v.errorf(join(path, "window"), "must be greater than 0, e.g. 1h")
	}
}

// slack validates the slack section and returns the route names it defines.
func (v *validator) slack(s SlackConfig) []string {
	v.httpURL("slack.api_url", s.APIURL)
	if v.src.set("slack.default_channel") && s.DefaultChannel == "" {
		v.errorf("slack.default_channel", "must not be empty")
	}
	for i, u := range s.Approvers.Users {
		v.approver(index("slack.approvers.users", i), u, "user", "U0123ABCD")
	}
	for i, g := range s.Approvers.Groups {
		v.approver(index("slack.approvers.groups", i), g, "user group", "S0123ABCD")
	}
	for i, id := range s.TeamIDs {
		if !teamID.MatchString(id) {
			v.errorf(index("slack.team_ids", i), "invalid workspace id %q: a Slack team id such as T0123ABCD (or an Enterprise Grid id E…)", id)
		}
	}
	var names []string
	first := map[string]string{}
	for i, r := range s.Routes {
		path := index("slack.routes", i)
		switch prev, dup := first[r.Name]; {
		case r.Name == "":
			v.errorf(join(path, "name"), "required")
		case dup:
			v.errorf(join(path, "name"), "duplicate route name %q (%s at line %d has it too)",
				r.Name, prev, v.src.node(join(prev, "name")).Line)
		default:
			first[r.Name] = path
			names = append(names, r.Name)
		}
		if r.Channel == "" {
			v.errorf(join(path, "channel"), "required, e.g. \"#data-oncall\" (quoted: # starts a YAML comment)")
		}
		for j, sev := range r.Severities {
			v.severity(index(join(path, "severities"), j), sev)
		}
		for j, ns := range r.Namespaces {
			v.namespace(index(join(path, "namespaces"), j), ns)
		}
	}
	return names
}

// teamID is a Slack workspace (T…) or Enterprise Grid (E…) id.
var teamID = regexp.MustCompile(`^[TE][A-Z0-9]+$`)

func (v *validator) approver(path, id, what, example string) {
	switch {
	case id == "":
		v.errorf(path, "must not be empty")
	case strings.HasPrefix(id, "@"):
		v.errorf(path, "%q is a name; approvers are Slack %s ids such as %s", id, what, example)
	}
}

func (v *validator) airflow(a AirflowConfig) {
	if v.src.set("airflow.url") || a.URL != "" {
		v.httpURL("airflow.url", a.URL)
	}
	if !slices.Contains(AirflowAPIVersions(), a.APIVersion) {
		v.errorf("airflow.api_version", "invalid api_version %q (valid: v1 for Airflow 2, v2 for Airflow 3)", a.APIVersion)
	}
	if a.Timeout.Duration <= 0 {
		v.errorf("airflow.timeout", "must be greater than 0")
	}
}

func (v *validator) httpURL(path, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.errorf(path, "invalid URL: must be an absolute http:// or https:// URL")
	case u.User != nil:
		// Never echo the URL: it holds a password.
		env := "SLACK_BOT_TOKEN"
		if strings.HasPrefix(path, "airflow.") {
			env = "AIRFLOW_USERNAME and AIRFLOW_PASSWORD, or AIRFLOW_TOKEN"
		}
		v.errorf(path, "the URL %s carries credentials (user:password@); they are not read from rules.yaml, "+
			"where they would end up in logs and messages: set %s (or their *_FILE variants naming mounted files) "+
			"in the environment", withoutUser(u), env)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.errorf(path, "invalid URL %q: must be an absolute http:// or https:// URL", s)
	}
}

func (v *validator) severity(path string, s finding.Severity) {
	if !slices.Contains(finding.Severities(), s) {
		v.errorf(path, "invalid severity %q (valid: %s)", s, joinList(finding.Severities()))
	}
}

func (v *validator) rule(r *Rule, path string, c *Config, routes []string) {
	switch {
	case r.Name == "":
		v.errorf(join(path, "name"), "required")
	case len(r.Name) > 63 || !ruleName.MatchString(r.Name):
		v.errorf(join(path, "name"), "invalid rule name %q: use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)", r.Name)
	}
	v.severity(join(path, "severity"), r.Severity)

	if r.Detect.Kind == "" {
		v.errorf(join(path, "detect.kind"), "required (registered kinds: %s)", joinKinds(v.reg.Kinds()))
	}

	v.match(&r.Match, join(path, "match"))

	if r.Action != nil {
		v.action(r.Action, join(path, "action"), c)
		if spec, ok := v.reg.Spec(r.Detect.Kind); ok && spec.Object != ObjectPod && r.Action.Type != finding.ActionNotify {
			v.errorf(join(path, "action.type"), "%s findings are about %ss, and %s acts on pods: only notify applies to them", r.Detect.Kind, spec.Object, r.Action.Type)
		}
	}
	v.notify(r.Notify, join(path, "notify"), routes)
}

// match validates a match block (a rule's or a sweep's) and parses its selector.
func (v *validator) match(m *Match, path string) {
	v.scope(join(path, "namespaces"), m.Namespaces)
	m.LabelSelector = labels.Everything()
	if m.Selector != "" {
		sel, err := labels.Parse(m.Selector)
		if err != nil {
			v.errorf(join(path, "selector"), "invalid label selector %q: %v", m.Selector, err)
		} else {
			m.LabelSelector = sel
		}
	}
	if !slices.Contains(Workloads(), m.Workload) {
		v.errorf(join(path, "workload"), "invalid workload %q (valid: %s)", m.Workload, joinList(Workloads()))
	}
}

// notify validates a notify block (a rule's or a schedule's).
func (v *validator) notify(n Notify, path string, routes []string) {
	if n.Route != "" && !slices.Contains(routes, n.Route) {
		defined := "no routes are defined"
		if len(routes) > 0 {
			defined = "defined: " + strings.Join(routes, ", ")
		}
		v.errorf(join(path, "route"), "route %q is not defined in slack.routes (%s)", n.Route, defined)
	}
	if v.src.set(join(path, "channel")) && n.Channel == "" {
		v.errorf(join(path, "channel"), "must not be empty")
	}
}

func (v *validator) action(a *RuleAction, path string, c *Config) {
	typePath := join(path, "type")
	valid := joinList(finding.ActionTypes())
	switch {
	case a.Type == "":
		v.errorf(typePath, "required (valid: %s)", valid)
	case !a.Type.Valid():
		msg := fmt.Sprintf("unknown action type %q", a.Type)
		if s := closest(string(a.Type), toStrings(finding.ActionTypes())); s != "" {
			msg += " (did you mean " + s + "?)"
		}
		v.errorf(typePath, "%s; valid: %s", msg, valid)
	}

	modePath := join(path, "mode")
	switch {
	case !slices.Contains(finding.Modes(), a.Mode):
		v.errorf(modePath, "invalid mode %q (valid: %s)", a.Mode, joinList(finding.Modes()))
	case a.Type == finding.ActionNotify && a.Mode != finding.ModeNotify:
		v.errorf(modePath, "type notify only notifies; its mode is notify (or leave mode out)")
	}

	if a.Type.Valid() {
		v.params(a, join(path, "params"))
	}
	if a.Type == finding.ActionAirflowClearTask && c.Airflow.URL == "" {
		v.errorf(typePath, "airflow-clear-task needs airflow.url (the Airflow webserver or API server)")
	}
	v.budget(join(path, "budget"), a.Budget)
}

// params reports params that do not apply to the action's type and values out of range.
func (v *validator) params(a *RuleAction, path string) {
	takes := actionParams[a.Type]
	for _, f := range fields(reflect.TypeFor[ActionParams]()) {
		p := join(path, f.name)
		if _, written := v.src.values[p]; !written || slices.Contains(takes, f.name) {
			continue
		}
		if len(takes) == 0 {
			v.keyErrorf(p, "%s is not a parameter of %s (%s takes no parameters)", f.name, a.Type, a.Type)
		} else {
			v.keyErrorf(p, "%s is not a parameter of %s (its parameters: %s)", f.name, a.Type, strings.Join(takes, ", "))
		}
	}
	applies := func(name string) bool {
		_, written := v.src.values[join(path, name)]
		return written && slices.Contains(takes, name)
	}
	pr := a.Params
	if applies("bump_ratio") && pr.BumpRatio != nil {
		switch r := *pr.BumpRatio; {
		case math.IsInf(r, 0) || math.IsNaN(r):
			v.errorf(join(path, "bump_ratio"), "must be a finite number")
		case r <= 1:
			v.errorf(join(path, "bump_ratio"), "must be greater than 1 (1.5 raises the limit by half)")
		}
	}
	if applies("max_limit_request_ratio") && pr.MaxLimitRequestRatio != nil {
		switch r := *pr.MaxLimitRequestRatio; {
		case math.IsInf(r, 0) || math.IsNaN(r):
			v.errorf(join(path, "max_limit_request_ratio"), "must be a finite number")
		case r < 1:
			v.errorf(join(path, "max_limit_request_ratio"), "must be at least 1 (1 sets the request equal to the limit)")
		}
	}
	if applies("min_bump") && pr.MinBump != nil && pr.MinBump.Sign() <= 0 {
		v.errorf(join(path, "min_bump"), "must be greater than 0")
	}
	if applies("max_limit") && pr.MaxLimit != nil && pr.MaxLimit.Sign() <= 0 {
		v.errorf(join(path, "max_limit"), "must be greater than 0")
	}
	if applies("grace_period") && pr.GracePeriod != nil && *pr.GracePeriod < 0 {
		v.errorf(join(path, "grace_period"), "must be 0 or more seconds")
	}
	if applies("force") && pr.Force {
		if a.Mode != finding.ModeApprove && slices.Contains(finding.Modes(), a.Mode) {
			v.errorf(join(path, "force"), "force: true needs mode approve (a forced delete skips the pod's grace period, so a human decides), not %s", a.Mode)
		}
		if pr.GracePeriod != nil {
			v.keyErrorf(join(path, "grace_period"), "conflicts with force: true, which deletes with grace period 0")
		}
	}
}

func joinList[T ~string](xs []T) string { return strings.Join(toStrings(xs), ", ") }

func toStrings[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// cronReference is the time from which validation checks that a cron expression ever runs
// (robfig/cron gives up after five years), fixed so that `podmedic check` is deterministic.
var cronReference = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// schedules validates the schedules section: names (shared with the rules), cron expressions,
// time zones, and each job's sweep or digest block.
func (v *validator) schedules(c *Config, routes []string, ruleNames map[string]string) {
	names := map[string]string{}
	for i := range c.Schedules {
		s, path := &c.Schedules[i], index("schedules", i)
		namePath := join(path, "name")
		switch first, dup := names[s.Name]; {
		case s.Name == "":
			v.errorf(namePath, "required")
		case len(s.Name) > 63 || !ruleName.MatchString(s.Name):
			v.errorf(namePath, "invalid schedule name %q: use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)", s.Name)
		case dup:
			v.errorf(namePath, "duplicate schedule name %q (%s at line %d has it too)", s.Name, first, v.src.node(join(first, "name")).Line)
		case ruleNames[s.Name] != "":
			r := ruleNames[s.Name]
			v.errorf(namePath, "%q is the name of %s (line %d) too; schedules and rules share names, because budgets, refusals and reports are counted by name",
				s.Name, r, v.src.node(join(r, "name")).Line)
		default:
			names[s.Name] = path
		}
		v.timezone(s, join(path, "timezone"))
		v.cron(s, join(path, "cron"))

		switch {
		case s.Sweep == nil && s.Digest == nil:
			if !v.src.hasFailed(join(path, "sweep")) && !v.src.hasFailed(join(path, "digest")) {
				v.errorf(path, "a schedule needs sweep: (act on old findings) or digest: (the on-call digest)")
			}
		case s.Sweep != nil && s.Digest != nil:
			v.keyErrorf(join(path, "digest"), "a schedule is a sweep or a digest, not both; make two schedules")
		case s.Sweep != nil:
			v.sweep(s.Sweep, join(path, "sweep"), c)
		default:
			v.digest(s.Digest, join(path, "digest"))
		}
		v.notify(s.Notify, join(path, "notify"), routes)
	}
}

func (v *validator) timezone(s *Schedule, path string) {
	s.Location = time.UTC
	switch tz := s.Timezone; {
	case !v.src.set(path):
	case tz == "" || tz == "Local":
		v.errorf(path, "invalid time zone %q: use an IANA name such as Europe/Berlin or America/New_York, or UTC (Local would depend on the machine)", tz)
	default:
		loc, err := time.LoadLocation(tz)
		if err != nil {
			v.errorf(path, "unknown time zone %q: use an IANA name such as Europe/Berlin, America/New_York or UTC", tz)
			return
		}
		s.Location = loc
	}
}

// cronHelp says what a cron expression may be.
const cronHelp = "five fields (minute hour day-of-month month day-of-week), six with a leading seconds field, or a descriptor such as @daily or @every 15m"

func (v *validator) cron(s *Schedule, path string) {
	expr := strings.TrimSpace(s.Cron)
	switch {
	case !v.src.set(path) || expr == "":
		v.errorf(path, "required: when the job runs, e.g. \"*/15 * * * *\" or @daily (%s)", cronHelp)
		return
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		v.errorf(path, "put the time zone in timezone:, not in the expression")
		return
	}
	if rest, ok := strings.CutPrefix(expr, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		switch {
		case err != nil:
			v.errorf(path, "invalid cron expression %q: %q is not a duration (use e.g. @every 15m or @every 1h30m)", s.Cron, strings.TrimSpace(rest))
			return
		case d < time.Second:
			v.errorf(path, "invalid cron expression %q: @every needs at least 1s", s.Cron)
			return
		}
	}
	when, err := ParseCron(expr, s.Location)
	if err != nil {
		v.errorf(path, "invalid cron expression %q: %v; use %s", s.Cron, err, cronHelp)
		return
	}
	if when.Next(cronReference).IsZero() {
		v.errorf(path, "cron expression %q never runs (no such date)", s.Cron)
		return
	}
	s.When = when
}

// sweep validates a sweep block.
func (v *validator) sweep(sw *Sweep, path string, c *Config) {
	kindPath := join(path, "kind")
	var podKinds []finding.Kind
	for _, k := range v.reg.Kinds() {
		if p, _ := v.reg.Spec(k); p.Object == ObjectPod {
			podKinds = append(podKinds, k)
		}
	}
	switch p, registered := v.reg.Spec(sw.Kind); {
	case sw.Kind == "":
		v.errorf(kindPath, "required: the kind of finding swept (%s)", joinKinds(podKinds))
	case !registered:
		v.errorf(kindPath, "%s", unknownKind(sw.Kind, v.reg.Kinds()))
	case p.Object != ObjectPod:
		v.errorf(kindPath, "%s findings are about %ss; a sweep acts on pods (%s)", sw.Kind, p.Object, joinKinds(podKinds))
	case !detectedByRule(c, sw.Kind):
		v.errorf(kindPath, "no enabled rule detects %s: a sweep acts on the findings the rules make, and the guard re-checks them with the rules before acting; add a rule with detect.kind: %s (notify-only is enough)", sw.Kind, sw.Kind)
	}
	for i, ph := range sw.Phases {
		p := index(join(path, "phases"), i)
		switch {
		case slices.Contains(PodPhases(), ph):
		case strings.EqualFold(ph, "Evicted"):
			v.errorf(p, "Evicted is a reason, not a phase: evicted pods are Failed (kind: Evicted finds them)")
		default:
			v.errorf(p, "invalid phase %q (valid: %s)", ph, strings.Join(PodPhases(), ", "))
		}
	}
	v.match(&sw.Match, join(path, "match"))
	actionPath := join(path, "action")
	if !v.src.set(actionPath) {
		v.errorf(actionPath, "required: what to do with each pod found (type: delete-pod, evict-pod, ...; mode: approve or auto)")
	} else {
		v.action(&RuleAction{Type: sw.Action.Type, Mode: sw.Action.Mode, Params: sw.Action.Params}, actionPath, c)
	}
	if sw.Budget < 1 {
		v.errorf(join(path, "budget"), "must be at least 1: the most actions (or proposals) one run makes")
	}
}

func detectedByRule(c *Config, k finding.Kind) bool {
	for _, r := range c.Rules {
		if !r.Disabled && r.Detect.Kind == k {
			return true
		}
	}
	return false
}

// digest validates a digest block.
func (v *validator) digest(d *DigestJob, path string) {
	if d.Window.Duration <= 0 {
		v.errorf(join(path, "window"), "must be greater than 0, e.g. 24h")
	}
	if d.Top < 1 {
		v.errorf(join(path, "top"), "must be at least 1")
	}
}

// withoutUser is u without its user information.
func withoutUser(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
