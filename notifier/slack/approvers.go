package slack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// groupLister is what approvers need of Slack's API.
type groupLister interface {
	GetUserGroupMembersContext(ctx context.Context, group string, options ...slack.GetUserGroupMembersOption) ([]string, error)
}

// approvers decides who may approve or deny: listed users, and members of listed user groups
// (fetched with usergroups.users.list, cached for refresh; a user not found in a cache older
// than missRefresh triggers one early refresh, so someone just added need not wait).
type approvers struct {
	users   []string
	groups  []string
	refresh time.Duration
	// maxStale bounds how old a membership may be used while Slack cannot be asked: past it,
	// decisions are refused (fail closed) until Slack answers again.
	maxStale time.Duration
	api      groupLister
	m        *metrics
	log      *zap.Logger

	mu       sync.Mutex
	members  map[string]bool
	fetched  time.Time
	fetching chan struct{} // closed when the running fetch ends
}

const missRefresh = 30 * time.Second

// DefaultApproverMaxStale is how long cached group members are trusted while Slack's
// usergroups API fails.
const DefaultApproverMaxStale = time.Hour

func newApprovers(a Approvers, refresh, maxStale time.Duration, api groupLister, m *metrics, log *zap.Logger) *approvers {
	if maxStale <= 0 {
		maxStale = DefaultApproverMaxStale
	}
	return &approvers{users: slices.Clone(a.Users), groups: slices.Clone(a.Groups), refresh: refresh, maxStale: maxStale,
		api: api, m: m, log: log}
}

// errNoApprovers: slack.approvers is empty, so nobody may decide from Slack.
var errNoApprovers = errors.New("no approvers are configured")

// allowed reports whether user may decide. An error means group membership could not be
// checked (and the user is not listed by id), or errNoApprovers.
func (a *approvers) allowed(ctx context.Context, user string) (bool, error) {
	if len(a.users) == 0 && len(a.groups) == 0 {
		return false, errNoApprovers
	}
	if slices.Contains(a.users, user) {
		return true, nil
	}
	if len(a.groups) == 0 {
		return false, nil
	}
	a.mu.Lock()
	age := time.Since(a.fetched)
	ok := a.members[user]
	fresh := a.members != nil && age < a.refresh
	a.mu.Unlock()
	if ok && fresh {
		return true, nil
	}
	if fresh && age < missRefresh {
		return false, nil
	}
	members, err := a.fetch(ctx)
	if err != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		switch stale := time.Since(a.fetched); {
		case a.members == nil:
		case stale <= a.maxStale: // stale for a while is better than nothing
			a.log.Warn("slack: refreshing approver groups failed; using the cached members", zap.Error(err),
				zap.Duration("age", stale.Round(time.Second)))
			return a.members[user], nil
		default:
			return false, fmt.Errorf("the approver groups could not be read from Slack for %s (more than %s), so nobody "+
				"is approved through them until Slack answers: %w", stale.Round(time.Second), a.maxStale, err)
		}
		return false, err
	}
	return members[user], nil
}

// fetch reads every group's members; concurrent callers share one fetch.
func (a *approvers) fetch(ctx context.Context) (map[string]bool, error) {
	a.mu.Lock()
	if ch := a.fetching; ch != nil {
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.members == nil {
			return nil, errors.New("usergroups.users.list failed")
		}
		return a.members, nil
	}
	ch := make(chan struct{})
	a.fetching = ch
	a.mu.Unlock()

	members := map[string]bool{}
	var err error
	for _, g := range a.groups {
		var users []string
		users, err = a.api.GetUserGroupMembersContext(ctx, g)
		if err != nil {
			a.m.apiErrors.WithLabelValues("usergroups.users.list", errorCode(err)).Inc()
			break
		}
		for _, u := range users {
			members[u] = true
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fetching = nil
	close(ch)
	if err != nil {
		return nil, err
	}
	a.members, a.fetched = members, time.Now()
	return members, nil
}
