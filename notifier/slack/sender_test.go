package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
	"github.com/podmedic/podmedic/notifier"
)

// testConfig is a config against a local Slack: notices of route oncall go to #oncall, the
// rest to #alerts.
func testConfig(env *slackenv.Server) Config {
	return Config{
		APIURL:         env.URL(),
		DefaultChannel: "#alerts",
		Routes:         []Route{{Name: "oncall", Channel: "#oncall"}},
		Secrets:        Secrets{BotToken: slackenv.DefaultBotToken, AppToken: slackenv.DefaultAppToken, SigningSecret: signingSecret},
	}
}

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

type harness struct {
	env *slackenv.Server
	n   *Notifier
	reg *prometheus.Registry
}

// start makes a notifier against env and runs it until the test ends.
func start(t testing.TB, env *slackenv.Server, cfg Config, opts ...Option) *harness {
	t.Helper()
	return startDeciding(t, env, cfg, nil, opts...)
}

// startDeciding is start with clicks decided by d.
func startDeciding(t testing.TB, env *slackenv.Server, cfg Config, d notifier.Decider, opts ...Option) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	base := []Option{WithHTTPClient(env.HTTPClient()), WithWebsocketDialer(env.Dialer()),
		WithLogger(zaptest.NewLogger(t)), WithRegisterer(reg), WithSummarizer(testSummaries)}
	n, err := New(cfg, append(base, opts...)...)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, d) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &harness{env: env, n: n, reg: reg}
}

func (h *harness) flush(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	require.NoError(t, h.n.Flush(ctx))
}

// topLevel returns the channel's messages that are not thread replies.
func topLevel(env *slackenv.Server, channel string) []slackenv.Message {
	var out []slackenv.Message
	for _, m := range env.Messages() {
		if m.Channel == channel && m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

func okCalls(env *slackenv.Server, method string) []slackenv.Call {
	var out []slackenv.Call
	for _, c := range env.CallsTo(method) {
		if c.OK() {
			out = append(out, c)
		}
	}
	return out
}

// TestStorm: 500 OOM-killed workers of one Airflow task in 10 seconds, against a Slack that
// allows one message per second per channel and answers 429 (every third without
// Retry-After), with a 3-second 503 outage in the middle. Every pod must end up in Slack, in
// a handful of messages, none twice.
func TestStorm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		paced  bool // from the start (WithSteadyPacing), else after the first 429 (the default)
		outage bool
		groups int // Airflow tasks the pods belong to
	}{
		{"paced", true, false, 1},
		{"adaptive", false, false, 1},
		{"adaptive-unpaced-429s", false, false, 1},
		{"adaptive-unpaced-429s-and-503s", false, true, 1},
		// 25 different tasks: 25 messages to one channel at 1/s, so the limit bites.
		{"25-tasks-paced", true, false, 25},
		{"25-tasks-adaptive", false, false, 25},
		{"25-tasks-unpaced-429s-and-503s", false, true, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := slackenv.StartInMemory(t, slackenv.WithRateLimit(time.Second, 1), slackenv.WithoutRetryAfterEvery(3))
				var opts []Option
				if tc.paced {
					opts = append(opts, WithSteadyPacing())
				}
				if strings.Contains(tc.name, "unpaced") {
					opts = append(opts, WithChannelInterval(0))
				}
				h := start(t, env, testConfig(env), opts...)
				begin := time.Now()
				const pods = 500
				pod := func(i int) *finding.Finding {
					f := worker(i)
					if tc.groups > 1 {
						f.Airflow.TaskID = fmt.Sprintf("load_%02d", i%tc.groups)
					}
					return f
				}
				for i := range pods {
					if tc.outage && i == 200 {
						env.FailFor(3*time.Second, http.StatusServiceUnavailable)
					}
					require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: pod(i)}))
					time.Sleep(20 * time.Millisecond)
				}
				h.flush(t, 5*time.Minute)
				elapsed := time.Since(begin)

				ch := env.ChannelID("#oncall")
				roots := topLevel(env, ch)
				require.Len(t, roots, tc.groups, "one message per group")
				var replies []slackenv.Message
				for _, r := range roots {
					replies = append(replies, env.Replies(ch, r.TS)...)
				}

				// Every pod is in Slack exactly once: the first eleven of a group in its
				// message, the others in exactly one thread reply.
				seen := map[string]int{}
				count := func(blocks json.RawMessage, text string) {
					for i := range pods {
						p := worker(i).Pod // fixed width: no name is a prefix of another
						if strings.Contains(string(blocks), p) || strings.Contains(text, p) {
							seen[p]++
						}
					}
				}
				for _, r := range roots {
					count(r.Blocks, "")
				}
				for _, r := range replies {
					count(r.Blocks, "")
				}
				for i := range pods {
					assert.Equal(t, 1, seen[worker(i).Pod], "pod %d", i)
				}
				assert.Contains(t, string(roots[0].Blocks), fmt.Sprintf("%d×", pods/tc.groups))

				posts, updates := okCalls(env, "chat.postMessage"), okCalls(env, "chat.update")
				var n429, n429bare, n5xx int
				for _, c := range env.Calls() {
					switch {
					case c.Status == http.StatusTooManyRequests && c.RetryAfter == "":
						n429bare++
						n429++
					case c.Status == http.StatusTooManyRequests:
						n429++
					case c.Status >= 500:
						n5xx++
					}
				}
				if tc.groups == 1 {
					assert.LessOrEqual(t, len(posts), 6, "a handful of messages")
					if !tc.outage {
						assert.LessOrEqual(t, len(env.Calls()), 10, "chat calls in all, 429s included")
						assert.Less(t, elapsed, 15*time.Second, "every pod in Slack")
					}
				}
				assert.Equal(t, len(roots)+len(replies), len(posts), "no message posted twice")
				assert.Zero(t, h.n.Pending())
				if tc.paced {
					assert.Zero(t, n429, "pacing keeps under the limit")
				} else if !strings.Contains(tc.name, "unpaced") {
					assert.Equal(t, 1, n429, "the first 429 makes the channel polite")
				}
				t.Logf("storm %s: %d pods in %v (fake clock): %d chat.postMessage (%d messages + %d thread replies), %d chat.update, %d 429s seen (%d without Retry-After), %d 5xx, %d calls in all",
					tc.name, pods, elapsed.Round(time.Millisecond), len(posts), len(roots), len(replies), len(updates), n429, n429bare, n5xx, len(env.Calls()))
				if tc.outage {
					assert.Positive(t, n5xx)
					assert.Positive(t, testutil.ToFloat64(h.n.m.apiErrors.WithLabelValues("chat.update", "503"))+
						testutil.ToFloat64(h.n.m.apiErrors.WithLabelValues("chat.postMessage", "503")))
				}
				if !tc.paced {
					assert.Positive(t, n429)
					assert.Equal(t, float64(n429), testutil.ToFloat64(h.n.m.apiErrors.WithLabelValues("chat.update", "429"))+
						testutil.ToFloat64(h.n.m.apiErrors.WithLabelValues("chat.postMessage", "429")))
				}
				assert.Equal(t, uint64(pods), histogramCount(t, h.reg, "podmedic_notify_latency_seconds"))
			})
		})
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// TestGroupUpdatesCoalesced: a slow trickle of the same failure updates the message at most
// once per update interval.
func TestGroupUpdatesCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env), WithUpdateInterval(5*time.Second), WithSteadyPacing())
		for i := range 40 {
			require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(i)}))
			time.Sleep(500 * time.Millisecond)
		}
		h.flush(t, time.Minute)
		updates := okCalls(env, "chat.update")
		require.NotEmpty(t, updates)
		assert.LessOrEqual(t, len(updates), 20/5+1)
		for i := 1; i < len(updates); i++ {
			assert.GreaterOrEqual(t, updates[i].At.Sub(updates[i-1].At), 5*time.Second)
		}
		require.Len(t, okCalls(env, "chat.postMessage"), 1+len(env.Replies(env.ChannelID("#oncall"), updates[0].TS)))
		m, _ := env.Message(env.ChannelID("#oncall"), updates[0].TS)
		assert.Contains(t, string(m.Blocks), "40×")
	})
}

// TestAdaptivePacing: while Slack accepts every call, each failure of a group is in Slack at
// once (an update of its message and a thread reply); after a 429 the channel is paced and its
// group updates coalesced for WithPaceFor, then fast again.
func TestAdaptivePacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env), WithUpdateInterval(5*time.Second), WithPaceFor(time.Minute))
		named := func(i int) bool {
			for _, m := range env.Messages() {
				if strings.Contains(string(m.Blocks), worker(i).Pod) {
					return true
				}
			}
			return false
		}
		for i := range 20 {
			require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(i)}))
			synctest.Wait()
			require.True(t, named(i), "pod %d in Slack at once", i)
			time.Sleep(100 * time.Millisecond)
		}
		calls := len(env.CallsTo("chat.postMessage")) + len(env.CallsTo("chat.update"))
		assert.GreaterOrEqual(t, calls, 20, "a call per failure while unthrottled")

		env.FailNextWith("chat.update", 1, "ratelimited")
		for i := 20; i < 40; i++ {
			require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(i)}))
			time.Sleep(100 * time.Millisecond)
		}
		h.flush(t, time.Minute)
		polite := len(env.CallsTo("chat.postMessage")) + len(env.CallsTo("chat.update")) - calls
		assert.LessOrEqual(t, polite, 6, "20 more failures coalesced after the 429")
		for i := range 40 {
			assert.True(t, named(i), "pod %d", i)
		}

		time.Sleep(time.Minute)
		calls = len(env.CallsTo("chat.postMessage")) + len(env.CallsTo("chat.update"))
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(40)}))
		synctest.Wait()
		assert.True(t, named(40), "fast again a minute after the 429")
		assert.Positive(t, len(env.CallsTo("chat.postMessage"))+len(env.CallsTo("chat.update"))-calls)
	})
}

// TestGroupsAndChannels: different owners are different messages; routes pick channels; a
// finding seen twice is posted once.
func TestGroupsAndChannels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env))
		fx := fixtures()
		for _, k := range []finding.Kind{finding.SIGKILL, finding.Evicted, finding.CrashLoop, finding.LimitRatio, finding.SIGKILL} {
			require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: fx[k]}))
		}
		h.flush(t, time.Minute)
		assert.Len(t, topLevel(env, env.ChannelID("#oncall")), 3, "SIGKILL (once), Evicted, CrashLoop")
		alerts := topLevel(env, env.ChannelID("#alerts"))
		require.Len(t, alerts, 1, "LimitRatio has no route")
		assert.Contains(t, string(alerts[0].Blocks), "LimitRatio")
		assert.Empty(t, env.CallsTo("chat.update"))
	})
}

// TestProposalDecided: a proposal's buttons are replaced by the decision, and a thread reply
// records the outcome; repeated and stale decisions change nothing.
func TestProposalDecided(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env))
		f := fixtures()[finding.InitStuck]
		nt := noticeFor(f)
		require.NoError(t, h.n.Notify(t.Context(), nt))
		h.flush(t, time.Minute)
		ch := env.ChannelID("#oncall")
		roots := topLevel(env, ch)
		require.Len(t, roots, 1)
		assert.Contains(t, string(roots[0].Blocks), ActionApprove)

		p := clone(nt.Proposal)
		p.State, p.DecidedBy, p.DecidedAt = finding.StateApproved, "U123", at.Add(time.Hour)
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: p}))
		q := clone(p)
		q.State = finding.StateExecuted
		q.Outcome = &finding.Outcome{Result: finding.ResultExecuted, Message: "pod deleted", At: at.Add(time.Hour)}
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: q}))
		h.flush(t, time.Minute)
		// the same decision again, and a stale one
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: q}))
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: p}))
		require.NoError(t, h.n.Notify(t.Context(), nt))
		h.flush(t, time.Minute)

		m, _ := env.Message(ch, roots[0].TS)
		assert.NotContains(t, string(m.Blocks), ActionApprove, "buttons gone")
		assert.Contains(t, string(m.Blocks), "Approved* by \\u003c@U123\\u003e at \\u003c!date^1795144389^{time}|03:13 UTC\\u003e -\\u0026gt; pod deleted")
		replies := env.Replies(ch, roots[0].TS)
		require.Len(t, replies, 1, "one reply records the outcome")
		assert.Contains(t, replies[0].Text, "pod deleted")
		assert.Len(t, topLevel(env, ch), 1)
		assert.LessOrEqual(t, len(okCalls(env, "chat.update")), 2)
		assert.Zero(t, h.n.Pending())
	})
}

// TestDecisionAfterRestart: a decision taken after a restart updates the message posted before
// it, found in the message store; without a record a new message says what happened.
func TestDecisionAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		store := NewMemoryStore()
		nt := noticeFor(fixtures()[finding.OOMKilled])
		func() {
			reg := prometheus.NewRegistry()
			n, err := New(testConfig(env), WithHTTPClient(env.HTTPClient()), WithMessageStore(store), WithRegisterer(reg), WithSummarizer(testSummaries))
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- n.Run(ctx, nil) }()
			require.NoError(t, n.Notify(ctx, nt))
			fctx, fcancel := context.WithTimeout(ctx, time.Minute)
			defer fcancel()
			require.NoError(t, n.Flush(fctx))
			cancel()
			require.NoError(t, <-done)
			require.ErrorIs(t, n.Notify(context.Background(), nt), ErrStopped)
		}()
		ref, ok, err := store.Get(context.Background(), nt.Proposal.ID)
		require.NoError(t, err)
		require.True(t, ok)

		h := start(t, env, testConfig(env), WithMessageStore(store))
		p := clone(nt.Proposal)
		p.State, p.DecidedBy, p.DecidedAt = finding.StateDenied, "U777", at.Add(time.Minute)
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: p}))
		h.flush(t, time.Minute)
		m, _ := env.Message(ref.Channel, ref.TS)
		assert.Contains(t, string(m.Blocks), "Denied* by \\u003c@U777\\u003e")
		assert.NotContains(t, string(m.Blocks), ActionApprove)
		assert.Len(t, topLevel(env, ref.Channel), 1, "no new message")
		assert.Len(t, env.Replies(ref.Channel, ref.TS), 1)

		// Unknown to the store: posted as a new message (and the outcome in its thread).
		other := proposalFor(fixtures()[finding.TaskFailed], "p-unknown")
		other.State, other.DecidedBy = finding.StateExpired, "system"
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: other}))
		h.flush(t, time.Minute)
		roots := topLevel(env, ref.Channel)
		require.Len(t, roots, 2)
		assert.Contains(t, string(roots[1].Blocks), "Expired")
		assert.NotContains(t, string(roots[1].Blocks), ActionApprove)

		// A stored message that is gone (deleted in Slack): posted again.
		require.NoError(t, store.Put(context.Background(), "p-gone", MessageRef{Channel: ref.Channel, TS: "1767225600.999999"}))
		gone := proposalFor(fixtures()[finding.StuckTerminating], "p-gone")
		gone.State, gone.DecidedBy = finding.StateDenied, "U1"
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: gone}))
		h.flush(t, time.Minute)
		assert.Len(t, topLevel(env, ref.Channel), 3)
		fresh, ok, _ := store.Get(context.Background(), "p-gone")
		require.True(t, ok)
		assert.NotEqual(t, "1767225600.999999", fresh.TS, "the store points at the new message")
	})
}

// TestExpiredLosesButtons: a proposal past its expiry loses its buttons even before the actions
// stage reports it; the expired notice then adds the thread reply.
func TestExpiredLosesButtons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env))
		nt := noticeFor(fixtures()[finding.TaskFailed])
		nt.Proposal.CreatedAt = time.Now()
		nt.Proposal.ExpiresAt = time.Now().Add(30 * time.Minute)
		require.NoError(t, h.n.Notify(t.Context(), nt))
		h.flush(t, time.Minute)
		ch := env.ChannelID("#oncall")
		root := topLevel(env, ch)[0]
		assert.Contains(t, string(root.Blocks), ActionApprove)

		time.Sleep(31 * time.Minute)
		synctest.Wait()
		m, _ := env.Message(ch, root.TS)
		assert.NotContains(t, string(m.Blocks), ActionApprove)
		assert.Contains(t, string(m.Blocks), "Expired")
		assert.Empty(t, env.Replies(ch, root.TS))

		p := clone(nt.Proposal)
		p.State, p.DecidedBy, p.DecidedAt = finding.StateExpired, "system", nt.Proposal.ExpiresAt
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: p}))
		h.flush(t, time.Minute)
		assert.Len(t, env.Replies(ch, root.TS), 1)
	})
}

// TestOutageRetried: 5xx answers and 429s without Retry-After are retried with backoff until
// Slack recovers; nothing is lost or doubled.
func TestOutageRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env))
		env.FailFor(2*time.Minute, http.StatusBadGateway)
		fx := fixtures()
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: fx[finding.SIGKILL]}))
		require.NoError(t, h.n.Notify(t.Context(), noticeFor(fx[finding.OOMKilled])))
		time.Sleep(time.Minute)
		assert.Equal(t, 2, h.n.Pending(), "still trying")
		h.flush(t, 5*time.Minute)
		posts := okCalls(env, "chat.postMessage")
		assert.Len(t, posts, 2)
		failed := len(env.CallsTo("chat.postMessage")) - len(posts)
		// 1s, 2s, 4s, ... 60s backoff over two minutes: a few attempts, not a busy loop.
		assert.Greater(t, failed, 3)
		assert.Less(t, failed, 20)
		assert.Equal(t, float64(failed), testutil.ToFloat64(h.n.m.apiErrors.WithLabelValues("chat.postMessage", "502")))
	})
}

// TestNotifyErrors: a full queue and invalid notices are refused; accepted notices are
// delivered once Run starts.
func TestNotifyErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		n, err := New(testConfig(env), WithHTTPClient(env.HTTPClient()), WithQueueSize(3))
		require.NoError(t, err)
		for i := range 3 {
			require.NoError(t, n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(i)}))
		}
		require.NoError(t, n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(0)}), "a duplicate is accepted (and ignored)")
		assert.ErrorIs(t, n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(3)}), ErrQueueFull)
		assert.ErrorIs(t, n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding}), ErrInvalidNotice)
		assert.ErrorIs(t, n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision}), ErrInvalidNotice)
		assert.ErrorIs(t, n.Notify(t.Context(), nil), ErrInvalidNotice)
		assert.Equal(t, 3, n.Pending())

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- n.Run(ctx, nil) }()
		fctx, fcancel := context.WithTimeout(ctx, time.Minute)
		require.NoError(t, n.Flush(fctx))
		fcancel()
		require.NoError(t, n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: worker(3)}))
		cancel()
		require.NoError(t, <-done)
		assert.Error(t, n.Run(context.Background(), nil), "Run runs once")
	})
}

func TestRefusalPosted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env))
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeRefusal, Finding: fixtures()[finding.InitStuck], Count: 4,
			Outcome: &finding.Outcome{Result: finding.ResultRefused, Message: "budget exhausted"}}))
		h.flush(t, time.Minute)
		posts := okCalls(env, "chat.postMessage")
		require.Len(t, posts, 1)
		assert.Contains(t, posts[0].Text, "Refused 4 action(s): budget exhausted")
	})
}

func TestValidate(t *testing.T) {
	err := (&Config{SocketMode: true, APIURL: "http://x", Routes: []Route{{}}, Secrets: Secrets{AppToken: "xoxb-wrong"}}).Validate()
	require.Error(t, err)
	for _, want := range []string{"default channel", "bot token", "xapp-", "must end with /", "route 0"} {
		assert.Contains(t, err.Error(), want)
	}
	err = (&Config{DefaultChannel: "#a", Secrets: Secrets{BotToken: "xoxb-1"}}).Validate()
	assert.ErrorContains(t, err, "signing secret")
	assert.NoError(t, (&Config{DefaultChannel: "#a", SocketMode: true, Secrets: Secrets{BotToken: "xoxb-1", AppToken: "xapp-1"}}).Validate())
}

func TestCheck(t *testing.T) {
	env := slackenv.Start(t)
	n, err := New(testConfig(env))
	require.NoError(t, err)
	require.NoError(t, n.Check(t.Context()))
	cfg := testConfig(env)
	cfg.Secrets.BotToken = "xoxb-revoked"
	n, err = New(cfg)
	require.NoError(t, err)
	assert.ErrorContains(t, n.Check(t.Context()), "invalid_auth")
}

// fakeDecider records decisions and answers with fn.
type fakeDecider struct {
	mu    sync.Mutex
	calls []string
	fn    func(id, user string, approve bool) (*finding.Proposal, error)
}

func (d *fakeDecider) Decide(_ context.Context, id, user string, approve bool) (*finding.Proposal, error) {
	d.mu.Lock()
	d.calls = append(d.calls, fmt.Sprintf("%s %s %t", id, user, approve))
	fn := d.fn
	d.mu.Unlock()
	return fn(id, user, approve)
}

func (d *fakeDecider) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

var errExpired = errors.New("proposal expired at 02:43 UTC")

// TestSlackErrors: blocks Slack refuses fall back to the text; a channel the bot is not in is
// retried with backoff until someone invites it; nothing is dropped.
func TestSlackErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		h := start(t, env, testConfig(env))
		env.FailNextWith("chat.postMessage", 1, "invalid_blocks")
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: fixtures()[finding.SIGKILL]}))
		h.flush(t, time.Minute)
		posts := okCalls(env, "chat.postMessage")
		require.Len(t, posts, 1)
		assert.Nil(t, posts[0].Blocks, "text alone")
		assert.Contains(t, posts[0].Text, "SIGKILL airflow/etl-hourly-extract-p0x8k2dw/base")

		env.FailNextWith("chat.postMessage", 4, "not_in_channel")
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFinding, Finding: fixtures()[finding.LimitRatio]}))
		h.flush(t, time.Minute)
		require.Len(t, okCalls(env, "chat.postMessage"), 2)
		assert.NotNil(t, okCalls(env, "chat.postMessage")[1].Blocks)
		assert.Equal(t, 4.0, testutil.ToFloat64(h.n.m.apiErrors.WithLabelValues("chat.postMessage", "not_in_channel")))
	})
}

// TestFollowUpInTheThread: a follow-up of an executed proposal is a reply in its message's
// thread — the message this process posted, or one it finds in the store (posted before a
// restart, or by another replica) — and never a new message or a second outcome reply.
func TestFollowUpInTheThread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := slackenv.StartInMemory(t)
		store := NewMemoryStore()
		nt := noticeFor(fixtures()[finding.OOMKilled])
		p := clone(nt.Proposal)
		p.State, p.DecidedBy, p.DecidedAt = finding.StateExecuted, "U123", at.Add(time.Hour)
		p.Outcome = &finding.Outcome{Result: finding.ResultExecuted, Message: "memory override o-1 stored", At: at.Add(time.Hour), Override: "o-1"}
		var ref MessageRef
		func() {
			h := start(t, env, testConfig(env), WithMessageStore(store))
			require.NoError(t, h.n.Notify(t.Context(), nt))
			require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeDecision, Proposal: p}))
			require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFollowUp, Proposal: p, Text: "try 2 of etl.load started with memory limit 3Gi"}))
			h.flush(t, time.Minute)
			var ok bool
			var err error
			ref, ok, err = store.Get(context.Background(), p.ID)
			require.NoError(t, err)
			require.True(t, ok)
			replies := env.Replies(ref.Channel, ref.TS)
			require.Len(t, replies, 2)
			assert.Contains(t, replies[0].Text, "memory override o-1 stored")
			assert.Equal(t, "try 2 of etl.load started with memory limit 3Gi", replies[1].Text)
		}()

		h := start(t, env, testConfig(env), WithMessageStore(store))
		require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFollowUp, Proposal: p, Text: "try 2 of etl.load succeeded with memory limit 3Gi <ok>"}))
		h.flush(t, time.Minute)
		replies := env.Replies(ref.Channel, ref.TS)
		require.Len(t, replies, 3, "the new process replies in the thread it found, and only that")
		assert.Equal(t, "try 2 of etl.load succeeded with memory limit 3Gi <ok>", replies[2].Text)
		assert.Contains(t, string(replies[2].Blocks), "\\u0026lt;ok\\u0026gt;", "escaped for mrkdwn")
		assert.Len(t, topLevel(env, ref.Channel), 1, "no new message")
		assert.ErrorIs(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeFollowUp, Proposal: p}), ErrInvalidNotice)
	})
}
