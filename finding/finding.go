package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Kind names a class of failure. The names are stable: they appear in replay output, metric
// labels and rules.yaml.
type Kind string

// The finding kinds, most specific first (see Specificity).
const (
	OOMKilled         Kind = "OOMKilled"
	SIGKILL           Kind = "SIGKILL"
	InitStuck         Kind = "InitStuck"
	Evicted           Kind = "Evicted"
	TaskFailed        Kind = "TaskFailed"
	PVCPending        Kind = "PVCPending"
	VolumeMountFailed Kind = "VolumeMountFailed"
	CrashLoop         Kind = "CrashLoop"
	StuckTerminating  Kind = "StuckTerminating"
	Unschedulable     Kind = "Unschedulable"
	LimitRatio        Kind = "LimitRatio"
	// SparkAppFailed: a SparkApplication's run FAILED or SUBMISSION_FAILED (the object, not
	// a pod: a submission that failed has no pod at all).
	SparkAppFailed Kind = "SparkAppFailed"
)

// Kinds lists every finding kind in a stable order.
func Kinds() []Kind {
	return []Kind{OOMKilled, SIGKILL, InitStuck, Evicted, TaskFailed, PVCPending,
		VolumeMountFailed, CrashLoop, StuckTerminating, Unschedulable, LimitRatio, SparkAppFailed}
}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	for _, c := range Kinds() {
		if c == k {
			return true
		}
	}
	return false
}

// Severity of a finding, used for routing notices.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Severities lists the valid severities.
func Severities() []Severity { return []Severity{SeverityInfo, SeverityWarning, SeverityCritical} }

// Owner is the controller that owns the target pod ("" kind and name for a bare pod).
type Owner struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// AirflowTask identifies an Airflow task instance run by a KubernetesExecutor worker pod.
type AirflowTask struct {
	DagID  string `json:"dag_id"`
	TaskID string `json:"task_id"`
	// RunID is the DAG run's id; empty for workers of Airflow before 2.2, which name the
	// run by its ExecutionDate instead.
	RunID string `json:"run_id"`
	// ExecutionDate is the run's logical date (RFC 3339) when the pod names no run id.
	ExecutionDate string `json:"execution_date,omitempty"`
	TryNumber     int    `json:"try_number"`
	MapIndex      *int   `json:"map_index,omitempty"`
}

// Run names the task instance's DAG run: its run id, or "execution date <date>" for workers
// that predate run ids.
func (a *AirflowTask) Run() string {
	if a.RunID == "" && a.ExecutionDate != "" {
		return "execution date " + a.ExecutionDate
	}
	return a.RunID
}

// SparkApp identifies a Spark application a pod belongs to.
type SparkApp struct {
	AppName string `json:"app_name,omitempty"`
	AppID   string `json:"app_id,omitempty"` // spark-app-selector
	Role    string `json:"role,omitempty"`   // driver or executor
	Owner   string `json:"owner,omitempty"`  // SparkApplication name, when owned by one
	// Application, State and Attempts describe a SparkApplication finding (no pod): its name,
	// its state, and the operator's attempts of the run (execution, or submission when none
	// ran).
	Application string `json:"application,omitempty"`
	State       string `json:"state,omitempty"`
	Attempts    int    `json:"attempts,omitempty"`
	// Schedule is true when Application is a ScheduledSparkApplication (State its
	// scheduleState), not a run.
	Schedule bool `json:"schedule,omitempty"`
}

// Finding is one recognised failure of one object. Its JSON form is the replay output
// contract (DESIGN.md); fields tagged "-" are internal.
type Finding struct {
	Kind      Kind         `json:"kind"`
	Rule      string       `json:"rule"`
	Severity  Severity     `json:"severity"`
	Namespace string       `json:"namespace"`
	Pod       string       `json:"pod"`
	PVC       string       `json:"pvc,omitempty"`
	Container string       `json:"container"`
	UID       string       `json:"uid"`
	Owner     Owner        `json:"owner"`
	Airflow   *AirflowTask `json:"airflow"`
	Spark     *SparkApp    `json:"spark"`
	Evidence  []string     `json:"evidence"`
	Action    *Action      `json:"action"`

	// Occurrence distinguishes repeated failures of the same container: a termination time or a
	// restart count. Together with kind, uid and container it identifies one failure.
	Occurrence string `json:"-"`
	// Route names the notification route of the rule that produced the finding, or a literal
	// channel ("#data-oom", "C0123") when the rule names one in notify.channel.
	Route string `json:"-"`
}

// Key identifies one failure across resyncs, restarts and replicas. It is safe to use as a NATS
// KV key (hex only).
func (f *Finding) Key() string {
	h := sha256.New()
	for _, s := range []string{string(f.Kind), f.Namespace, f.UID, f.PVC, f.Container, f.Occurrence} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Name is a short human name of what the finding is about: "ns/pod[/container]", "ns/pvc" or
// "ns/application".
func (f *Finding) Name() string {
	var b strings.Builder
	b.WriteString(f.Namespace)
	b.WriteByte('/')
	switch {
	case f.Pod != "":
		b.WriteString(f.Pod)
		if f.Container != "" {
			b.WriteByte('/')
			b.WriteString(f.Container)
		}
	case f.PVC == "" && f.Spark != nil && f.Spark.Application != "":
		b.WriteString(f.Spark.Application)
	default:
		b.WriteString(f.PVC)
	}
	return b.String()
}

// ErrAfterAction is returned by a stage for a finding about a pod podmedic itself deleted or
// evicted (it got stuck terminating, say): it is not a new failure, and it is neither reported
// nor acted on. The caller treats the finding as handled.
var ErrAfterAction = errors.New("finding about a pod podmedic deleted or evicted")

// SummaryRefs are the mentions a one-line summary of a finding is made of, formatted by the
// notifier that shows it (e.g. "pod `airflow/etl-1`" in Slack).
type SummaryRefs struct {
	// Pod is "pod <ns/name>".
	Pod string
	// Container is "container <name> of pod <ns/name>", or Pod when the finding names no
	// container.
	Container string
	// Object is the finding's object alone: "<ns/pod>", or "<ns/pvc>" for a claim.
	Object string
}
