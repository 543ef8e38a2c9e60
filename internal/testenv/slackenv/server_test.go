package slackenv_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

func client(s *slackenv.Server) *slack.Client {
	return slack.New(slackenv.DefaultBotToken, slack.OptionAPIURL(s.URL()), slack.OptionHTTPClient(s.HTTPClient()),
		slack.OptionAppLevelToken(slackenv.DefaultAppToken))
}

func TestPostUpdateThreadEphemeral(t *testing.T) {
	s := slackenv.Start(t, slackenv.WithChannel("#alerts", "C0ALERTS"))
	api := client(s)
	ctx := t.Context()

	ch, ts, err := api.PostMessageContext(ctx, "#alerts", slack.MsgOptionText("hello", false),
		slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*hi*", false, false), nil, nil)))
	require.NoError(t, err)
	assert.Equal(t, "C0ALERTS", ch)
	_, rts, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts))
	require.NoError(t, err)
	_, _, _, err = api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("edited", false))
	require.NoError(t, err)
	_, err = api.PostEphemeralContext(ctx, ch, "U1", slack.MsgOptionText("psst", false))
	require.NoError(t, err)
	_, _, _, err = api.UpdateMessageContext(ctx, ch, "1.000000", slack.MsgOptionText("x", false))
	assert.EqualError(t, err, "message_not_found")
	_, _, err = api.PostMessageContext(ctx, ch, slack.MsgOptionText("x", false), slack.MsgOptionTS("9.9"))
	assert.EqualError(t, err, "thread_not_found")

	m, ok := s.Message(ch, ts)
	require.True(t, ok)
	assert.Equal(t, "edited", m.Text)
	assert.Equal(t, 1, m.Updates)
	assert.JSONEq(t, `[{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}}]`, string(m.Blocks), "blocks survive a text-only update")
	replies := s.Replies(ch, ts)
	require.Len(t, replies, 1)
	assert.Equal(t, rts, replies[0].TS)
	assert.Equal(t, "reply", replies[0].Text)
	eph := s.CallsTo("chat.postEphemeral")
	require.Len(t, eph, 1)
	assert.Equal(t, "U1", eph[0].User)
	assert.Len(t, s.Messages(), 2)
}

func TestAuthAndUserGroups(t *testing.T) {
	s := slackenv.Start(t, slackenv.WithUserGroup("S1", "U1", "U2"))
	api := client(s)
	res, err := api.AuthTestContext(t.Context())
	require.NoError(t, err)
	assert.Equal(t, slackenv.BotUserID, res.UserID)
	users, err := api.GetUserGroupMembersContext(t.Context(), "S1")
	require.NoError(t, err)
	assert.Equal(t, []string{"U1", "U2"}, users)
	_, err = api.GetUserGroupMembersContext(t.Context(), "S2")
	assert.EqualError(t, err, "no_such_subteam")

	bad := slack.New("xoxb-wrong", slack.OptionAPIURL(s.URL()))
	_, err = bad.AuthTestContext(t.Context())
	assert.EqualError(t, err, "invalid_auth")
}

func TestInvalidBlocksRefused(t *testing.T) {
	s := slackenv.Start(t)
	api := client(s)
	long := make([]byte, 3001)
	for i := range long {
		long[i] = 'x'
	}
	_, _, err := api.PostMessageContext(t.Context(), "#a", slack.MsgOptionBlocks(
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", string(long), false, false), nil, nil)))
	assert.EqualError(t, err, "invalid_blocks")
}

// TestRateLimit: the second message within a second to the same channel gets 429 with
// Retry-After; another channel is not affected; every second 429 lacks the header.
func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := slackenv.StartInMemory(t, slackenv.WithRateLimit(time.Second, 1), slackenv.WithoutRetryAfterEvery(2))
		api := client(s)
		ctx := t.Context()
		post := func(ch string) error {
			_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("m", false))
			return err
		}
		require.NoError(t, post("#a"))
		err := post("#a")
		var rl *slack.RateLimitedError
		require.ErrorAs(t, err, &rl)
		assert.Equal(t, time.Second, rl.RetryAfter)
		require.NoError(t, post("#b"))
		err = post("#a")
		var sc slack.StatusCodeError
		require.ErrorAs(t, err, &sc, "the second 429 comes without Retry-After")
		assert.Equal(t, http.StatusTooManyRequests, sc.Code)
		time.Sleep(time.Second)
		require.NoError(t, post("#a"))

		var statuses []int
		for _, c := range s.CallsTo("chat.postMessage") {
			statuses = append(statuses, c.Status)
		}
		assert.Equal(t, []int{200, 429, 200, 429, 200}, statuses)
		assert.Equal(t, "1", s.CallsTo("chat.postMessage")[1].RetryAfter)
	})
}

func TestFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := slackenv.StartInMemory(t)
		api := client(s)
		s.FailFor(5*time.Second, http.StatusServiceUnavailable)
		_, err := api.AuthTestContext(t.Context())
		var sc slack.StatusCodeError
		require.ErrorAs(t, err, &sc)
		assert.Equal(t, http.StatusServiceUnavailable, sc.Code)
		time.Sleep(5 * time.Second)
		_, err = api.AuthTestContext(t.Context())
		require.NoError(t, err)
		s.FailNext(1, http.StatusBadGateway)
		_, err = api.AuthTestContext(t.Context())
		require.ErrorAs(t, err, &sc)
		assert.Equal(t, http.StatusBadGateway, sc.Code)
		_, err = api.AuthTestContext(t.Context())
		require.NoError(t, err)
	})
}

// TestSocketMode: apps.connections.open hands out the server's own websocket, which says
// hello, delivers a pushed envelope, and records the client's ack.
func TestSocketMode(t *testing.T) {
	for _, mem := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "in-memory"}[mem], func(t *testing.T) {
			run := func(t *testing.T) {
				var s *slackenv.Server
				if mem {
					s = slackenv.StartInMemory(t)
				} else {
					s = slackenv.Start(t)
				}
				api := client(s)
				_, u, err := api.StartSocketModeContext(t.Context())
				require.NoError(t, err)
				conn, _, err := s.Dialer().DialContext(t.Context(), u, nil)
				require.NoError(t, err)
				defer conn.Close()
				var hello map[string]any
				require.NoError(t, conn.ReadJSON(&hello))
				assert.Equal(t, "hello", hello["type"])
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				require.NoError(t, s.WaitConnected(ctx))

				click := slackenv.Click{UserID: "U1", Channel: "C1", MessageTS: "1.1", ActionID: "podmedic.approve", Value: "p1"}
				id, err := s.SendInteractive(click.Payload())
				require.NoError(t, err)
				var env struct {
					EnvelopeID string                    `json:"envelope_id"`
					Type       string                    `json:"type"`
					Payload    slack.InteractionCallback `json:"payload"`
				}
				require.NoError(t, conn.ReadJSON(&env))
				assert.Equal(t, id, env.EnvelopeID)
				assert.Equal(t, "interactive", env.Type)
				require.Len(t, env.Payload.ActionCallback.BlockActions, 1)
				assert.Equal(t, "p1", env.Payload.ActionCallback.BlockActions[0].Value)
				assert.Equal(t, "U1", env.Payload.User.ID)
				require.NoError(t, conn.WriteJSON(map[string]string{"envelope_id": id}))
				ack, err := s.WaitAck(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, id, ack.EnvelopeID)
				require.NoError(t, conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")))
			}
			if mem {
				synctest.Test(t, run)
			} else {
				run(t)
			}
		})
	}
}

func TestSignMatchesSlackVerifier(t *testing.T) {
	body := slackenv.FormBody(slackenv.Click{UserID: "U1", ActionID: "a", Value: "v"}.Payload())
	req, err := slackenv.SignedRequest(t.Context(), "http://127.0.0.1/x", "s3cret", time.Now(), body)
	require.NoError(t, err)
	sv, err := slack.NewSecretsVerifier(req.Header, "s3cret")
	require.NoError(t, err)
	_, _ = sv.Write(body)
	require.NoError(t, sv.Ensure())
	sv, err = slack.NewSecretsVerifier(req.Header, "other")
	require.NoError(t, err)
	_, _ = sv.Write(body)
	require.True(t, errors.Is(sv.Ensure(), slack.ErrInvalidSignature))
	var m map[string]any
	require.NoError(t, json.Unmarshal(slackenv.Click{UserID: "U1"}.Payload(), &m))
}

func TestFailNextWith(t *testing.T) {
	s := slackenv.Start(t)
	api := client(s)
	s.FailNextWith("chat.postMessage", 1, "not_in_channel")
	_, _, err := api.PostMessageContext(t.Context(), "#a", slack.MsgOptionText("m", false))
	assert.EqualError(t, err, "not_in_channel")
	_, _, err = api.PostMessageContext(t.Context(), "#a", slack.MsgOptionText("m", false))
	require.NoError(t, err)
	assert.Equal(t, "not_in_channel", s.CallsTo("chat.postMessage")[0].Error)
}
