package config

import (
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/podmedic/podmedic/finding"
)

// Config is rules.yaml. Every section is optional except rules; Load fills the defaults
// documented on each field and validates the whole file.
type Config struct {
	// Version of the file format; must be 1.
	Version int `yaml:"version" json:"version"`
	// Cluster names this cluster in message ids and notices. Default "default".
	Cluster string `yaml:"cluster,omitempty" json:"cluster,omitempty"`
	// DryRun proposes and reports every action but executes none.
	DryRun bool `yaml:"dry_run,omitempty" json:"dry_run,omitempty"`
	// Namespaces scopes what the watchers watch. Empty include means all namespaces.
	Namespaces NamespaceScope `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	// Budgets bound the actions taken across all rules.
	Budgets Budgets `yaml:"budgets,omitempty" json:"budgets,omitempty"`
	// Cooldown is the default minimum time between two actions on the same target. Default 30m.
	Cooldown Duration `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
	// Proposals configures approval proposals.
	Proposals ProposalsConfig `yaml:"proposals,omitempty" json:"proposals,omitempty"`
	// Overrides configures memory overrides (approved memory raises of Airflow tasks).
	Overrides OverridesConfig `yaml:"overrides,omitempty" json:"overrides,omitempty"`
	// NATS sets the limits of the embedded NATS server's JetStream store.
	NATS NATSConfig `yaml:"nats,omitempty" json:"nats,omitempty"`
	// Slack connects the notifier to Slack. Tokens come from the environment, never from here.
	Slack SlackConfig `yaml:"slack,omitempty" json:"slack,omitempty"`
	// Airflow connects the airflow-clear-task action to Airflow's REST API.
	Airflow AirflowConfig `yaml:"airflow,omitempty" json:"airflow,omitempty"`
	// Spark describes where Spark runs.
	Spark SparkConfig `yaml:"spark,omitempty" json:"spark,omitempty"`
	// Evidence sets what findings carry as evidence and what is cleaned out of it.
	Evidence EvidenceConfig `yaml:"evidence,omitempty" json:"evidence,omitempty"`
	// Rules are evaluated in order; for each finding kind the first rule whose match selects
	// an object handles it.
	Rules []Rule `yaml:"rules" json:"rules"`
	// Schedules are jobs run on a clock by one replica (the elected leader): sweeps that act on
	// old findings in bulk, and the on-call digest.
	Schedules []Schedule `yaml:"schedules,omitempty" json:"schedules,omitempty"`

	// File is the path the config was loaded from.
	File string `yaml:"-" json:"-"`
}

// EvidenceConfig sets what findings carry as evidence. Every evidence line (log tails,
// termination messages, events) is cleaned of passwords, tokens, keys and credentials in URLs
// before it leaves podmedic; Redact adds patterns of your own.
type EvidenceConfig struct {
	// LogTails adds the last lines of a failed task container's log to TaskFailed findings.
	// Default true.
	LogTails *bool `yaml:"log_tails,omitempty" json:"log_tails,omitempty"`
	// Redact are extra regular expressions (RE2) whose matches in evidence are replaced by
	// [redacted].
	Redact []string `yaml:"redact,omitempty" json:"redact,omitempty"`
}

// Tails reports whether log tails are on (LogTails, default true).
func (e EvidenceConfig) Tails() bool { return e.LogTails == nil || *e.LogTails }

// NamespaceScope selects namespaces by name.
type NamespaceScope struct {
	Include []string `yaml:"include,omitempty" json:"include,omitempty"`
	Exclude []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
}

// Allows reports whether namespace ns is in scope.
func (s NamespaceScope) Allows(ns string) bool {
	for _, e := range s.Exclude {
		if e == ns {
			return false
		}
	}
	if len(s.Include) == 0 {
		return true
	}
	for _, i := range s.Include {
		if i == ns {
			return true
		}
	}
	return false
}

// Budget allows at most Max actions in any sliding Window.
type Budget struct {
	Max    int      `yaml:"max" json:"max"`
	Window Duration `yaml:"window" json:"window"`
}

// Budgets are the global action budgets.
type Budgets struct {
	Total        *Budget `yaml:"total,omitempty" json:"total,omitempty"`
	PerNamespace *Budget `yaml:"per_namespace,omitempty" json:"per_namespace,omitempty"`
}

// ProposalsConfig configures approval proposals.
type ProposalsConfig struct {
	// TTL after which an undecided proposal expires. Default 30m.
	TTL Duration `yaml:"ttl,omitempty" json:"ttl,omitempty"`
}

// OverridesConfig configures memory overrides.
type OverridesConfig struct {
	// TTL of an override: how long the next tries of its task run with the raised memory.
	// Default 30d.
	TTL Duration `yaml:"ttl,omitempty" json:"ttl,omitempty"`
}

// NATSConfig limits the embedded server's JetStream resources.
type NATSConfig struct {
	// MaxMemory for JetStream memory storage. Default 64Mi.
	MaxMemory Quantity `yaml:"max_memory,omitempty" json:"max_memory,omitempty"`
	// MaxStore for JetStream file storage. Default 1Gi.
	MaxStore Quantity `yaml:"max_store,omitempty" json:"max_store,omitempty"`
}

// SlackConfig connects to Slack. The bot token (SLACK_BOT_TOKEN), app token (SLACK_APP_TOKEN)
// and signing secret (SLACK_SIGNING_SECRET) come from the environment or *_FILE variants.
type SlackConfig struct {
	// APIURL of Slack's Web API. Default https://slack.com/api/.
	APIURL string `yaml:"api_url,omitempty" json:"api_url,omitempty"`
	// DefaultChannel receives notices no route claims.
	DefaultChannel string `yaml:"default_channel,omitempty" json:"default_channel,omitempty"`
	// SocketMode receives interactions over Socket Mode (default true); false uses
	// POST /slack/interactions verified with the signing secret.
	SocketMode *bool `yaml:"socket_mode,omitempty" json:"socket_mode,omitempty"`
	// Approvers may approve or deny proposals from Slack. Empty: nobody may (Slack approvals
	// are refused with a message that says how to set them; the local inbox is unaffected).
	Approvers Approvers `yaml:"approvers,omitempty" json:"approvers,omitempty"`
	// TeamIDs are the Slack workspaces (T…) whose members may decide; a click from a user of
	// another workspace (a Slack Connect guest) is refused. Default: the bot token's own
	// workspace (auth.test).
	TeamIDs []string `yaml:"team_ids,omitempty" json:"team_ids,omitempty"`
	// Routes map rules' notify.route names to channels by severity and namespace.
	Routes []Route `yaml:"routes,omitempty" json:"routes,omitempty"`
}

// Approvers is an allowlist of Slack user ids and user group ids.
type Approvers struct {
	Users  []string `yaml:"users,omitempty" json:"users,omitempty"`
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
}

// Route sends notices to a channel. A notice takes the first route with its name whose
// severities and namespaces (when set) match, else the default channel.
type Route struct {
	Name       string             `yaml:"name" json:"name"`
	Channel    string             `yaml:"channel" json:"channel"`
	Severities []finding.Severity `yaml:"severities,omitempty" json:"severities,omitempty"`
	Namespaces []string           `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
}

// AirflowConfig connects to Airflow's stable REST API. Credentials come from AIRFLOW_USERNAME
// and AIRFLOW_PASSWORD, or AIRFLOW_TOKEN (or *_FILE variants).
type AirflowConfig struct {
	// URL of the Airflow webserver / API server, e.g. http://airflow-webserver.airflow:8080.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// APIVersion is v1 (Airflow 2) or v2 (Airflow 3). Default v1.
	APIVersion string `yaml:"api_version,omitempty" json:"api_version,omitempty"`
	// Timeout of one API call. Default 10s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Namespaces where Airflow runs its workers. A pod elsewhere that carries Airflow's labels
	// is not taken for an Airflow worker: no airflow-clear-task with podmedic's credentials
	// for a DAG it names, no exemption of bare pods. Empty: any namespace.
	Namespaces []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
}

// SparkConfig describes where Spark runs.
type SparkConfig struct {
	// Namespaces where Spark drivers and executors run; a pod elsewhere with spark-role is
	// not taken for a Spark pod (no exemption of bare pods). Empty: any namespace.
	Namespaces []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
}

// Workload restricts a rule to pods of a kind of workload.
type Workload string

const (
	WorkloadAny     Workload = "any"
	WorkloadAirflow Workload = "airflow"
	WorkloadSpark   Workload = "spark"
)

// Rule turns one kind of finding into a notice and, optionally, an action.
type Rule struct {
	// Name is unique; it appears in findings, notices and metrics.
	Name string `yaml:"name" json:"name"`
	// Description is free text shown in notices.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Severity of the findings (info, warning, critical). Default warning.
	Severity finding.Severity `yaml:"severity,omitempty" json:"severity,omitempty"`
	// Disabled rules are validated but not evaluated.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Detect names the finding kind and its thresholds.
	Detect Detect `yaml:"detect" json:"detect"`
	// Match selects the objects the rule applies to. Empty matches everything in scope.
	Match Match `yaml:"match,omitempty" json:"match,omitempty"`
	// Action is taken for each finding; absent means notify only.
	Action *RuleAction `yaml:"action,omitempty" json:"action,omitempty"`
	// Notify routes the rule's notices.
	Notify Notify `yaml:"notify,omitempty" json:"notify,omitempty"`
}

// Detect is a rule's detect block: kind plus that kind's thresholds, which are decoded into
// the registered plugin's Args.
type Detect struct {
	Kind finding.Kind `yaml:"kind" json:"kind"`
	Args Args         `yaml:"-" json:"-"`
}

// Match selects objects.
type Match struct {
	Namespaces NamespaceScope `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	// Selector is a Kubernetes label selector, e.g. "team=data,tier!=dev".
	Selector string `yaml:"selector,omitempty" json:"selector,omitempty"`
	// Workload is any (default), airflow (KubernetesExecutor worker pods) or spark (Spark pods).
	Workload Workload `yaml:"workload,omitempty" json:"workload,omitempty"`

	// LabelSelector is Selector parsed at load.
	LabelSelector labels.Selector `yaml:"-" json:"-"`
}

// RuleAction is a rule's action block.
type RuleAction struct {
	Type finding.ActionType `yaml:"type" json:"type"`
	// Mode is notify, approve or auto. Default approve (notify for the notify type).
	Mode finding.Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Params of the action type; keys that do not apply to the type are errors.
	Params ActionParams `yaml:"params,omitempty" json:"params,omitempty"`
	// Budget of this rule's actions (in addition to the global budgets).
	Budget *Budget `yaml:"budget,omitempty" json:"budget,omitempty"`
	// Cooldown per target for this rule; default the global cooldown.
	Cooldown *Duration `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
}

// ActionParams holds the parameters of every action type; each applies to some types only.
type ActionParams struct {
	// GracePeriod for delete-pod and evict-pod, in seconds. Default: the pod's own.
	GracePeriod *int64 `yaml:"grace_period,omitempty" json:"grace_period,omitempty"`
	// Force (delete-pod only) deletes with grace period 0; only allowed in approve mode.
	Force bool `yaml:"force,omitempty" json:"force,omitempty"`
	// BumpRatio (propose-memory-limit) multiplies the memory limit. Default 1.5.
	BumpRatio *float64 `yaml:"bump_ratio,omitempty" json:"bump_ratio,omitempty"`
	// MinBump (propose-memory-limit) is the smallest increase. Default 256Mi.
	MinBump *Quantity `yaml:"min_bump,omitempty" json:"min_bump,omitempty"`
	// MaxLimit (propose-memory-limit) caps the proposed limit. Default 16Gi.
	MaxLimit *Quantity `yaml:"max_limit,omitempty" json:"max_limit,omitempty"`
	// MaxLimitRequestRatio (propose-memory-limit) keeps limit/request at or below it. Default 1.5.
	MaxLimitRequestRatio *float64 `yaml:"max_limit_request_ratio,omitempty" json:"max_limit_request_ratio,omitempty"`
	// OnlyFailed (airflow-clear-task) clears only failed task instances. Default true.
	OnlyFailed *bool `yaml:"only_failed,omitempty" json:"only_failed,omitempty"`
}

// Notify is a rule's notify block.
type Notify struct {
	// Route names a slack.routes entry.
	Route string `yaml:"route,omitempty" json:"route,omitempty"`
	// Channel overrides the route with a fixed channel.
	Channel string `yaml:"channel,omitempty" json:"channel,omitempty"`
}

// Schedule is a job the elected leader runs on a cron schedule: a sweep or the digest.
type Schedule struct {
	// Name is unique among schedules and rules; it appears in reports, audit records, Events
	// and metrics, and budgets and refusals are counted under it.
	Name string `yaml:"name" json:"name"`
	// Description is free text shown in reports.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Cron says when the job runs: five fields (minute hour day-of-month month day-of-week),
	// six with a leading seconds field, or a descriptor (@hourly, @daily, @weekly, @monthly,
	// @yearly, @every 15m). @every runs at multiples of its interval since the Unix epoch, so
	// every replica and every restart agrees on the times.
	Cron string `yaml:"cron" json:"cron"`
	// Timezone is the IANA time zone the expression is read in, e.g. Europe/Berlin. Default UTC.
	Timezone string `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	// Disabled jobs are validated but never run.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Sweep or Digest: what the job does. Exactly one is set.
	Sweep  *Sweep     `yaml:"sweep,omitempty" json:"sweep,omitempty"`
	Digest *DigestJob `yaml:"digest,omitempty" json:"digest,omitempty"`
	// Notify routes the job's reports (a sweep's run report, the digest).
	Notify Notify `yaml:"notify,omitempty" json:"notify,omitempty"`

	// Location is Timezone, loaded at load.
	Location *time.Location `yaml:"-" json:"-"`
	// When is Cron parsed in Location at load.
	When cron.Schedule `yaml:"-" json:"-"`
}

// Schedule job types.
const (
	JobSweep  = "sweep"
	JobDigest = "digest"
)

// Type is JobSweep or JobDigest.
func (s *Schedule) Type() string {
	if s.Digest != nil {
		return JobDigest
	}
	return JobSweep
}

// PodPhases lists the valid sweep.phases values.
func PodPhases() []string { return []string{"Pending", "Running", "Succeeded", "Failed", "Unknown"} }

// Sweep takes an action on every pod with a finding of one kind older than a threshold, at
// most Budget per run: the cleanup platform teams otherwise do by hand.
type Sweep struct {
	// Kind of finding swept. A sweep takes the findings the rules make now (with the rules'
	// thresholds), so an enabled rule must detect the kind; the guard re-checks the finding
	// with the same rules before acting.
	Kind finding.Kind `yaml:"kind" json:"kind"`
	// OlderThan: only failures that began at least this long ago (see rules.Registry.FailureSince:
	// an eviction's time, the start of an init container hang, ...). Default 0: every finding.
	OlderThan Duration `yaml:"older_than,omitempty" json:"older_than,omitempty"`
	// Phases: only pods in these phases. Left out: any phase.
	Phases []string `yaml:"phases,omitempty" json:"phases,omitempty"`
	// Match selects pods, as a rule's match does, within the global namespaces.
	Match Match `yaml:"match,omitempty" json:"match,omitempty"`
	// Action taken on each candidate.
	Action SweepAction `yaml:"action" json:"action"`
	// Budget is the most actions (auto) or proposals (approve) one run makes; the global
	// budgets apply too, through the guard. Default 10.
	Budget int `yaml:"budget,omitempty" json:"budget,omitempty"`
}

// SweepAction is a sweep's action: a rule's action without budget and cooldown (the sweep's
// budget is per run; the global cooldown applies).
type SweepAction struct {
	Type finding.ActionType `yaml:"type" json:"type"`
	// Mode is notify (report the candidates only), approve or auto. Default approve.
	Mode   finding.Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	Params ActionParams `yaml:"params,omitempty" json:"params,omitempty"`
}

// DigestJob is the on-call digest: incidents by kind and namespace, the Airflow tasks that
// failed most, actions taken and refused, pending approvals and expired proposals, read from
// the audit stream.
type DigestJob struct {
	// Window is how far back the digest looks. Default 24h.
	Window Duration `yaml:"window,omitempty" json:"window,omitempty"`
	// Top is how many Airflow tasks and namespaces the digest lists. Default 10.
	Top int `yaml:"top,omitempty" json:"top,omitempty"`
}

// CronParser parses schedules[].cron: an optional seconds field, five standard fields, or a
// descriptor.
func CronParser() cron.Parser {
	return cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
}

// ParseCron parses a cron expression read in loc. @every is aligned to the Unix epoch
// (Every), so that the times of a job do not depend on when podmedic started.
func ParseCron(expr string, loc *time.Location) (cron.Schedule, error) {
	s, err := CronParser().Parse(expr)
	if err != nil {
		return nil, err
	}
	switch s := s.(type) {
	case *cron.SpecSchedule:
		s.Location = loc
		return s, nil
	case cron.ConstantDelaySchedule:
		return Every{Interval: s.Delay}, nil
	}
	return s, nil
}

// Every runs at every multiple of Interval since the Unix epoch (@every 15m: :00, :15, :30,
// :45), whatever the time zone.
type Every struct{ Interval time.Duration }

// Next implements cron.Schedule.
func (e Every) Next(t time.Time) time.Time {
	d := max(e.Interval, time.Second)
	n := t.UnixNano() / int64(d)
	return time.Unix(0, (n+1)*int64(d)).In(t.Location())
}
