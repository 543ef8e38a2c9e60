// Package spark holds the part of the Spark operator's SparkApplication
// (sparkoperator.k8s.io/v1beta2, kubeflow/spark-operator api/v1beta2) that podmedic reads:
// its identity, the driver's and executors' memory, and its status. Field names and states are
// the operator's; everything else of the object is left out (decoding skips it).
package spark

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group, version and resources of the operator's API.
var (
	ApplicationResource          = schema.GroupVersionResource{Group: "sparkoperator.k8s.io", Version: "v1beta2", Resource: "sparkapplications"}
	ScheduledApplicationResource = schema.GroupVersionResource{Group: "sparkoperator.k8s.io", Version: "v1beta2", Resource: "scheduledsparkapplications"}
)

// Kinds of the operator's objects.
const (
	KindApplication          = "SparkApplication"
	KindScheduledApplication = "ScheduledSparkApplication"
)

// State is an application's state (status.applicationState.state).
type State string

// The operator's application states (ApplicationStateType).
const (
	StateNew              State = ""
	StateSubmitted        State = "SUBMITTED"
	StateRunning          State = "RUNNING"
	StateCompleted        State = "COMPLETED"
	StateFailed           State = "FAILED"
	StateSubmissionFailed State = "SUBMISSION_FAILED"
	StatePendingRerun     State = "PENDING_RERUN"
	StateInvalidating     State = "INVALIDATING"
	StateSucceeding       State = "SUCCEEDING"
	StateFailing          State = "FAILING"
	StateUnknown          State = "UNKNOWN"
)

// Application is a SparkApplication as podmedic reads it.
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              Spec   `json:"spec"`
	Status            Status `json:"status,omitempty"`
}

// Spec is the part of the application's spec podmedic reads.
type Spec struct {
	Type     string  `json:"type,omitempty"` // Java, Scala, Python, R
	Driver   PodSpec `json:"driver"`
	Executor PodSpec `json:"executor"`
}

// PodSpec is the part of a driver's or executors' spec podmedic reads (SparkPodSpec).
type PodSpec struct {
	// Memory is spark.driver.memory / spark.executor.memory (the JVM heap): "4g", "512m".
	Memory *string `json:"memory,omitempty"`
	// MemoryOverhead is the off-heap memory, in MiB unless a unit says otherwise.
	MemoryOverhead *string           `json:"memoryOverhead,omitempty"`
	Cores          *int32            `json:"cores,omitempty"`
	Instances      *int32            `json:"instances,omitempty"` // executors only
	Labels         map[string]string `json:"labels,omitempty"`
}

// Status is the application's status.
type Status struct {
	SparkApplicationID        string                   `json:"sparkApplicationId,omitempty"`
	SubmissionID              string                   `json:"submissionID,omitempty"`
	LastSubmissionAttemptTime metav1.Time              `json:"lastSubmissionAttemptTime,omitempty"`
	TerminationTime           metav1.Time              `json:"terminationTime,omitempty"`
	DriverInfo                DriverInfo               `json:"driverInfo"`
	AppState                  ApplicationState         `json:"applicationState,omitempty"`
	ExecutorState             map[string]ExecutorState `json:"executorState,omitempty"`
	ExecutionAttempts         int32                    `json:"executionAttempts,omitempty"`
	SubmissionAttempts        int32                    `json:"submissionAttempts,omitempty"`
}

// DriverInfo is what the status says of the driver.
type DriverInfo struct {
	PodName string `json:"podName,omitempty"`
}

// ApplicationState is the application's state and, on failures, the operator's message.
type ApplicationState struct {
	State        State  `json:"state"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

// ExecutorState is an executor's state: PENDING, RUNNING, COMPLETED, FAILED, UNKNOWN.
type ExecutorState string

// Decode decodes a SparkApplication from JSON (a watch event's object, a dump's item).
func Decode(raw []byte) (*Application, error) {
	var a Application
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("decode SparkApplication: %w", err)
	}
	return &a, nil
}

// Failed reports whether the application's run failed: FAILED, or SUBMISSION_FAILED (no pod
// ever ran).
func (a *Application) Failed() bool {
	s := a.Status.AppState.State
	return s == StateFailed || s == StateSubmissionFailed
}

// Run names the application's current run: its submission id, or, before the operator set
// one, the time of its last submission attempt.
func (a *Application) Run() string {
	if id := a.Status.SubmissionID; id != "" {
		return id
	}
	if t := a.Status.LastSubmissionAttemptTime; !t.IsZero() {
		return t.UTC().Format("2006-01-02T15:04:05Z")
	}
	return string(a.UID)
}

// Executors summarises the executors' states: "2 FAILED, 1 COMPLETED" (most first, then by
// name); "" without any.
func (a *Application) Executors() string {
	n := map[ExecutorState]int{}
	for _, s := range a.Status.ExecutorState {
		n[s]++
	}
	states := make([]ExecutorState, 0, len(n))
	for s := range n {
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool {
		if n[states[i]] != n[states[j]] {
			return n[states[i]] > n[states[j]]
		}
		return states[i] < states[j]
	})
	parts := make([]string, 0, len(states))
	for _, s := range states {
		parts = append(parts, fmt.Sprintf("%d %s", n[s], s))
	}
	return strings.Join(parts, ", ")
}

// AirflowLabels returns the labels that name the Airflow task that created the application
// (dag_id, task_id, try_number, map_index): its driver's, else its own; nil when none do.
// SparkKubernetesOperator (apache-airflow-providers-cncf-kubernetes) puts these task context
// labels, with a label-safe run_id and spark_kubernetes_operator: "True", in
// spec.driver.labels and spec.executor.labels.
func (a *Application) AirflowLabels() map[string]string {
	for _, l := range []map[string]string{a.Spec.Driver.Labels, a.Labels} {
		if l["dag_id"] != "" && l["task_id"] != "" {
			return l
		}
	}
	return nil
}
