// Package finding is podmedic's shared vocabulary: what a finding is (kind, target, task
// identity, evidence) and the action proposed for it. It is a leaf package: every stage of the
// flow (rules, actions, notifier) speaks it, and it imports none of them.
package finding
