// Package rules turns observations of the cluster into findings: one detector per finding kind,
// the registry that names them (and tells package config which thresholds each takes), and the
// engine that runs the detectors a rule enables over the pods, PVCs and events it observes.
//
// Detectors are pure functions of (object, cluster view, now), so the same code serves the
// daemon (fed from the bus) and replay (fed from a kubectl dump).
package rules
