package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// Policy is what rules.yaml allows: budgets and cooldowns.
type Policy struct {
	// Total and PerNamespace are the global budgets; nil means none.
	Total        *Limit
	PerNamespace *Limit
	// Cooldown is the minimum time between two actions on the same target; 0 turns it off.
	Cooldown time.Duration
	// Rules holds each rule's own budget and cooldown, by rule name.
	Rules map[string]RulePolicy
}

// RulePolicy is one rule's budget and cooldown.
type RulePolicy struct {
	Budget *Limit
	// Cooldown overrides Policy.Cooldown when set.
	Cooldown *time.Duration
}

// cooldown is the cooldown of a rule.
func (p Policy) cooldown(rule string) time.Duration {
	if rp, ok := p.Rules[rule]; ok && rp.Cooldown != nil {
		return *rp.Cooldown
	}
	return p.Cooldown
}

// Rechecker re-evaluates a finding on the pod as just fetched from the API: the finding still
// holds, or a phrase says why not ("the pod is Running"). The app implements it with the
// rules engine, so a pod that recovered is not deleted.
type Rechecker interface {
	Recheck(ctx context.Context, f *finding.Finding, pod *corev1.Pod) (holds bool, why string)
}

// RecheckerFunc adapts a function to a Rechecker.
type RecheckerFunc func(ctx context.Context, f *finding.Finding, pod *corev1.Pod) (bool, string)

// Recheck calls f.
func (fn RecheckerFunc) Recheck(ctx context.Context, f *finding.Finding, pod *corev1.Pod) (bool, string) {
	return fn(ctx, f, pod)
}

// Namespaces the guard always protects, besides podmedic's own.
var alwaysProtected = []string{"kube-system"}

// Owner kinds whose pods are never deleted or evicted unless the action's allow_owner_kinds
// param names them: a StatefulSet pod carries an identity and storage (a forced delete on a
// dead node can run two of them at once), a DaemonSet pod comes back on the same node at once.
var guardedOwnerKinds = []string{"StatefulSet", "DaemonSet"}

// GuardOptions configure NewGuard.
type GuardOptions struct {
	// Client reads targets for re-verification (never a cache).
	Client kubernetes.Interface
	// Executor takes the actions (usually Executors of DeletePod, EvictPod, ...).
	Executor Executor
	// DryRun swaps Executor for a Recording executor, keeps budgets, cooldowns and markers
	// apart from the real ones, and writes no Events, so a dry run reports what would happen
	// without changing anything in the cluster, and without spending what a real run would
	// need.
	DryRun bool
	Policy Policy
	// KV holds the budgets and the markers of pods podmedic deleted.
	KV KV
	// Claimer holds the cooldowns.
	Claimer Claimer
	// Rechecker re-evaluates a pod's finding before acting on it; nil assumes it holds.
	Rechecker Rechecker
	// Namespace is podmedic's own namespace, always protected; default OwnNamespace(
	// ServiceAccountDir): $POD_NAMESPACE, else the service account's namespace file.
	Namespace string
	// ServiceAccountDir holds the pod's service account files; default
	// /var/run/secrets/kubernetes.io/serviceaccount.
	ServiceAccountDir string
	// Protected are more namespaces where podmedic never acts (kube-system always is).
	Protected []string
	// Events records an Event on the target for each executed, failed or refused action.
	Events events.EventRecorder
	// Now is the clock; default time.Now.
	Now     func() time.Time
	Metrics *Metrics
	Logger  *zap.Logger
}

// Guard is the one chokepoint every action passes: mode, protected namespaces, owner policy,
// re-verification of the target against the API, budgets, cooldown, then the executor (the
// recording one in dry-run). Each refusal is a typed error (see Refusal), counted in
// podmedic_actions_total and podmedic_action_refusals_total, and written as an Event on the
// target. It is safe for concurrent use.
type Guard struct {
	client    kubernetes.Interface
	exec      Executor
	result    string // ResultExecuted, or ResultDryRun
	prefix    string // of budget, cooldown and marker keys
	policy    atomic.Pointer[Policy]
	kv        KV
	budgets   *Budgets
	claimer   Claimer
	recheck   Rechecker
	protected []string
	events    events.EventRecorder
	now       func() time.Time
	metrics   *Metrics
	log       *zap.Logger
}

// NewGuard returns a guard.
func NewGuard(o GuardOptions) (*Guard, error) {
	if o.Client == nil || o.KV == nil || o.Claimer == nil {
		return nil, errors.New("guard: Client, KV and Claimer are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Namespace == "" {
		o.Namespace = OwnNamespace(o.ServiceAccountDir)
	}
	if o.Namespace == "" {
		o.Logger.Warn("podmedic's own namespace is unknown (no POD_NAMESPACE, no service account namespace file): " +
			"it is not protected from podmedic's actions; set POD_NAMESPACE (the chart does)")
	}
	g := &Guard{
		client: o.Client, exec: o.Executor, result: finding.ResultExecuted, kv: o.KV,
		claimer: o.Claimer, recheck: o.Rechecker, events: o.Events, now: o.Now, metrics: o.Metrics, log: o.Logger,
	}
	g.SetPolicy(o.Policy)
	if g.exec == nil {
		g.exec = Executors{}
	}
	if o.DryRun {
		d, _ := g.exec.(Describer)
		g.exec, g.result, g.prefix, g.events = &Recording{Describer: d}, finding.ResultDryRun, "dry-run.", nil
	}
	g.budgets = NewBudgets(o.KV, g.prefix, o.Now)
	g.protected = append(slices.Clone(alwaysProtected), o.Protected...)
	if o.Namespace != "" {
		g.protected = append(g.protected, o.Namespace)
	}
	return g, nil
}

// SetPolicy replaces the budgets and cooldowns (a reload of rules.yaml). Actions already
// counted stay counted.
func (g *Guard) SetPolicy(p Policy) { g.policy.Store(&p) }

// Policy returns the budgets and cooldowns in force.
func (g *Guard) Policy() Policy { return *g.policy.Load() }

// DryRun reports whether the guard records instead of executing.
func (g *Guard) DryRun() bool { return g.result == finding.ResultDryRun }

// Advisory reports whether a request's action is advice only, as its executor says (Adviser):
// a memory proposal for a target podmedic neither patches nor overrides (a plain Job, a bare
// pod that is not an Airflow task's, a SparkApplication without --patch-spark-applications);
// approving it records the decision.
func (g *Guard) Advisory(r *Request) bool {
	a, ok := g.exec.(Adviser)
	return ok && a.Advises(r)
}

// Protected reports whether the guard never acts in namespace ns.
func (g *Guard) Protected(ns string) bool { return slices.Contains(g.protected, ns) }

// Do takes one action if every check passes, and returns its outcome: executed (or dry-run),
// failed (the executor's error), or refused (a Refusal). The error is nil only when the action
// was taken. An error wrapping ErrNotAttempted (the store or the API did not answer before
// anything was executed) is neither counted nor recorded as a failed action: try again.
func (g *Guard) Do(ctx context.Context, r *Request) (finding.Outcome, error) {
	msg, err := g.do(ctx, r)
	out := finding.Outcome{Result: g.result, Message: msg, At: g.now()}
	reason, refused := ReasonOf(err)
	switch {
	case errors.Is(err, ErrNotAttempted):
		// Nothing was done: no Event, no failed action; the caller tries again.
		out.Result, out.Message = finding.ResultFailed, err.Error()
		g.metrics.error("guard")
	case refused:
		out.Result, out.Message, out.Reason = finding.ResultRefused, err.Error(), reason
		g.metrics.refused(r.Action.Type, reason)
		g.event(r, corev1.EventTypeWarning, EventRefused, "Refused: %s", err.Error())
	case err != nil:
		out.Result, out.Message = finding.ResultFailed, err.Error()
		g.metrics.action(r.Action.Type, finding.ResultFailed)
		g.event(r, corev1.EventTypeWarning, EventFailed, "Failed: %s", err.Error())
	default:
		g.metrics.action(r.Action.Type, g.result)
		g.event(r, corev1.EventTypeNormal, EventExecuted, "%s", msg)
		if rf, ok := g.exec.(Referrer); ok && g.result == finding.ResultExecuted {
			out.Override = rf.Ref(r)
		}
	}
	g.log.Info("action", zap.String("id", r.ID), zap.String("type", string(r.Action.Type)),
		zap.String("target", r.Target.String()), zap.String("result", out.Result), zap.String("message", out.Message),
		zap.String("approved_by", r.ApprovedBy))
	return out, err
}

func (g *Guard) do(ctx context.Context, r *Request) (string, error) {
	if err := g.Admit(ctx, r, true); err != nil {
		return "", err
	}
	// An exhausted budget refuses before the target is read from the API.
	if err := g.budgets.Check(ctx, r.ID, g.scopes(r)); err != nil {
		return "", notAttempted(err)
	}
	if err := g.verify(ctx, r); err != nil {
		return "", notAttempted(err)
	}
	release, err := g.budgets.Reserve(ctx, r.ID, g.scopes(r))
	if err != nil {
		return "", notAttempted(err)
	}
	unclaim, settle, err := g.cool(ctx, r)
	if err != nil {
		g.giveBack(release)
		return "", notAttempted(err)
	}
	msg, err := g.exec.Execute(ctx, r)
	if err != nil {
		if IsRefusal(err) {
			// The API said for sure that nothing happened (the pod was gone or had changed):
			// the action does not count. Other failures (a timeout, a 5xx) may have done
			// something; they keep their budget slot and cooldown.
			g.giveBack(release)
			g.giveBack(unclaim)
			return "", err
		}
		g.giveBack(settle)
		return "", err
	}
	g.mark(ctx, r)
	g.giveBack(settle)
	return msg, nil
}

// Admit runs the checks that need no budget: the mode (executing needs auto mode or an
// approval, a forced delete always an approval), the protected namespaces, and the owner
// policy of a pod action (on r.Pod when set). With executing false it answers whether the
// action may be proposed for approval.
func (g *Guard) Admit(_ context.Context, r *Request, executing bool) error {
	a := r.Action
	switch {
	case a.Type == finding.ActionNotify || a.Mode == finding.ModeNotify || a.Mode == "":
		return refuse(ErrNotifyOnly, ReasonNotifyOnly, "rule %s only notifies; nothing to execute", ruleOf(r))
	case executing && a.Mode == finding.ModeApprove && r.ApprovedBy == "":
		return refuse(ErrNotApproved, ReasonNotApproved, "%s on %s needs an approval", a.Type, r.Target)
	case executing && a.Params["force"] == "true" && r.ApprovedBy == "":
		return refuse(ErrForceNeedsApproval, ReasonForceNeedsApproval, "a forced delete of %s needs an approval", r.Target)
	}
	if ns := r.Target.Namespace; g.Protected(ns) {
		return &ProtectedNamespaceError{Namespace: ns}
	}
	if r.Pod != nil && isPodAction(a.Type) {
		return ownerPolicy(r, r.Pod)
	}
	return nil
}

func isPodAction(t finding.ActionType) bool {
	return t == finding.ActionDeletePod || t == finding.ActionEvictPod
}

// AnnotationIgnore set to "true" on a pod means podmedic never acts on it.
const AnnotationIgnore = "podmedic.io/ignore"

// criticalPriorityClasses are the priority classes of the pods the cluster itself runs on.
var criticalPriorityClasses = []string{"system-cluster-critical", "system-node-critical"}

// ownerPolicy refuses to delete or evict a pod that opted out, that the cluster runs on, or
// that no controller would replace sensibly.
func ownerPolicy(r *Request, pod *corev1.Pod) error {
	name := pod.Namespace + "/" + pod.Name
	if strings.EqualFold(pod.Annotations[AnnotationIgnore], "true") {
		return &OwnerPolicyError{Pod: name, Why: fmt.Sprintf("carries %s: \"true\": podmedic never acts on it", AnnotationIgnore)}
	}
	if pc := pod.Spec.PriorityClassName; slices.Contains(criticalPriorityClasses, pc) {
		return &OwnerPolicyError{Pod: name, Why: fmt.Sprintf("has priority class %s: the cluster runs on it", pc)}
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return &OwnerPolicyError{Pod: name, OwnerKind: "Node", Why: "is a static (mirror) pod: deleting it through the API does nothing"}
	}
	// The controller reference is trusted without reading the owner: a pod whose owners are
	// all absent (or whose owner's name now holds another uid) is deleted by the garbage
	// collector itself (kube-controller-manager, garbagecollector.go attemptToDeleteItem), so
	// a forged reference cannot keep a bare pod alive as "owned" for podmedic to act on.
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		f := r.Finding
		if f != nil && (f.Airflow != nil || f.Spark != nil) {
			return nil // Airflow and Spark retry their own pods
		}
		return &OwnerPolicyError{Pod: name, Why: "is a bare pod that no controller recreates, and neither an Airflow nor a Spark pod"}
	}
	if ref.Kind == "Node" {
		return &OwnerPolicyError{Pod: name, OwnerKind: "Node", Why: "is a static (mirror) pod: deleting it through the API does nothing"}
	}
	if slices.Contains(guardedOwnerKinds, ref.Kind) && !allowedOwner(r.Action, ref.Kind) {
		return &OwnerPolicyError{Pod: name, OwnerKind: ref.Kind,
			Why: fmt.Sprintf("is owned by %s %s; podmedic does not %s its pods unless the rule's allow_owner_kinds names %s",
				ref.Kind, ref.Name, strings.TrimSuffix(string(r.Action.Type), "-pod"), ref.Kind)}
	}
	return nil
}

// allowedOwner reports whether the action's allow_owner_kinds param (comma separated) names
// kind.
func allowedOwner(a finding.Action, kind string) bool {
	for _, k := range strings.Split(a.Params["allow_owner_kinds"], ",") {
		if strings.TrimSpace(k) == kind {
			return true
		}
	}
	return false
}

// verify fetches the target from the API and checks that it is still the object the action
// was planned for and that the finding still holds.
func (g *Guard) verify(ctx context.Context, r *Request) error {
	switch r.Action.Type {
	case finding.ActionDeletePod, finding.ActionEvictPod:
		pod, err := g.fetchPod(ctx, r)
		if err != nil {
			return err
		}
		if pod == nil {
			return &TargetGoneError{Target: r.Target.String()}
		}
		if err := ownerPolicy(r, pod); err != nil {
			return err
		}
		if f := r.Finding; f != nil && f.Kind == finding.Evicted && pod.Status.Phase == corev1.PodRunning && pod.DeletionTimestamp == nil {
			// An eviction finding is never acted on while the pod runs: whatever said it was
			// evicted (a condition set ahead of a disruption that did not happen), it is not.
			return &NoLongerHoldsError{Target: r.Target.String(), Why: "the pod is Running, not evicted"}
		}
		return g.holds(ctx, r, pod)
	case finding.ActionProposeMemoryLimit:
		if g.Advisory(r) {
			return refuse(ErrNoExecutor, ReasonNoExecutor, "%s is advisory: podmedic does not patch %s", r.ID, r.Target)
		}
		if !Patchable(r.Target) {
			// A memory override of an Airflow task: it is for the task's next tries, whose
			// pods do not exist yet; the OOM-killed pod may be gone or replaced already. A
			// SparkApplication is verified by its executor, with the read it patches against.
			return nil
		}
		return verifyWorkload(ctx, g.client, r)
	case finding.ActionAirflowClearTask:
		// The task instance is the target; Airflow decides with only_failed. The worker pod
		// is re-checked when it is still there (it usually is: Airflow keeps failed pods).
		f := r.Finding
		if f == nil || f.Pod == "" {
			return nil
		}
		pod, err := g.getPod(ctx, f.Namespace, f.Pod)
		if err != nil || pod == nil || string(pod.UID) != f.UID {
			return err
		}
		return g.holds(ctx, r, pod)
	}
	return nil
}

// fetchPod reads the target pod and checks UID and (when pinned) resourceVersion. It returns
// nil when the pod does not exist.
func (g *Guard) fetchPod(ctx context.Context, r *Request) (*corev1.Pod, error) {
	pod, err := g.getPod(ctx, r.Target.Namespace, r.Target.Name)
	if err != nil || pod == nil {
		return nil, err
	}
	t := r.Target
	if t.UID != "" && string(pod.UID) != t.UID {
		return nil, &TargetChangedError{Target: t.String(), What: fmt.Sprintf("was replaced (uid %s -> %s)", t.UID, pod.UID)}
	}
	if t.ResourceVersion != "" && pod.ResourceVersion != t.ResourceVersion {
		return nil, &TargetChangedError{Target: t.String(),
			What: fmt.Sprintf("was modified since the proposal (resourceVersion %s -> %s)", t.ResourceVersion, pod.ResourceVersion)}
	}
	r.Pod = pod
	return pod, nil
}

func (g *Guard) getPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	pod, err := g.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	}
	return pod, nil
}

func (g *Guard) holds(ctx context.Context, r *Request, pod *corev1.Pod) error {
	if g.recheck == nil || r.Finding == nil {
		return nil
	}
	if ok, why := g.recheck.Recheck(ctx, r.Finding, pod); !ok {
		if why == "" {
			why = fmt.Sprintf("the %s finding no longer holds", r.Finding.Kind)
		}
		return &NoLongerHoldsError{Target: r.Target.String(), Why: why}
	}
	return nil
}

// scopes are the budgets an action spends.
func (g *Guard) scopes(r *Request) []BudgetScope {
	var out []BudgetScope
	rule, policy := ruleOf(r), g.Policy()
	if rp, ok := policy.Rules[rule]; ok && rp.Budget != nil {
		out = append(out, BudgetScope{Scope: ScopeRule, Name: rule, Limit: *rp.Budget})
	}
	if l := policy.PerNamespace; l != nil && r.Target.Namespace != "" {
		out = append(out, BudgetScope{Scope: ScopeNamespace, Name: r.Target.Namespace, Limit: *l})
	}
	if l := policy.Total; l != nil {
		out = append(out, BudgetScope{Scope: ScopeTotal, Limit: *l})
	}
	return out
}

// cool claims the target's cooldown; unclaim gives it back, settle keeps it once the action
// was attempted. With an OwnedClaimer the claim belongs to the request's id until settled, so
// the same request retried after an interruption between claim and action (a killed replica,
// a NATS node gone with the answer) is not refused by its own cooldown.
func (g *Guard) cool(ctx context.Context, r *Request) (unclaim, settle func(context.Context) error, err error) {
	nop := func(context.Context) error { return nil }
	d := g.Policy().cooldown(ruleOf(r))
	if d <= 0 {
		return nop, nop, nil
	}
	d = max(d, time.Second)
	key := g.prefix + "cooldown." + targetKey(r.Target)
	owned, isOwned := g.claimer.(OwnedClaimer)
	var won bool
	if isOwned {
		won, err = owned.ClaimFor(ctx, key, r.ID, d)
	} else {
		won, err = g.claimer.Claim(ctx, key, d)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cooldown of %s: %w", r.Target, err)
	}
	if !won {
		return nil, nil, &CooldownError{Target: r.Target.String(), Cooldown: d}
	}
	settle = nop
	if isOwned {
		settle = func(ctx context.Context) error { return owned.Settle(ctx, key, r.ID, d) }
	}
	return func(ctx context.Context) error { return g.claimer.Release(ctx, key) }, settle, nil
}

func (g *Guard) giveBack(release func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := release(ctx); err != nil {
		g.log.Warn("giving back a budget slot or cooldown failed; it expires with its window", zap.Error(err))
	}
}

// actedMarker records that podmedic deleted or evicted a pod.
type actedMarker struct {
	ID     string             `json:"id"`
	Action finding.ActionType `json:"action"`
	At     time.Time          `json:"at"`
}

// mark remembers the pods podmedic deleted or evicted, so that what the pod does afterwards
// (terminating slowly, a node that never confirms) is not a new finding to act on.
func (g *Guard) mark(ctx context.Context, r *Request) {
	if !isPodAction(r.Action.Type) || r.Pod == nil {
		return
	}
	data, _ := json.Marshal(actedMarker{ID: r.ID, Action: r.Action.Type, At: g.now()})
	if _, err := g.kv.Create(ctx, g.prefix+"acted."+string(r.Pod.UID), data); err != nil && !errors.Is(err, ErrKeyExists) {
		g.log.Warn("recording the pod podmedic acted on failed", zap.String("pod", r.Target.String()), zap.Error(err))
	}
}

// ActedOn reports whether podmedic deleted or evicted the pod with this UID.
func (g *Guard) ActedOn(ctx context.Context, uid string) (bool, error) {
	m, err := g.actedOn(ctx, uid)
	return m != nil, err
}

// actedOn returns the marker of the pod with this UID, or nil when podmedic did not act on it.
func (g *Guard) actedOn(ctx context.Context, uid string) (*actedMarker, error) {
	if uid == "" {
		return nil, nil
	}
	data, _, err := g.kv.Get(ctx, g.prefix+"acted."+uid)
	switch {
	case err == nil:
		var m actedMarker
		_ = json.Unmarshal(data, &m) // an unreadable marker still says podmedic acted
		return &m, nil
	case errors.Is(err, ErrKeyNotFound):
		return nil, nil
	}
	return nil, err
}

// PruneMarkers deletes the markers of pods acted on before cutoff.
func (g *Guard) PruneMarkers(ctx context.Context, cutoff time.Time) error {
	keys, err := g.kv.Keys(ctx, g.prefix+"acted.")
	if err != nil {
		return err
	}
	for _, k := range keys {
		data, rev, err := g.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var m actedMarker
		if json.Unmarshal(data, &m) != nil || m.At.Before(cutoff) {
			_ = g.kv.Delete(ctx, k, rev)
		}
	}
	return nil
}

func (g *Guard) event(r *Request, eventtype, reason, note string, args ...any) {
	if g.events == nil {
		return
	}
	who := "auto mode"
	if r.ApprovedBy != "" {
		who = "approved by " + r.ApprovedBy
	}
	emit(g.events, r.Target, r.Finding, eventtype, reason, r.Action.Type,
		fmt.Sprintf(note, args...)+" ("+who+why(r.Finding)+")")
}

func ruleOf(r *Request) string {
	if r.Finding == nil {
		return ""
	}
	return r.Finding.Rule
}

// targetKey is a KV-safe key of a target (kind, namespace, name): cooldowns are per name, so
// a pod recreated under the same name is the same target.
func targetKey(t finding.Target) string {
	h := sha256.Sum256([]byte(t.Kind + "\x00" + t.Namespace + "\x00" + t.Name))
	return hex.EncodeToString(h[:16])
}

// PolicyOf maps rules.yaml's budgets and cooldowns onto the guard's policy.
func PolicyOf(cfg *config.Config) Policy {
	limit := func(b *config.Budget) *Limit {
		if b == nil {
			return nil
		}
		return &Limit{Max: b.Max, Window: b.Window.Duration}
	}
	p := Policy{Total: limit(cfg.Budgets.Total), PerNamespace: limit(cfg.Budgets.PerNamespace),
		Cooldown: cfg.Cooldown.Duration, Rules: map[string]RulePolicy{}}
	for _, r := range cfg.Rules {
		if r.Action == nil {
			continue
		}
		rp := RulePolicy{Budget: limit(r.Action.Budget)}
		if r.Action.Cooldown != nil {
			d := r.Action.Cooldown.Duration
			rp.Cooldown = &d
		}
		p.Rules[r.Name] = rp
	}
	return p
}

// DefaultServiceAccountDir is where a pod's service account files are mounted.
const DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// OwnNamespace is the namespace podmedic runs in: $POD_NAMESPACE, else the namespace file of
// the pod's service account in dir (default DefaultServiceAccountDir), else "" (not in a pod).
func OwnNamespace(dir string) string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if dir == "" {
		dir = DefaultServiceAccountDir
	}
	if b, err := os.ReadFile(filepath.Join(dir, "namespace")); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}
