package spark

import (
	"encoding/json"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScheduleState is a ScheduledSparkApplication's state (status.scheduleState).
type ScheduleState string

// The operator's schedule states: a schedule whose cron expression does not parse is
// FailedValidation and creates no runs (its reason says why).
const (
	ScheduleFailedValidation ScheduleState = "FailedValidation"
	ScheduleScheduled        ScheduleState = "Scheduled"
)

// ScheduledApplication is a ScheduledSparkApplication as podmedic reads it: its schedule and
// the history of its runs (each run is a SparkApplication it controls).
type ScheduledApplication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ScheduledSpec   `json:"spec"`
	Status            ScheduledStatus `json:"status,omitempty"`
}

// ScheduledSpec is the part of the schedule's spec podmedic reads.
type ScheduledSpec struct {
	Schedule string `json:"schedule"`
	Suspend  *bool  `json:"suspend,omitempty"`
	// Template is the spec of the runs (the memory settings podmedic patches).
	Template Spec `json:"template"`
}

// ScheduledStatus is the schedule's status.
type ScheduledStatus struct {
	LastRun                metav1.Time   `json:"lastRun,omitempty"`
	NextRun                metav1.Time   `json:"nextRun,omitempty"`
	LastRunName            string        `json:"lastRunName,omitempty"`
	PastSuccessfulRunNames []string      `json:"pastSuccessfulRunNames,omitempty"`
	PastFailedRunNames     []string      `json:"pastFailedRunNames,omitempty"`
	ScheduleState          ScheduleState `json:"scheduleState,omitempty"`
	Reason                 string        `json:"reason,omitempty"`
}

// DecodeScheduled decodes a ScheduledSparkApplication from JSON.
func DecodeScheduled(raw []byte) (*ScheduledApplication, error) {
	var s ScheduledApplication
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode ScheduledSparkApplication: %w", err)
	}
	return &s, nil
}

// Invalid reports whether the operator refused the schedule (FailedValidation): it creates no
// runs until its spec is mended.
func (s *ScheduledApplication) Invalid() bool {
	return s.Status.ScheduleState == ScheduleFailedValidation
}

// Version names the schedule's spec as the operator validated it: its generation (a new spec
// is a new version), else its resourceVersion.
func (s *ScheduledApplication) Version() string {
	if s.Generation > 0 {
		return "generation-" + strconv.FormatInt(s.Generation, 10)
	}
	return "rv-" + s.ResourceVersion
}

// Suspended reports whether the schedule's runs are suspended (spec.suspend).
func (s *ScheduledApplication) Suspended() bool { return s.Spec.Suspend != nil && *s.Spec.Suspend }
