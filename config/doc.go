// Package config is podmedic's configuration: the rules.yaml schema (cluster, namespaces,
// budgets, NATS, Slack, Airflow, rules and schedules), its strict loader, which reports every
// problem at once as FILE:LINE:COL: field.path: message, and its validation.
//
// It sits at the bottom of the house with package finding: detection, actions, notification
// and scheduling read it, none of them owns it. The detector kinds a file may name, and the
// thresholds each takes, come from package rules through the Detectors interface passed to Load.
package config
