package actions

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/finding"
)

// refusals gathers the guard's refusals by (rule, reason) and reports each group to the
// notifier once per window, with the number of actions it covers: a storm of 50 stuck pods
// against a budget of 5 gives one notice saying 45 were refused, not 45 notices.
//
// A group is reported when no refusal joined it for quiet (the storm is over), or maxDelay
// after its first refusal (a storm that does not end). Replicas share the once-per-window rule
// through a claim of "refusal.<rule>.<reason>" with the window as TTL; a group whose claim is
// taken (this window was reported already, here or by another replica) keeps counting and is
// reported when the claim has expired, so no refusal goes uncounted.
type refusals struct {
	window, quiet, maxDelay time.Duration

	mu     sync.Mutex
	groups map[refusalKey]*refusalGroup
}

type refusalKey struct {
	rule   string
	reason Reason
}

type refusalGroup struct {
	count       int
	first, last time.Time
	action      finding.ActionType
	message     string          // the newest refusal's message
	sample      finding.Finding // the newest refused finding
}

func newRefusals(window, quiet, maxDelay time.Duration) *refusals {
	return &refusals{window: window, quiet: quiet, maxDelay: maxDelay, groups: map[refusalKey]*refusalGroup{}}
}

// add counts one refused action.
func (r *refusals) add(f *finding.Finding, action finding.ActionType, err error, now time.Time) {
	reason, _ := ReasonOf(err)
	k := refusalKey{rule: f.Rule, reason: reason}
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[k]
	if g == nil {
		g = &refusalGroup{first: now}
		r.groups[k] = g
	}
	g.count++
	g.last, g.action, g.message, g.sample = now, action, err.Error(), *f
}

// flush reports the groups that are due (all of them with force), each when it wins its
// window's claim.
func (r *refusals) flush(ctx context.Context, now time.Time, force bool, claim Claimer,
	notify func(context.Context, *finding.Notice, *audit.RefusalRecord) error, log *zap.Logger) {
	r.mu.Lock()
	var due []refusalKey
	for k, g := range r.groups {
		if force || now.Sub(g.last) >= r.quiet || now.Sub(g.first) >= r.maxDelay {
			due = append(due, k)
		}
	}
	r.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if due[i].rule != due[j].rule {
			return due[i].rule < due[j].rule
		}
		return due[i].reason < due[j].reason
	})
	for _, k := range due {
		key := "refusal." + tokenKey(k.rule) + "." + tokenKey(string(k.reason))
		won, err := claim.Claim(ctx, key, max(r.window, time.Second))
		if err != nil {
			log.Warn("claiming a refusal notice failed; retrying", zap.String("key", key), zap.Error(err))
			continue
		}
		if !won {
			continue // reported in this window already; keep counting for the next one
		}
		r.mu.Lock()
		g := r.groups[k]
		delete(r.groups, k)
		r.mu.Unlock()
		if g == nil {
			continue
		}
		n := &finding.Notice{
			Type:    finding.NoticeRefusal,
			Finding: &g.sample,
			Outcome: &finding.Outcome{Result: finding.ResultRefused, Reason: k.reason, At: g.last, Message: fmt.Sprintf(
				"rule %s: %d %s action(s) refused since %s: %s (latest: %s)",
				k.rule, g.count, g.action, g.first.UTC().Format("15:04:05Z"), g.message, g.sample.Name())},
			Count: g.count,
		}
		rec := &audit.RefusalRecord{Rule: k.rule, Reason: k.reason, Action: g.action, Count: g.count, First: g.first, Last: g.last, Message: g.message}
		if err := notify(ctx, n, rec); err != nil {
			log.Warn("refusal notice not delivered; retrying", zap.String("rule", k.rule), zap.String("reason", string(k.reason)), zap.Error(err))
			_ = claim.Release(context.WithoutCancel(ctx), key)
			r.mu.Lock()
			if cur := r.groups[k]; cur != nil {
				// Refusals that came meanwhile join the undelivered ones.
				g.count += cur.count
				g.last, g.message, g.sample = cur.last, cur.message, cur.sample
			}
			r.groups[k] = g
			r.mu.Unlock()
		}
	}
}

// tokenKey makes a KV-safe key token of a rule name or reason (already DNS labels in
// practice).
func tokenKey(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
