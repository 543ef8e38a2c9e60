package finding

import (
	"time"
)

// ProposalState is where a proposal is in its life:
//
//	pending -> approved -> executed | failed
//	pending -> denied
//	pending -> expired
type ProposalState string

const (
	StatePending  ProposalState = "pending"
	StateApproved ProposalState = "approved"
	StateDenied   ProposalState = "denied"
	StateExpired  ProposalState = "expired"
	StateExecuted ProposalState = "executed"
	StateFailed   ProposalState = "failed"
)

// ProposalStates lists every state.
func ProposalStates() []ProposalState {
	return []ProposalState{StatePending, StateApproved, StateDenied, StateExpired, StateExecuted, StateFailed}
}

// Final reports whether no further transition is possible.
func (s ProposalState) Final() bool {
	return s == StateDenied || s == StateExpired || s == StateExecuted || s == StateFailed
}

// CanMove reports whether the state machine allows s -> to.
func (s ProposalState) CanMove(to ProposalState) bool {
	switch s {
	case StatePending:
		return to == StateApproved || to == StateDenied || to == StateExpired
	case StateApproved:
		return to == StateExecuted || to == StateFailed
	}
	return false
}

// Proposal is an action waiting for (or past) a human decision. Its JSON form is what the
// proposals KV bucket stores.
type Proposal struct {
	ID        string        `json:"id"`
	Finding   Finding       `json:"finding"`
	Action    Action        `json:"action"`
	State     ProposalState `json:"state"`
	CreatedAt time.Time     `json:"created_at"`
	ExpiresAt time.Time     `json:"expires_at"`
	// Target is what the action acts on, captured at proposal time and re-verified before
	// executing: a pod that changed (new UID, new resourceVersion) is not touched.
	Target Target `json:"target"`
	// DecidedBy is who approved or denied (a Slack user id, "inbox:<name>", "system").
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// Outcome of the execution, or why the proposal failed or expired.
	Outcome *Outcome `json:"outcome,omitempty"`
	// Advice is the exact change a human makes when podmedic cannot make it itself: for a
	// memory limit proposal about a bare pod (an Airflow KubernetesExecutor worker) or a Job,
	// the executor_config pod_override or pod template snippet. Approving such a proposal
	// records the decision; nothing is patched.
	Advice string `json:"advice,omitempty"`
	// Revision is the KV revision the proposal was read at (compare-and-set).
	Revision uint64 `json:"-"`
}

// Target identifies the object an action changes.
type Target struct {
	Kind            string `json:"kind"` // Pod, Deployment, StatefulSet, ..., AirflowTaskInstance
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resource_version,omitempty"`
}

// String is "Kind namespace/name".
func (t Target) String() string {
	if t.Namespace == "" {
		return t.Kind + " " + t.Name
	}
	return t.Kind + " " + t.Namespace + "/" + t.Name
}

// Decided reports whether a human (or the expiry) has decided: any state but pending.
func (s ProposalState) Decided() bool { return s != StatePending }

// Outcome is the result of taking (or refusing) an action.
type Outcome struct {
	// Result is executed, failed, refused, dry-run or recorded.
	Result string `json:"result"`
	// Message says what happened in a sentence, e.g. "pod deleted", "budget exhausted:
	// 5 actions of rule init-stuck in the last 10m0s".
	Message string `json:"message"`
	// Reason is why the action was refused (Result refused), e.g. budget or cooldown.
	Reason Reason `json:"reason,omitempty"`
	// Override is the memory override the action stored (Result executed), which a later
	// decision may revoke.
	Override string    `json:"override,omitempty"`
	At       time.Time `json:"at"`
}

// Reason names a kind of refusal by the guard: a metric label, the key under which refusals
// are reported together, and what the digest counts refusals by. The actions package defines
// the reasons.
type Reason string

// Outcome results.
const (
	ResultExecuted = "executed"
	ResultFailed   = "failed"
	ResultRefused  = "refused"
	ResultDryRun   = "dry-run"
	// ResultRecorded: an advisory proposal was approved; the decision is recorded and the
	// change (Proposal.Advice) is left to a human, nothing was changed in the cluster.
	ResultRecorded = "recorded"
)

// NoticeType says what a notice is about.
type NoticeType string

const (
	// NoticeFinding: a new finding, with its proposal (approve mode) or outcome (auto mode).
	NoticeFinding NoticeType = "finding"
	// NoticeDecision: a proposal changed state (approved, denied, expired, executed, failed);
	// notifiers update the message they posted for it.
	NoticeDecision NoticeType = "decision"
	// NoticeRefusal: the guard refused actions (budget, cooldown, scope); reported once per
	// rule and reason, not once per pod.
	NoticeRefusal NoticeType = "refusal"
	// NoticeReport: a scheduled job's report (a sweep's run, the on-call digest): Title and
	// Text, to Route.
	NoticeReport NoticeType = "report"
	// NoticeFollowUp: what became of an executed proposal's remedy later (the task's next try
	// started with the memory override the approval stored; it succeeded): Text, a line for the
	// thread of the proposal's message.
	NoticeFollowUp NoticeType = "followup"
)

// Notice is what the notifier is asked to deliver.
type Notice struct {
	Type     NoticeType `json:"type"`
	Finding  *Finding   `json:"finding,omitempty"`
	Proposal *Proposal  `json:"proposal,omitempty"`
	Outcome  *Outcome   `json:"outcome,omitempty"`
	// Count of findings a refusal covers.
	Count int `json:"count,omitempty"`
	// Title and Text of a report (plain text, lines aligned for a fixed-width font), and its
	// Route: a slack.routes name or a channel; empty for the default channel. A follow-up's
	// Text is one line about its Proposal.
	Title string `json:"title,omitempty"`
	Text  string `json:"text,omitempty"`
	Route string `json:"route,omitempty"`
}
