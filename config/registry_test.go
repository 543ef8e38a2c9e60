package config

// DefaultRegistry returns the detectors podmedic ships. They live in package rules, which
// imports this one, so the external test package fills it in (rules_test.go).
var DefaultRegistry func() Detectors
