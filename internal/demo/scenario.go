package demo

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

//go:embed scenario.yaml
var defaultScenario []byte

// Scenario is a scripted night.
type Scenario struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	Steps []Step    `json:"steps"`
	// Templates (x- keys) hold YAML anchors reused by the steps.
	Templates json.RawMessage `json:"x-airflow-worker,omitempty"`
}

// Step is what happens at one time of the night.
type Step struct {
	// At is the wall-clock time of the night, "HH:MM" (on the day of Start, or the next day
	// when earlier than Start).
	At string `json:"at"`
	// Say narrates the step.
	Say string `json:"say"`
	// Create lists objects (Pod, PersistentVolumeClaim, Event, SparkApplication) to create.
	Create []json.RawMessage `json:"create,omitempty"`
	// Status lists pod statuses to write, as a kubelet would.
	Status []StatusWrite `json:"status,omitempty"`
	// Apps lists SparkApplication statuses to write, as the Spark operator would.
	Apps []AppStatusWrite `json:"apps,omitempty"`

	time time.Time
}

// StatusWrite writes the status of pod NAMESPACE/NAME.
type StatusWrite struct {
	Pod    string           `json:"pod"`
	Status corev1.PodStatus `json:"status"`
	// Logs are what each container wrote (container name -> text), served as its log.
	Logs map[string]string `json:"logs,omitempty"`
}

// AppStatusWrite writes the status of SparkApplication NAMESPACE/NAME.
type AppStatusWrite struct {
	App    string         `json:"app"`
	Status map[string]any `json:"status"`
}

// Time is when the step happens.
func (s Step) Time() time.Time { return s.time }

// DefaultScenario returns the bundled scenario.
func DefaultScenario() (*Scenario, error) { return ParseScenario(defaultScenario) }

// ParseScenario decodes and checks a scenario (strict: unknown keys are errors).
func ParseScenario(data []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if s.Start.IsZero() || len(s.Steps) == 0 {
		return nil, fmt.Errorf("scenario: start and steps are required")
	}
	prev := s.Start
	for i := range s.Steps {
		st := &s.Steps[i]
		t, err := time.Parse("15:04", st.At)
		if err != nil {
			return nil, fmt.Errorf("scenario: steps[%d].at: %q is not HH:MM", i, st.At)
		}
		day := time.Date(s.Start.Year(), s.Start.Month(), s.Start.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
		if day.Before(s.Start) {
			day = day.Add(24 * time.Hour)
		}
		if day.Before(prev) {
			return nil, fmt.Errorf("scenario: steps[%d].at %s is earlier than the step before", i, st.At)
		}
		st.time, prev = day, day
		for j, w := range st.Status {
			if ns, name, ok := strings.Cut(w.Pod, "/"); !ok || ns == "" || name == "" {
				return nil, fmt.Errorf("scenario: steps[%d].status[%d].pod: %q is not NAMESPACE/NAME", i, j, w.Pod)
			}
		}
		for j, w := range st.Apps {
			if ns, name, ok := strings.Cut(w.App, "/"); !ok || ns == "" || name == "" {
				return nil, fmt.Errorf("scenario: steps[%d].apps[%d].app: %q is not NAMESPACE/NAME", i, j, w.App)
			}
		}
	}
	return &s, nil
}
