// Package actions holds podmedic's bounded actions (delete a pod, evict it, patch a higher
// memory limit, clear an Airflow task), the one guard every action passes, and the approval
// state of proposals.
//
// The Guard is the chokepoint: mode (auto, or an approval), protected namespaces, owner
// policy, re-verification of the target against the API just before acting (same UID, same
// resourceVersion when pinned, the finding still holds), budgets per rule, namespace and in
// total over a sliding window shared by replicas, and a cooldown per target. Every refusal is
// a typed error (ErrBudgetExhausted, ErrCooldown, ...). Dry-run swaps the executors for a
// Recording one.
//
// The Service is the stage the rule handler hands new findings to: auto mode acts at once,
// approve mode stores a proposal (pending -> approved|denied|expired -> executed|failed) in a
// compare-and-set store, so that of two racing approvals exactly one executes. Every
// transition is audited, written as a Kubernetes Event on the target, and notified.
//
// The planning of a memory limit (ProposeMemoryLimit) is here too; the rules engine asks it
// through its own rules.Planner interface, which MemoryPlanner implements. This package
// imports neither rules, nor the bus, nor the notifiers: it defines the small interfaces it
// needs (KV, Claimer, AuditPublisher, Rechecker, Notifier) and the app adapts them.
package actions
