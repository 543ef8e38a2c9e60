package actions

import (
	"errors"
	"fmt"
	"time"

	"github.com/podmedic/podmedic/finding"
)

// Sentinels of the guard's refusals. Every refusal the guard returns is one of the typed
// errors below; each matches its sentinel with errors.Is and implements Refusal, so callers
// can tell a refusal (the guard said no, nothing was attempted) from a failure (the action was
// attempted and did not work):
//
//	var be *actions.BudgetError
//	if errors.As(err, &be) { ... be.Scope, be.Max ... }
//	if errors.Is(err, actions.ErrCooldown) { ... }
var (
	ErrNotifyOnly         = errors.New("the rule only notifies")
	ErrNotApproved        = errors.New("the action needs an approval")
	ErrForceNeedsApproval = errors.New("a forced delete needs an approval")
	ErrProtectedNamespace = errors.New("namespace is protected")
	ErrOwnerPolicy        = errors.New("owner policy forbids the action")
	ErrBudgetExhausted    = errors.New("budget exhausted")
	ErrCooldown           = errors.New("target in cooldown")
	ErrTargetGone         = errors.New("target no longer exists")
	ErrTargetChanged      = errors.New("target changed")
	ErrNoLongerHolds      = errors.New("finding no longer holds")
	ErrNoExecutor         = errors.New("no executor for the action")
)

// ErrNotAttempted wraps an error that stopped the guard before it executed anything and that
// is not a refusal: the store of budgets and cooldowns, or the API it re-verifies the target
// against, did not answer (a NATS node or the apiserver restarting). Nothing was done, nothing
// was spent, and the same request may be tried again.
var ErrNotAttempted = errors.New("not attempted")

// notAttempted marks err as ErrNotAttempted (refusals stay refusals).
func notAttempted(err error) error {
	if err == nil || IsRefusal(err) || errors.Is(err, ErrNotAttempted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNotAttempted, err)
}

// Reason names a kind of refusal: a metric label and the key under which refusals are
// reported together. It is the finding vocabulary's, so that an outcome carries it.
type Reason = finding.Reason

// Refusal reasons.
const (
	ReasonNotifyOnly         Reason = "notify-only"
	ReasonNotApproved        Reason = "not-approved"
	ReasonForceNeedsApproval Reason = "force-needs-approval"
	ReasonProtectedNamespace Reason = "protected-namespace"
	ReasonOwnerPolicy        Reason = "owner-policy"
	ReasonBudget             Reason = "budget"
	ReasonCooldown           Reason = "cooldown"
	ReasonTargetGone         Reason = "target-gone"
	ReasonTargetChanged      Reason = "target-changed"
	ReasonNoLongerHolds      Reason = "no-longer-holds"
	ReasonNoExecutor         Reason = "no-executor"
)

// Refusal is implemented by every error with which the guard refuses an action.
type Refusal interface {
	error
	Reason() Reason
}

// ReasonOf returns the reason of a refusal anywhere in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var r Refusal
	if errors.As(err, &r) {
		return r.Reason(), true
	}
	return "", false
}

// IsRefusal reports whether err is (or wraps) a refusal by the guard.
func IsRefusal(err error) bool {
	_, ok := ReasonOf(err)
	return ok
}

// refusal is a refusal with a sentinel and a message; the simple refusals use it directly.
type refusal struct {
	sentinel error
	reason   Reason
	msg      string
}

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == e.sentinel }
func (e *refusal) Reason() Reason       { return e.reason }

func refuse(sentinel error, reason Reason, format string, args ...any) error {
	return &refusal{sentinel: sentinel, reason: reason, msg: fmt.Sprintf(format, args...)}
}

// ProtectedNamespaceError: the target is in kube-system or podmedic's own namespace (or
// another namespace the guard protects).
type ProtectedNamespaceError struct{ Namespace string }

func (e *ProtectedNamespaceError) Error() string {
	return fmt.Sprintf("namespace %s is protected: podmedic never acts there", e.Namespace)
}
func (e *ProtectedNamespaceError) Is(target error) bool { return target == ErrProtectedNamespace }
func (e *ProtectedNamespaceError) Reason() Reason       { return ReasonProtectedNamespace }

// OwnerPolicyError: the pod's owner forbids deleting it (a StatefulSet or DaemonSet pod, a
// static pod, a bare pod that is neither an Airflow nor a Spark pod).
type OwnerPolicyError struct {
	Pod       string
	OwnerKind string // "" for a bare pod
	Why       string
}

func (e *OwnerPolicyError) Error() string {
	return fmt.Sprintf("owner policy: pod %s %s", e.Pod, e.Why)
}
func (e *OwnerPolicyError) Is(target error) bool { return target == ErrOwnerPolicy }
func (e *OwnerPolicyError) Reason() Reason       { return ReasonOwnerPolicy }

// BudgetError: a budget of the rule, the namespace or the whole cluster is spent.
type BudgetError struct {
	// Scope is "rule", "namespace" or "total"; Name the rule or namespace.
	Scope  string
	Name   string
	Max    int
	Window time.Duration
	// NextSlot is when the oldest counted action leaves the window.
	NextSlot time.Time
}

func (e *BudgetError) Error() string {
	var of string
	switch e.Scope {
	case ScopeRule:
		of = "of rule " + e.Name
	case ScopeNamespace:
		of = "in namespace " + e.Name
	default:
		of = "in total"
	}
	return fmt.Sprintf("budget exhausted: %d actions %s in the last %s", e.Max, of, e.Window)
}
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExhausted }
func (e *BudgetError) Reason() Reason       { return ReasonBudget }

// CooldownError: podmedic acted on the same target less than the cooldown ago.
type CooldownError struct {
	Target   string
	Cooldown time.Duration
}

func (e *CooldownError) Error() string {
	return fmt.Sprintf("cooldown: podmedic acted on %s less than %s ago", e.Target, e.Cooldown)
}
func (e *CooldownError) Is(target error) bool { return target == ErrCooldown }
func (e *CooldownError) Reason() Reason       { return ReasonCooldown }

// TargetGoneError: the target no longer exists.
type TargetGoneError struct{ Target string }

func (e *TargetGoneError) Error() string {
	return fmt.Sprintf("%s no longer exists; nothing done", e.Target)
}
func (e *TargetGoneError) Is(target error) bool { return target == ErrTargetGone }
func (e *TargetGoneError) Reason() Reason       { return ReasonTargetGone }

// TargetChangedError: the target exists but is not the object the action was planned for (a
// new UID: replaced; a new resourceVersion: modified since the proposal).
type TargetChangedError struct {
	Target string
	What   string // e.g. "was replaced (uid a -> b)"
}

func (e *TargetChangedError) Error() string {
	return fmt.Sprintf("%s %s; not touched", e.Target, e.What)
}
func (e *TargetChangedError) Is(target error) bool { return target == ErrTargetChanged }
func (e *TargetChangedError) Reason() Reason       { return ReasonTargetChanged }

// NoLongerHoldsError: re-evaluated on the live object, the finding no longer holds (the pod
// recovered, the limit was already raised).
type NoLongerHoldsError struct {
	Target string
	Why    string
}

func (e *NoLongerHoldsError) Error() string {
	return fmt.Sprintf("%s: %s; nothing done", e.Target, e.Why)
}
func (e *NoLongerHoldsError) Is(target error) bool { return target == ErrNoLongerHolds }
func (e *NoLongerHoldsError) Reason() Reason       { return ReasonNoLongerHolds }
