package slack

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// FuzzInteraction feeds arbitrary bodies to POST /slack/interactions, signed with the signing
// secret (so they get past the signature check into the form and JSON parsing) and the same
// bodies with one byte changed under the original signature. Whatever arrives: the handler never
// panics; a tampered body is always 401; a signed one is answered 200, 400, 409 or 413, never
// 5xx; and only the listed approver's clicks ever reach the actions stage.
func FuzzInteraction(f *testing.F) {
	click := func(user, action, value string) []byte {
		return slackenv.FormBody(slackenv.Click{UserID: user, Channel: "C0ALERTS", MessageTS: "1767229200.000100",
			ActionID: action, Value: value}.Payload())
	}
	for _, seed := range [][]byte{
		click("U0ALICE", ActionApprove, "p-1"),
		click("U0ALICE", ActionDeny, "p-2"),
		click("U0MALLORY", ActionApprove, "p-1"),
		click("U0MALLORY", "podmedic.other", "p-1"),
		click("", ActionApprove, ""),
		[]byte("payload="),
		[]byte("payload=%7B%7D"),
		[]byte("payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3Anull%7D"),
		[]byte("payload=not-json&payload=%7B%7D"),
		[]byte("nothing=here"),
		[]byte("%zz"),
		[]byte(""),
	} {
		f.Add(seed)
	}

	env := slackenv.Start(f)
	cfg := testConfig(env)
	cfg.Approvers = Approvers{Users: []string{"U0ALICE"}}
	dec := &fakeDecider{fn: func(id, _ string, _ bool) (*finding.Proposal, error) {
		return nil, errors.New("no proposal " + id)
	}}
	h := startDeciding(f, env, cfg, dec, WithChannelInterval(0), WithLogger(zap.NewNop())) // lives as long as the fuzz run
	handler := h.n.InteractionHandler()

	f.Fuzz(func(t *testing.T, body []byte) {
		now := time.Now()
		if len(body) > 0 {
			req := signedAt(t, body, now)
			tampered := bytes.Clone(body)
			tampered[len(tampered)/2] ^= 0x20
			bad, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "/slack/interactions", bytes.NewReader(tampered))
			if err != nil {
				t.Fatal(err)
			}
			bad.Header = req.Header.Clone()
			if code := serve(handler, bad); code != http.StatusUnauthorized {
				t.Fatalf("tampered body answered %d, want 401", code)
			}
		}
		switch code := serve(handler, signedAt(t, body, now)); code {
		case http.StatusOK, http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("signed body answered %d", code)
		}
		for _, c := range dec.Calls() {
			if !strings.Contains(c, " U0ALICE ") {
				t.Fatalf("a click by someone not listed reached the actions stage: %q", c)
			}
		}
	})
}

func signedAt(t *testing.T, body []byte, ts time.Time) *http.Request {
	req, err := slackenv.SignedRequest(t.Context(), "/slack/interactions", signingSecret, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
