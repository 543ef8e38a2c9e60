// Package rules turns observations of the cluster into findings: the rules.yaml schema, its
// loading and validation, one detector per finding kind, and the engine that runs the detectors
// a rule enables over the pods, PVCs and events it observes.
//
// Detectors are pure functions of (object, cluster view, now), so the same code serves the
// daemon (fed from the bus) and replay (fed from a kubectl dump).
package rules
