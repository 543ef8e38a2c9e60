// Package actions holds podmedic's bounded actions (delete a pod, evict it, propose a higher
// memory limit, clear an Airflow task) and the planning that turns a finding into the exact
// parameters of its action.
package actions
