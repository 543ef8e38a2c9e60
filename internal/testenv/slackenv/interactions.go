package slackenv

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Click is a button click as Slack reports it in a block_actions payload.
type Click struct {
	UserID   string
	UserName string
	// Channel is the channel id of the message, MessageTS its timestamp.
	Channel   string
	MessageTS string
	// ThreadTS is the ts of the thread the clicked message is a reply in ("" for a root):
	// Slack sends it as container.thread_ts and message.thread_ts.
	ThreadTS string
	ActionID string // e.g. podmedic.approve
	Value    string // the button's value
	BlockID  string // default Value
	// ActionTS and TriggerID tell clicks apart; defaults are derived from the other fields.
	ActionTS  string
	TriggerID string
	// UserTeamID is the clicking user's home workspace (a Slack Connect guest's differs);
	// default TeamID.
	UserTeamID string
}

// Payload is the block_actions payload Slack sends for the click (over Socket Mode as the
// envelope's payload; over HTTP form-encoded, see FormBody).
func (c Click) Payload() []byte {
	if c.BlockID == "" {
		c.BlockID = c.Value
	}
	if c.ActionTS == "" {
		c.ActionTS = strconv.Itoa(tsBase+3600) + ".123456"
	}
	if c.TriggerID == "" {
		c.TriggerID = "1337." + c.UserID + "." + c.ActionTS
	}
	if c.UserName == "" {
		c.UserName = "user-" + c.UserID
	}
	if c.UserTeamID == "" {
		c.UserTeamID = TeamID
	}
	p := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": c.UserID, "username": c.UserName, "name": c.UserName, "team_id": c.UserTeamID},
		"api_app_id": "A0PODMEDIC",
		"token":      "legacy-verification-token",
		"container": map[string]any{"type": "message", "message_ts": c.MessageTS, "channel_id": c.Channel,
			"is_ephemeral": false},
		"trigger_id":   c.TriggerID,
		"team":         map[string]any{"id": TeamID, "domain": "slackenv"},
		"channel":      map[string]any{"id": c.Channel, "name": "channel-" + c.Channel},
		"message":      map[string]any{"type": "message", "ts": c.MessageTS, "user": BotUserID, "text": ""},
		"response_url": "https://hooks.slackenv.test/actions/" + TeamID + "/1/x",
		"actions": []any{map[string]any{
			"action_id": c.ActionID, "block_id": c.BlockID, "value": c.Value, "type": "button",
			"text": map[string]any{"type": "plain_text", "text": c.ActionID}, "action_ts": c.ActionTS,
		}},
		"state": map[string]any{"values": map[string]any{}},
	}
	if c.ThreadTS != "" {
		p["container"].(map[string]any)["thread_ts"] = c.ThreadTS
		p["message"].(map[string]any)["thread_ts"] = c.ThreadTS
	}
	b, _ := json.Marshal(p)
	return b
}

// FormBody is how Slack posts an interaction payload to a Request URL: payload=<url-encoded JSON>.
func FormBody(payload []byte) []byte {
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

// Sign computes Slack's request signature of body at ts with the signing secret: the
// X-Slack-Request-Timestamp and X-Slack-Signature header values.
func Sign(secret string, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("v0:" + timestamp + ":"))
	h.Write(body)
	return timestamp, "v0=" + hex.EncodeToString(h.Sum(nil))
}

// SignedRequest builds the POST Slack makes to an interactivity Request URL, signed at ts.
func SignedRequest(ctx context.Context, target, secret string, ts time.Time, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	timestamp, sig := Sign(secret, ts, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", timestamp)
	req.Header.Set("X-Slack-Signature", sig)
	return req, nil
}
