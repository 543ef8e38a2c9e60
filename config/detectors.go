package config

import (
	"sort"

	"github.com/podmedic/podmedic/finding"
)

// Objects a detector can look at (DetectorSpec.Object).
const (
	ObjectPod = "Pod"
	ObjectPVC = "PersistentVolumeClaim"
	// ObjectSparkApp is a SparkApplication (sparkoperator.k8s.io/v1beta2).
	ObjectSparkApp = "SparkApplication"
)

// Args are a detector's thresholds from a rule's detect block. Validate reports every problem;
// FieldError.Field names the YAML key (e.g. "init_timeout") relative to the detect block.
type Args interface {
	Validate() []FieldError
}

// FieldError is one problem with one field of a configuration block.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// NoArgs is the Args of a detector without thresholds.
type NoArgs struct{}

// Validate implements Args.
func (NoArgs) Validate() []FieldError { return nil }

// DetectorSpec is what the loader knows of one detector kind: the object it looks at and its
// thresholds with their defaults. The detectors themselves live in package rules, which
// passes its registry to Load; the loader decodes each rule's detect block into the kind's
// Args on the YAML node, so every threshold error keeps its position.
type DetectorSpec struct {
	Kind finding.Kind
	// Object is ObjectPod, ObjectPVC or ObjectSparkApp.
	Object string
	// DefaultArgs returns a pointer to a new args struct filled with defaults; nil means NoArgs.
	DefaultArgs func() Args
}

// NewArgs returns the kind's default args.
func (s DetectorSpec) NewArgs() Args {
	if s.DefaultArgs == nil {
		return &NoArgs{}
	}
	return s.DefaultArgs()
}

// Detectors are the detector kinds a rules file may name.
type Detectors interface {
	// Kinds returns the kinds, sorted.
	Kinds() []finding.Kind
	// Spec returns the kind's spec.
	Spec(k finding.Kind) (DetectorSpec, bool)
}

// Specs is a fixed list of detector specs (tests, tools that validate without detectors).
type Specs []DetectorSpec

// Kinds implements Detectors.
func (s Specs) Kinds() []finding.Kind {
	out := make([]finding.Kind, 0, len(s))
	for _, d := range s {
		out = append(out, d.Kind)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Spec implements Detectors.
func (s Specs) Spec(k finding.Kind) (DetectorSpec, bool) {
	for _, d := range s {
		if d.Kind == k {
			return d, true
		}
	}
	return DetectorSpec{}, false
}
