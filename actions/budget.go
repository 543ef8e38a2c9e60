package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Budget scopes.
const (
	ScopeRule      = "rule"
	ScopeNamespace = "namespace"
	ScopeTotal     = "total"
)

// Limit allows at most Max actions in any sliding Window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Budgets counts actions against sliding-window limits shared by every replica.
//
// Each scope (a rule, a namespace, the whole cluster) is one KV key holding the log of the
// actions inside its window: [{id, at}, ...], never more than Max entries. Reserving reads
// the log, drops the entries older than the window, refuses when Max remain, else appends and
// writes the log back with compare-and-set on the revision it read; a conflict (another
// replica or worker reserved at the same time) re-reads and decides again. So the check and
// the count are one atomic step and two replicas can never both take the last slot, the window
// slides exactly (no bucket boundaries where 2 x Max could pass), and the store holds O(Max)
// bytes per scope. An action spends its rule, namespace and total budgets in that order; when a
// later one refuses, the earlier reservations are given back.
//
// The alternative, one TTL key per action counted by prefix, needs a list of the bucket for
// every action and still races between counting and adding.
type Budgets struct {
	kv     KV
	prefix string
	now    func() time.Time
}

// NewBudgets keeps the budget logs in kv under prefix ("" or e.g. "dry-run.").
func NewBudgets(kv KV, prefix string, now func() time.Time) *Budgets {
	if now == nil {
		now = time.Now
	}
	return &Budgets{kv: kv, prefix: prefix, now: now}
}

type budgetLog struct {
	Entries []budgetEntry `json:"entries"`
}

type budgetEntry struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// BudgetScope is one budget an action spends.
type BudgetScope struct {
	Scope string // ScopeRule, ScopeNamespace or ScopeTotal
	Name  string // the rule or namespace; empty for total
	Limit Limit
}

func (s BudgetScope) key(prefix string) string {
	if s.Scope == ScopeTotal {
		return prefix + "budget.total"
	}
	return prefix + "budget." + s.Scope + "." + s.Name
}

const casAttempts = 100

// admit decides on the action id against the live entries of the scope's window: counted
// already (a retry keeps its slot), or a *BudgetError when no slot is left.
func (s BudgetScope) admit(entries []budgetEntry, id string) (counted bool, err error) {
	if slices.ContainsFunc(entries, func(e budgetEntry) bool { return e.ID == id }) {
		return true, nil
	}
	if len(entries) >= s.Limit.Max {
		return false, &BudgetError{Scope: s.Scope, Name: s.Name, Max: s.Limit.Max, Window: s.Limit.Window,
			NextSlot: entries[0].At.Add(s.Limit.Window)}
	}
	return false, nil
}

// Reserve spends one slot of every scope for the action id, or none: it returns a
// *BudgetError for the first scope that is exhausted, after giving back what it took. An id
// already counted in a scope is not counted twice (a retry of the same action). The returned
// release gives the slots back (the action was not taken after all).
func (b *Budgets) Reserve(ctx context.Context, id string, scopes []BudgetScope) (release func(context.Context) error, err error) {
	var taken []BudgetScope
	release = func(ctx context.Context) error {
		var errs []error
		for _, s := range taken {
			errs = append(errs, b.remove(ctx, s, id))
		}
		return errors.Join(errs...)
	}
	for _, s := range scopes {
		if s.Limit.Max <= 0 && s.Limit.Window <= 0 {
			continue // no such budget
		}
		if err := b.add(ctx, s, id); err != nil {
			if rerr := release(context.WithoutCancel(ctx)); rerr != nil {
				err = errors.Join(err, fmt.Errorf("giving back budget: %w", rerr))
			}
			return nil, err
		}
		taken = append(taken, s)
	}
	return release, nil
}

// Check returns a *BudgetError for the first scope that has no slot left for the action id
// now (an id counted already keeps its slot), reserving nothing. It is a cheap early refusal —
// a storm of 10,000 stuck pods against a budget of 20 is refused without reading 9,980 pods
// from the API — and Reserve still decides.
func (b *Budgets) Check(ctx context.Context, id string, scopes []BudgetScope) error {
	for _, s := range scopes {
		if s.Limit.Max <= 0 && s.Limit.Window <= 0 {
			continue // no such budget
		}
		log, _, err := b.read(ctx, s.key(b.prefix))
		if err != nil {
			return err
		}
		if _, err := s.admit(live(log.Entries, b.now(), s.Limit.Window), id); err != nil {
			return err
		}
	}
	return nil
}

// Used returns how many actions a scope counts in its window now.
func (b *Budgets) Used(ctx context.Context, s BudgetScope) (int, error) {
	log, _, err := b.read(ctx, s.key(b.prefix))
	if err != nil {
		return 0, err
	}
	return len(live(log.Entries, b.now(), s.Limit.Window)), nil
}

func (b *Budgets) add(ctx context.Context, s BudgetScope, id string) error {
	return b.update(ctx, s.key(b.prefix), func(log budgetLog) (budgetLog, bool, error) {
		now := b.now()
		entries := live(log.Entries, now, s.Limit.Window)
		if counted, err := s.admit(entries, id); counted || err != nil {
			return log, false, err
		}
		return budgetLog{Entries: append(entries, budgetEntry{ID: id, At: now})}, true, nil
	})
}

func (b *Budgets) remove(ctx context.Context, s BudgetScope, id string) error {
	return b.update(ctx, s.key(b.prefix), func(log budgetLog) (budgetLog, bool, error) {
		i := slices.IndexFunc(log.Entries, func(e budgetEntry) bool { return e.ID == id })
		if i < 0 {
			return log, false, nil
		}
		log.Entries = slices.Delete(log.Entries, i, i+1)
		return log, true, nil
	})
}

// update reads the log at key, asks change for the next one (write false: leave it as it is)
// and writes it with compare-and-set, re-reading and asking again after a conflict.
func (b *Budgets) update(ctx context.Context, key string, change func(budgetLog) (next budgetLog, write bool, err error)) error {
	var err error
	werr := wait.ExponentialBackoffWithContext(ctx, casBackoff(), func(ctx context.Context) (bool, error) {
		var (
			log   budgetLog
			rev   uint64
			next  budgetLog
			write bool
		)
		if log, rev, err = b.read(ctx, key); err != nil {
			return true, nil
		}
		if next, write, err = change(log); err != nil || !write {
			return true, nil
		}
		err = b.write(ctx, key, next, rev)
		conflict := errors.Is(err, ErrRevisionMismatch) || errors.Is(err, ErrKeyExists)
		return !conflict, nil
	})
	switch {
	case werr == nil:
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("budget %s: %w", key, ctx.Err())
	}
	return fmt.Errorf("budget %s: too much contention", key)
}

func (b *Budgets) read(ctx context.Context, key string) (budgetLog, uint64, error) {
	var log budgetLog
	data, rev, err := b.kv.Get(ctx, key)
	if errors.Is(err, ErrKeyNotFound) {
		return log, 0, nil
	}
	if err != nil {
		return log, 0, fmt.Errorf("read budget %s: %w", key, err)
	}
	if err := json.Unmarshal(data, &log); err != nil {
		// A log podmedic cannot read is replaced rather than blocking every action forever;
		// the worst case is a window that restarts empty.
		return budgetLog{}, rev, nil
	}
	return log, rev, nil
}

func (b *Budgets) write(ctx context.Context, key string, log budgetLog, rev uint64) error {
	data, err := json.Marshal(log)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = b.kv.Create(ctx, key, data)
	} else {
		_, err = b.kv.Update(ctx, key, data, rev)
	}
	return err
}

// live returns the entries inside the window ending at now, oldest first.
func live(entries []budgetEntry, now time.Time, window time.Duration) []budgetEntry {
	out := make([]budgetEntry, 0, len(entries))
	for _, e := range entries {
		if now.Sub(e.At) < window {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b budgetEntry) int { return a.At.Compare(b.At) })
	return out
}

// casBackoff spaces the compare-and-set attempts on one budget: 1 to 5 ms (jittered, so that
// replicas in conflict do not retry in lockstep), casAttempts times.
func casBackoff() wait.Backoff {
	return wait.Backoff{Duration: time.Millisecond, Factor: 1, Jitter: 4, Steps: casAttempts}
}
