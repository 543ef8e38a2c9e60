package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// within bounds a wait on the local Slack.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// decidingStage is a fake actions stage: approving executes the action, denying denies.
func decidingStage(props map[string]*finding.Proposal) *fakeDecider {
	return &fakeDecider{fn: func(id, user string, approve bool) (*finding.Proposal, error) {
		p := clone(props[id])
		p.DecidedBy, p.DecidedAt = user, time.Date(2026, 11, 20, 3, 12, 0, 0, time.UTC)
		if !approve {
			p.State = finding.StateDenied
			return p, nil
		}
		p.State = finding.StateExecuted
		p.Outcome = &finding.Outcome{Result: finding.ResultExecuted, Message: "pod deleted", At: p.DecidedAt}
		return p, nil
	}}
}

// posted notifies a proposal and waits for its message.
func posted(t *testing.T, h *harness, nt *finding.Notice) MessageRef {
	t.Helper()
	require.NoError(t, h.n.Notify(t.Context(), nt))
	h.flush(t, 10*time.Second)
	ref, ok, err := h.n.o.store.Get(t.Context(), nt.Proposal.ID)
	require.NoError(t, err)
	require.True(t, ok)
	return ref
}

// messageContains waits until the message's blocks contain every string.
func messageContains(t *testing.T, env *slackenv.Server, ref MessageRef, want ...string) slackenv.Message {
	t.Helper()
	var m slackenv.Message
	err := env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool {
		m, _ = s.Message(ref.Channel, ref.TS)
		for _, w := range want {
			if !strings.Contains(string(m.Blocks), w) {
				return false
			}
		}
		return true
	})
	require.NoError(t, err, "message blocks: %s", m.Blocks)
	return m
}

func ephemeralTo(env *slackenv.Server, user string) []slackenv.Call {
	var out []slackenv.Call
	for _, c := range env.CallsTo("chat.postEphemeral") {
		if c.User == user {
			out = append(out, c)
		}
	}
	return out
}

// TestSocketModeApproval: a click arrives as an interactive envelope on the Socket Mode
// websocket; podmedic acks it, checks the approver (listed by id, or in a user group), calls
// the Decider, and updates the message with who approved and what happened. A user who is not
// an approver is told so and nothing happens.
func TestSocketModeApproval(t *testing.T) {
	env := slackenv.Start(t, slackenv.WithUserGroup("S0ONCALL", "U0GROUPIE"))
	fx := fixtures()
	props := map[string]*finding.Proposal{}
	nt := noticeFor(fx[finding.InitStuck])
	props[nt.Proposal.ID] = nt.Proposal
	nt2 := noticeFor(fx[finding.OOMKilled])
	props[nt2.Proposal.ID] = nt2.Proposal
	dec := decidingStage(props)
	cfg := testConfig(env)
	cfg.SocketMode = true
	cfg.Approvers = Approvers{Users: []string{"U0ALICE"}, Groups: []string{"S0ONCALL"}}
	h := startDeciding(t, env, cfg, dec, WithChannelInterval(0))
	require.NoError(t, env.WaitConnected(within(t, 10*time.Second)))
	ref := posted(t, h, nt)
	ref2 := posted(t, h, nt2)

	click := func(user, action string, ref MessageRef, id string) string {
		env, err := env.SendInteractive(slackenv.Click{UserID: user, Channel: ref.Channel, MessageTS: ref.TS,
			ActionID: action, Value: id, ActionTS: "1767229200." + user}.Payload())
		require.NoError(t, err)
		return env
	}

	// Someone not allowed: acked, told, nothing decided.
	envID := click("U0MALLORY", ActionApprove, ref, nt.Proposal.ID)
	_, err := env.WaitAck(within(t, 5*time.Second), envID)
	require.NoError(t, err, "envelope acked")
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool { return len(ephemeralTo(s, "U0MALLORY")) == 1 }))
	assert.Contains(t, ephemeralTo(env, "U0MALLORY")[0].Text, "You are not allowed to approve this")
	assert.Empty(t, dec.Calls())

	// An approver by id.
	envID = click("U0ALICE", ActionApprove, ref, nt.Proposal.ID)
	_, err = env.WaitAck(within(t, 5*time.Second), envID)
	require.NoError(t, err)
	m := messageContains(t, env, ref, "Approved* by \\u003c@U0ALICE\\u003e at \\u003c!date^1795144320^{time}|03:12 UTC\\u003e -\\u0026gt; pod deleted")
	assert.NotContains(t, string(m.Blocks), ActionApprove)
	assert.Equal(t, []string{nt.Proposal.ID + " U0ALICE true"}, dec.Calls())
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool { return len(s.Replies(ref.Channel, ref.TS)) == 1 }))
	assert.Contains(t, env.Replies(ref.Channel, ref.TS)[0].Text, "pod deleted")

	// The same click delivered twice (Slack redelivers unacked envelopes) is decided once.
	click("U0ALICE", ActionApprove, ref, nt.Proposal.ID)

	// A member of an approver group denies the other proposal.
	envID = click("U0GROUPIE", ActionDeny, ref2, nt2.Proposal.ID)
	_, err = env.WaitAck(within(t, 5*time.Second), envID)
	require.NoError(t, err)
	messageContains(t, env, ref2, "Denied* by \\u003c@U0GROUPIE\\u003e")
	assert.Equal(t, []string{nt.Proposal.ID + " U0ALICE true", nt2.Proposal.ID + " U0GROUPIE false"}, dec.Calls())
	assert.Len(t, env.CallsTo("usergroups.users.list"), 1, "group members cached")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.n.m.interactions.WithLabelValues("forbidden")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.n.m.interactions.WithLabelValues("duplicate")))

	// Slack recycles the connection: the client reconnects and clicks keep working.
	hellos := env.Hellos()
	env.Disconnect()
	require.NoError(t, env.Wait(within(t, 20*time.Second), func(s *slackenv.Server) bool { return s.Hellos() > hellos && s.Connections() == 1 }))
}

// signed builds a signed interaction request.
func signed(t *testing.T, body []byte, ts time.Time) *http.Request {
	req, err := slackenv.SignedRequest(t.Context(), "/slack/interactions", signingSecret, ts, body)
	require.NoError(t, err)
	return req
}

func serve(h http.Handler, req *http.Request) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// TestHTTPInteractions: POST /slack/interactions accepts only fresh requests signed with the
// signing secret, once; refused clicks get no decision.
func TestHTTPInteractions(t *testing.T) {
	env := slackenv.Start(t)
	fx := fixtures()
	nt := noticeFor(fx[finding.TaskFailed])
	props := map[string]*finding.Proposal{nt.Proposal.ID: nt.Proposal}
	dec := decidingStage(props)
	cfg := testConfig(env)
	cfg.Approvers = Approvers{Users: []string{"U0ALICE"}}
	h := startDeciding(t, env, cfg, dec, WithChannelInterval(0))
	handler := h.n.InteractionHandler()
	ref := posted(t, h, nt)

	clickBody := func(user, ts string) []byte {
		return slackenv.FormBody(slackenv.Click{UserID: user, Channel: ref.Channel, MessageTS: ref.TS,
			ActionID: ActionApprove, Value: nt.Proposal.ID, ActionTS: ts}.Payload())
	}
	now := time.Now()

	t.Run("wrong method", func(t *testing.T) {
		assert.Equal(t, http.StatusMethodNotAllowed, serve(handler, httptest.NewRequest(http.MethodGet, "/slack/interactions", nil)))
	})
	t.Run("tampered body", func(t *testing.T) {
		req := signed(t, clickBody("U0ALICE", "1.1"), now)
		tampered := signed(t, clickBody("U0ALICE", "1.2"), now)
		tampered.Header = req.Header // a signature of another body
		assert.Equal(t, http.StatusUnauthorized, serve(handler, tampered))
	})
	t.Run("stale timestamp", func(t *testing.T) {
		assert.Equal(t, http.StatusUnauthorized, serve(handler, signed(t, clickBody("U0ALICE", "1.3"), now.Add(-6*time.Minute))))
	})
	t.Run("missing v0=", func(t *testing.T) {
		req := signed(t, clickBody("U0ALICE", "1.4"), now)
		req.Header.Set("X-Slack-Signature", strings.TrimPrefix(req.Header.Get("X-Slack-Signature"), "v0="))
		assert.Equal(t, http.StatusUnauthorized, serve(handler, req))
	})
	t.Run("missing headers", func(t *testing.T) {
		req := signed(t, clickBody("U0ALICE", "1.5"), now)
		req.Header.Del("X-Slack-Signature")
		assert.Equal(t, http.StatusUnauthorized, serve(handler, req))
	})
	t.Run("wrong secret", func(t *testing.T) {
		body := clickBody("U0ALICE", "1.6")
		req, err := slackenv.SignedRequest(t.Context(), "/slack/interactions", "not-the-secret", now, body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, serve(handler, req))
	})
	t.Run("no payload", func(t *testing.T) {
		assert.Equal(t, http.StatusBadRequest, serve(handler, signed(t, []byte("nothing=here"), now)))
	})
	assert.Empty(t, dec.Calls(), "nothing refused reached the decider")
	assert.Equal(t, 5.0, testutil.ToFloat64(h.n.m.interactions.WithLabelValues("bad_signature")))

	t.Run("unlisted approver", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, serve(handler, signed(t, clickBody("U0MALLORY", "2.1"), now)))
		require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool { return len(ephemeralTo(s, "U0MALLORY")) == 1 }))
		assert.Contains(t, ephemeralTo(env, "U0MALLORY")[0].Text, "You are not allowed to approve this")
		assert.Empty(t, dec.Calls())
	})

	t.Run("valid, then replayed", func(t *testing.T) {
		body := clickBody("U0ALICE", "3.1")
		ts := now.Add(-time.Minute)
		start := time.Now()
		assert.Equal(t, http.StatusOK, serve(handler, signed(t, body, ts)))
		assert.Less(t, time.Since(start), 3*time.Second, "acknowledged at once")
		messageContains(t, env, ref, "Approved* by \\u003c@U0ALICE\\u003e", "pod deleted")
		assert.Equal(t, []string{nt.Proposal.ID + " U0ALICE true"}, dec.Calls())

		assert.Equal(t, http.StatusConflict, serve(handler, signed(t, body, ts)))
		upper := signed(t, body, ts)
		upper.Header.Set("X-Slack-Signature", "v0="+strings.ToUpper(strings.TrimPrefix(upper.Header.Get("X-Slack-Signature"), "v0=")))
		assert.Equal(t, http.StatusConflict, serve(handler, upper), "the same signature with its hex in upper case")
		assert.Never(t, func() bool { return len(dec.Calls()) > 1 }, 100*time.Millisecond, 5*time.Millisecond, "a replay decides nothing")
		assert.Equal(t, 2.0, testutil.ToFloat64(h.n.m.interactions.WithLabelValues("replay")))
	})
}

// TestHTTPInteractionReplayedToAnotherReplica: with the replicas' shared claims, a signed
// request accepted by one replica is refused by another.
func TestHTTPInteractionReplayedToAnotherReplica(t *testing.T) {
	env := slackenv.Start(t)
	fx := fixtures()
	nt := noticeFor(fx[finding.TaskFailed])
	dec := decidingStage(map[string]*finding.Proposal{nt.Proposal.ID: nt.Proposal})
	cfg := testConfig(env)
	cfg.Approvers = Approvers{Users: []string{"U0ALICE"}}
	claims := actions.NewMemoryClaimer(nil)
	a := startDeciding(t, env, cfg, dec, WithChannelInterval(0), WithReplayClaims(claims))
	b := startDeciding(t, env, cfg, dec, WithChannelInterval(0), WithReplayClaims(claims))
	ref := posted(t, a, nt)
	body := slackenv.FormBody(slackenv.Click{UserID: "U0ALICE", Channel: ref.Channel, MessageTS: ref.TS,
		ActionID: ActionApprove, Value: nt.Proposal.ID, ActionTS: "4.1"}.Payload())
	ts := time.Now()
	assert.Equal(t, http.StatusOK, serve(a.n.InteractionHandler(), signed(t, body, ts)))
	assert.Equal(t, http.StatusConflict, serve(b.n.InteractionHandler(), signed(t, body, ts)), "replayed to the other replica")
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(*slackenv.Server) bool { return len(dec.Calls()) == 1 }))
	assert.Never(t, func() bool { return len(dec.Calls()) > 1 }, 100*time.Millisecond, 5*time.Millisecond, "the replay decides nothing")
}

// TestExpiredClick: clicking a proposal that has expired tells the user why and updates the
// message to expired.
func TestExpiredClick(t *testing.T) {
	env := slackenv.Start(t)
	nt := noticeFor(fixtures()[finding.StuckTerminating])
	nt.Proposal.ExpiresAt = time.Now().Add(time.Second)
	dec := &fakeDecider{fn: func(string, string, bool) (*finding.Proposal, error) { return nil, errExpired }}
	cfg := testConfig(env)
	cfg.Approvers = Approvers{Users: []string{"U0BOB"}}
	h := startDeciding(t, env, cfg, dec, WithChannelInterval(0))
	ref := posted(t, h, nt)
	messageContains(t, env, ref, ActionApprove)

	time.Sleep(time.Until(nt.Proposal.ExpiresAt))
	body := slackenv.FormBody(slackenv.Click{UserID: "U0BOB", Channel: ref.Channel, MessageTS: ref.TS,
		ActionID: ActionApprove, Value: nt.Proposal.ID}.Payload())
	assert.Equal(t, http.StatusOK, serve(h.n.InteractionHandler(), signed(t, body, time.Now())))
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool { return len(ephemeralTo(s, "U0BOB")) == 1 }))
	assert.Equal(t, "Could not approve proposal p-StuckTerminating: proposal expired at 02:43 UTC", ephemeralTo(env, "U0BOB")[0].Text)
	m := messageContains(t, env, ref, "Expired")
	assert.NotContains(t, string(m.Blocks), ActionApprove)
	assert.Equal(t, []string{"p-StuckTerminating U0BOB true"}, dec.Calls())
}

// TestApproverGroupRefresh: group membership is cached, refreshed after the refresh interval,
// and re-read early (once per 30s) for a user not found.
func TestApproverGroupRefresh(t *testing.T) {
	env := slackenv.Start(t, slackenv.WithUserGroup("S1", "U1"))
	n, err := New(testConfig(env))
	require.NoError(t, err)
	a := newApprovers(Approvers{Groups: []string{"S1"}}, 50*time.Millisecond, 0, n.api, n.m, n.o.log)
	ok, err := a.allowed(t.Context(), "U1")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _ = a.allowed(t.Context(), "U2")
	assert.False(t, ok)
	assert.Len(t, env.CallsTo("usergroups.users.list"), 1, "a fresh cache answers a miss")
	env.SetUserGroup("S1", "U2")
	time.Sleep(60 * time.Millisecond)
	ok, _ = a.allowed(t.Context(), "U2")
	assert.True(t, ok, "refreshed")
	ok, _ = a.allowed(t.Context(), "U1")
	assert.False(t, ok, "removed from the group")

	env.FailFor(time.Minute, http.StatusServiceUnavailable)
	time.Sleep(60 * time.Millisecond)
	ok, err = a.allowed(t.Context(), "U2")
	assert.NoError(t, err)
	assert.True(t, ok, "a stale cache is used when Slack fails")

	b := newApprovers(Approvers{Groups: []string{"S1"}}, time.Minute, 0, n.api, n.m, n.o.log)
	_, err = b.allowed(t.Context(), "U2")
	assert.Error(t, err, "no cache and no Slack: cannot tell")

	// Past the staleness bound, group members are refused until Slack answers again.
	c := newApprovers(Approvers{Groups: []string{"S1"}}, 10*time.Millisecond, 100*time.Millisecond, n.api, n.m, n.o.log)
	env.FailFor(0, 0)
	env.SetUserGroup("S1", "U3")
	ok, err = c.allowed(t.Context(), "U3")
	require.NoError(t, err)
	require.True(t, ok)
	env.FailFor(time.Minute, http.StatusServiceUnavailable)
	time.Sleep(20 * time.Millisecond)
	ok, err = c.allowed(t.Context(), "U3")
	assert.NoError(t, err)
	assert.True(t, ok, "stale within the bound")
	time.Sleep(120 * time.Millisecond)
	ok, err = c.allowed(t.Context(), "U3")
	assert.False(t, ok)
	assert.ErrorContains(t, err, "the approver groups could not be read from Slack for")
	assert.ErrorContains(t, err, "(more than 100ms), so nobody is approved through them until Slack answers")

	none := newApprovers(Approvers{}, time.Minute, 0, n.api, n.m, n.o.log)
	ok, err = none.allowed(t.Context(), "anyone")
	assert.ErrorIs(t, err, errNoApprovers)
	assert.False(t, ok, "no approvers configured: nobody may")
}

// TestClicksRefusedWithoutApproversOrFromAnotherWorkspace: with slack.approvers empty (the
// shipped default) nobody decides from Slack, and the user is told how to set approvers; a
// listed approver clicking from another workspace (a Slack Connect guest) is refused too.
func TestClicksRefusedWithoutApproversOrFromAnotherWorkspace(t *testing.T) {
	env := slackenv.Start(t)
	nt := noticeFor(fixtures()[finding.TaskFailed])
	dec := decidingStage(map[string]*finding.Proposal{nt.Proposal.ID: nt.Proposal})
	click := func(h *harness, ref MessageRef, user, team, ts string) {
		body := slackenv.FormBody(slackenv.Click{UserID: user, UserTeamID: team, Channel: ref.Channel, MessageTS: ref.TS,
			ActionID: ActionApprove, Value: nt.Proposal.ID, ActionTS: ts}.Payload())
		require.Equal(t, http.StatusOK, serve(h.n.InteractionHandler(), signed(t, body, time.Now())))
	}

	open := startDeciding(t, env, testConfig(env), dec, WithChannelInterval(0))
	ref := posted(t, open, nt)
	click(open, ref, "U0ALICE", "", "5.1")
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool { return len(ephemeralTo(s, "U0ALICE")) == 1 }))
	assert.Contains(t, ephemeralTo(env, "U0ALICE")[0].Text, "Nobody may approve from Slack yet: this podmedic has no approvers. Set slack.approvers.users")

	cfg := testConfig(env)
	cfg.Approvers = Approvers{Users: []string{"U0ALICE", "U0GUEST"}}
	listed := startDeciding(t, env, cfg, dec, WithChannelInterval(0))
	click(listed, ref, "U0GUEST", "T0ELSEWHERE", "5.2")
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool { return len(ephemeralTo(s, "U0GUEST")) == 1 }))
	assert.Contains(t, ephemeralTo(env, "U0GUEST")[0].Text, "Only members of this podmedic's Slack workspace may approve proposals")
	assert.Never(t, func() bool { return len(dec.Calls()) > 0 }, 100*time.Millisecond, 5*time.Millisecond, "nothing was decided")

	click(listed, ref, "U0ALICE", "", "5.3")
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(*slackenv.Server) bool { return len(dec.Calls()) == 1 }))
}

// revokingStage decides like decidingStage, stores an override on approval, and revokes it.
type revokingStage struct {
	*fakeDecider
	mu      sync.Mutex
	revoked []string
}

func (r *revokingStage) RevokeOverride(_ context.Context, id, user string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked = append(r.revoked, id+" "+user)
	return "override " + id + " of etl_daily.load (container base) revoked", nil
}

func (r *revokingStage) Revoked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.revoked...)
}

// TestRevokeOverride: the thread reply of an approved memory override carries a Revoke
// button; an approver's click revokes it and the thread says who did; anyone else is refused.
func TestRevokeOverride(t *testing.T) {
	env := slackenv.Start(t)
	fx := fixtures()
	nt := noticeFor(fx[finding.OOMKilled])
	base := decidingStage(map[string]*finding.Proposal{nt.Proposal.ID: nt.Proposal})
	stage := &revokingStage{fakeDecider: &fakeDecider{fn: func(id, user string, approve bool) (*finding.Proposal, error) {
		p, err := base.fn(id, user, approve)
		if p != nil && p.Outcome != nil {
			p.Outcome.Message, p.Outcome.Override = "memory override o-1a2b3c4d5e6f7a8b: the next tries of Airflow task etl_daily.load run container base with limit 3Gi", "o-1a2b3c4d5e6f7a8b"
		}
		return p, err
	}}}
	cfg := testConfig(env)
	cfg.SocketMode = true
	cfg.Approvers = Approvers{Users: []string{"U0ALICE", "U0BOB"}}
	h := startDeciding(t, env, cfg, stage, WithChannelInterval(0))
	require.NoError(t, env.WaitConnected(within(t, 10*time.Second)))
	ref := posted(t, h, nt)

	send := func(user, action, value, ts string) {
		thread := ""
		if ts != ref.TS {
			thread = ref.TS // a reply in the proposal's thread
		}
		id, err := env.SendInteractive(slackenv.Click{UserID: user, Channel: ref.Channel, MessageTS: ts, ThreadTS: thread,
			ActionID: action, Value: value, ActionTS: "1767229300." + user + action}.Payload())
		require.NoError(t, err)
		_, err = env.WaitAck(within(t, 5*time.Second), id)
		require.NoError(t, err)
	}
	send("U0ALICE", ActionApprove, nt.Proposal.ID, ref.TS)
	var reply slackenv.Message
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool {
		for _, r := range s.Replies(ref.Channel, ref.TS) {
			if strings.Contains(string(r.Blocks), ActionRevoke) {
				reply = r
				return true
			}
		}
		return false
	}), "no Revoke button in the thread")
	assert.Equal(t, "o-1a2b3c4d5e6f7a8b", buttonOf(t, reply.Blocks, ActionRevoke))

	send("U0MALLORY", ActionRevoke, "o-1a2b3c4d5e6f7a8b", reply.TS)
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool { return len(ephemeralTo(s, "U0MALLORY")) == 1 }))
	assert.Contains(t, ephemeralTo(env, "U0MALLORY")[0].Text, "You are not allowed to revoke this")
	assert.Empty(t, stage.Revoked())

	send("U0BOB", ActionRevoke, "o-1a2b3c4d5e6f7a8b", reply.TS)
	require.NoError(t, env.Wait(within(t, 10*time.Second), func(s *slackenv.Server) bool {
		for _, r := range s.Replies(ref.Channel, ref.TS) {
			if strings.Contains(r.Text, "Revoked by <@U0BOB>: override o-1a2b3c4d5e6f7a8b") {
				return true
			}
		}
		return false
	}), "the thread does not say who revoked it")
	assert.Equal(t, []string{"o-1a2b3c4d5e6f7a8b U0BOB"}, stage.Revoked())
	assert.Equal(t, 1.0, testutil.ToFloat64(h.n.m.interactions.WithLabelValues("revoked")))
}

// buttonOf returns the value of the button with this action id in a message's blocks.
func buttonOf(t *testing.T, blocks json.RawMessage, actionID string) string {
	t.Helper()
	var bs []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	require.NoError(t, json.Unmarshal(blocks, &bs))
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Value
			}
		}
	}
	t.Fatalf("no %s button in %s", actionID, blocks)
	return ""
}
