package actions

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podmedic/podmedic/finding"
)

// Request is one action the guard is asked to take.
type Request struct {
	// ID identifies the action: its proposal id. Budgets count it once.
	ID      string
	Finding *finding.Finding
	Action  finding.Action
	// Target is what the action changes, as captured when it was planned (proposal time).
	// A non-empty UID and ResourceVersion pin the object: a replaced or modified target is
	// not touched.
	Target finding.Target
	// ApprovedBy is who approved the action; empty in auto mode.
	ApprovedBy string

	// Pod is the target pod as the guard just fetched it from the API (not a cache), when the
	// action is about a pod that still exists. Set by the guard before Execute.
	Pod *corev1.Pod
	// Workload is the owning workload as just fetched (Deployment, StatefulSet, DaemonSet,
	// CronJob) for a memory limit patch. Set by the guard before Execute.
	Workload runtime.Object
}

// Executor takes one action that the guard has allowed and returns what it did in a
// sentence ("pod airflow/etl-1 deleted"). An error means the action failed.
type Executor interface {
	Execute(ctx context.Context, r *Request) (string, error)
}

// ExecutorFunc adapts a function to an Executor.
type ExecutorFunc func(ctx context.Context, r *Request) (string, error)

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, r *Request) (string, error) { return f(ctx, r) }

// Describer is implemented by executors that can say what they would do, for dry-run.
type Describer interface {
	Describe(r *Request) string
}

// Executors dispatches a request to the executor of its action type. A missing type is a
// refusal (ErrNoExecutor).
type Executors map[finding.ActionType]Executor

var (
	_ Executor  = Executors(nil)
	_ Describer = Executors(nil)
)

// Execute implements Executor.
func (es Executors) Execute(ctx context.Context, r *Request) (string, error) {
	e, ok := es[r.Action.Type]
	if !ok {
		return "", refuse(ErrNoExecutor, ReasonNoExecutor, "no executor for %s is configured", r.Action.Type)
	}
	return e.Execute(ctx, r)
}

// Describe implements Describer.
func (es Executors) Describe(r *Request) string {
	if d, ok := es[r.Action.Type].(Describer); ok {
		return d.Describe(r)
	}
	return fmt.Sprintf("%s on %s", r.Action.Type, r.Target)
}

// Recording is the dry-run executor: it records each request and changes nothing. Wrapping
// the real executors only to describe what they would do, it is swapped in for them as a
// whole; no action checks a dry-run flag.
type Recording struct {
	// Describe says what would be done; nil says "<type> on <target>".
	Describer Describer

	mu    sync.Mutex
	calls []Request
}

var _ Executor = (*Recording)(nil)

// Execute implements Executor.
func (r *Recording) Execute(_ context.Context, req *Request) (string, error) {
	r.mu.Lock()
	r.calls = append(r.calls, *req)
	r.mu.Unlock()
	what := fmt.Sprintf("%s on %s", req.Action.Type, req.Target)
	if r.Describer != nil {
		what = r.Describer.Describe(req)
	}
	return "dry run: would " + what, nil
}

// Calls returns the recorded requests.
func (r *Recording) Calls() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.calls...)
}

// Nop is the executor of notify: nothing to change.
var Nop = ExecutorFunc(func(context.Context, *Request) (string, error) { return "nothing to do", nil })

// Adviser is an executor that only advises on some requests: Advises reports whether it
// changes nothing for r (a memory proposal for a target it neither patches nor overrides);
// approving such a request records the decision.
type Adviser interface {
	Advises(r *Request) bool
}

// Advises implements Adviser: whether the executor of r's action type advises on r (an
// executor that is not an Adviser always acts).
func (es Executors) Advises(r *Request) bool {
	a, ok := es[r.Action.Type].(Adviser)
	return ok && a.Advises(r)
}

// Referrer is an executor whose action leaves something behind that a later decision may undo
// (a memory override): Ref names it for r, "" when r leaves nothing.
type Referrer interface {
	Ref(r *Request) string
}

// Ref implements Referrer: the executor of r's action type's Ref.
func (es Executors) Ref(r *Request) string {
	if rf, ok := es[r.Action.Type].(Referrer); ok {
		return rf.Ref(r)
	}
	return ""
}
