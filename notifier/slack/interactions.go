package slack

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/cache"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/retry"
	"github.com/podmedic/podmedic/notifier"
)

// Replay and duplicate-click windows.
const (
	// signatureWindow is how far a request timestamp may be from now (slack-go's verifier
	// enforces the same 5 minutes); a signature is remembered a little longer.
	signatureWindow = 5 * time.Minute
	replayTTL       = signatureWindow + time.Minute
	clickTTL        = 10 * time.Minute
	decideTimeout   = 30 * time.Second
	maxPayload      = 1 << 20
)

// seenMax bounds the keys a seenSet holds (the oldest go first beyond it).
const seenMax = 100_000

// seenSet remembers keys for a while (clicks already handled, interaction requests already
// accepted) in k8s.io/apimachinery's expiring LRU cache; the lock makes a check and its add
// one step.
type seenSet struct {
	mu sync.Mutex
	c  *cache.LRUExpireCache
}

func newSeenSet() *seenSet { return &seenSet{c: cache.NewLRUExpireCache(seenMax)} }

// add records key for ttl and reports whether it was new.
func (s *seenSet) add(key string, ttl time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.c.Get(key); ok {
		return false
	}
	s.c.Add(key, struct{}{}, max(ttl, time.Second))
	return true
}

// InteractionHandler returns the handler of POST /slack/interactions: it verifies Slack's
// signature (v0 HMAC with the signing secret; a timestamp more than 5 minutes away is refused),
// refuses a request whose signature it has already seen, answers 200 at once and handles the
// click asynchronously.
//
// Statuses: 405 not POST; 413 body over 1 MiB; 401 missing or malformed signature headers
// (no "v0="), stale timestamp, signature mismatch (a tampered body); 409 replay of a request
// already accepted (no action); 400 no parsable payload; 200 otherwise, including clicks that
// are then refused (an unlisted approver, an expired proposal: the user is told ephemerally).
func (n *Notifier) InteractionHandler() http.Handler {
	return http.HandlerFunc(n.serveInteraction)
}

func (n *Notifier) serveInteraction(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if len(body) > maxPayload {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	sv, err := slack.NewSecretsVerifier(r.Header, n.cfg.Secrets.SigningSecret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		n.m.interactions.WithLabelValues("bad_signature").Inc()
		n.o.log.Warn("slack: interaction refused: bad signature", zap.String("reason", err.Error()),
			zap.String("remote", r.RemoteAddr))
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	// The verifier does not deduplicate: the same signed request would pass again within
	// the window. The signature covers timestamp and body, so it identifies the request.
	ts, _ := strconv.ParseInt(r.Header.Get("X-Slack-Request-Timestamp"), 10, 64)
	fresh, err := n.firstSeen(r.Context(), r.Header.Get("X-Slack-Signature"), time.Until(time.Unix(ts, 0).Add(replayTTL)))
	if err != nil {
		n.m.interactions.WithLabelValues("error").Inc()
		n.o.log.Warn("slack: interaction refused: cannot check for a replay", zap.Error(err))
		http.Error(w, "cannot check the request for a replay; try again", http.StatusServiceUnavailable)
		return
	}
	if !fresh {
		n.m.interactions.WithLabelValues("replay").Inc()
		n.o.log.Warn("slack: interaction refused: replayed request", zap.String("remote", r.RemoteAddr))
		http.Error(w, "replayed request", http.StatusConflict)
		return
	}
	form, err := parseForm(body)
	if err != nil || form == "" {
		n.m.interactions.WithLabelValues("bad_request").Inc()
		http.Error(w, "no payload", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form), &cb); err != nil {
		n.m.interactions.WithLabelValues("bad_request").Inc()
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	n.onCallback(&cb)
}

// ReplayClaimer claims a key once across podmedic's replicas for a while (the bus's dedup
// bucket: bus.Claim), so that a signed request replayed to another replica is refused too.
type ReplayClaimer interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// firstSeen reports whether a request with this (verified) signature header is seen for the
// first time. The key is the signature's bytes, not the header's text: the verifier accepts
// the hex in either case, so "v0=AB.." would otherwise replay "v0=ab..".
func (n *Notifier) firstSeen(ctx context.Context, header string, ttl time.Duration) (bool, error) {
	sig, err := hex.DecodeString(strings.TrimPrefix(header, "v0="))
	if err != nil {
		return false, fmt.Errorf("signature header: %w", err)
	}
	key := "slack.replay." + hex.EncodeToString(sig)
	ttl = max(ttl, time.Second)
	if n.o.replayClaims != nil {
		return n.o.replayClaims.Claim(ctx, key, ttl)
	}
	return n.replays.add(key, ttl), nil
}

// parseForm returns the payload field of an application/x-www-form-urlencoded body.
func parseForm(body []byte) (string, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return "", err
	}
	return vals.Get("payload"), nil
}

// onCallback handles a block_actions callback from either transport: each podmedic button
// click is decided asynchronously, once.
func (n *Notifier) onCallback(cb *slack.InteractionCallback) {
	if cb.Type != slack.InteractionTypeBlockActions {
		return
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a.ActionID != ActionApprove && a.ActionID != ActionDeny && a.ActionID != ActionRevoke {
			continue
		}
		id := a.Value
		if id == "" {
			id = a.BlockID
		}
		actionTS := a.ActionTs
		if actionTS == "" {
			actionTS = cb.ActionTs
		}
		key := strings.Join([]string{cb.User.ID, actionTS, cb.TriggerID, id, a.ActionID}, "|")
		if !n.clicks.add(key, clickTTL) {
			n.m.interactions.WithLabelValues("duplicate").Inc()
			continue
		}
		team := cb.User.TeamID
		if team == "" {
			team = cb.Team.ID
		}
		click := click{channel: channel, user: cb.User.ID, id: id, team: team, approve: a.ActionID == ActionApprove,
			revoke: a.ActionID == ActionRevoke, thread: threadOf(cb)}
		n.goAsync(func(ctx context.Context) { n.decide(ctx, click) })
	}
}

type click struct {
	channel, user, id string
	// team is the workspace of the user who clicked (user.team_id; team.id without it).
	team    string
	approve bool
	// revoke: the click revokes the override id; thread is the ts of the message's thread
	// (where the revocation is recorded).
	revoke bool
	thread string
}

// threadOf is the ts of the thread a clicked message is in (its own ts for a root).
func threadOf(cb *slack.InteractionCallback) string {
	switch {
	case cb.Container.ThreadTs != "":
		return cb.Container.ThreadTs
	case cb.Message.ThreadTimestamp != "":
		return cb.Message.ThreadTimestamp
	case cb.Container.MessageTs != "":
		return cb.Container.MessageTs
	}
	return cb.Message.Timestamp
}

// fromOurWorkspace reports whether a click came from a member of a workspace that may decide:
// slack.team_ids, else the bot token's own workspace (auth.test, asked once it answers). A
// Slack Connect guest's user.team_id is their home workspace, not ours.
func (n *Notifier) fromOurWorkspace(ctx context.Context, c click) (bool, error) {
	teams := n.cfg.TeamIDs
	if len(teams) == 0 {
		own, err := n.ownTeam(ctx)
		if err != nil {
			return false, err
		}
		teams = []string{own}
	}
	if c.team == "" || !slices.Contains(teams, c.team) {
		return false, fmt.Errorf("workspace %q is not one of %v", c.team, teams)
	}
	return true, nil
}

// ownTeam is the bot token's workspace, from auth.test; remembered once Slack answered.
func (n *Notifier) ownTeam(ctx context.Context) (string, error) {
	n.mu.Lock()
	team := n.team
	n.mu.Unlock()
	if team != "" {
		return team, nil
	}
	team, err := n.authTest(ctx)
	if err != nil {
		return "", fmt.Errorf("cannot tell this podmedic's workspace: %w", err)
	}
	return team, nil
}

// goAsync runs f off the caller's path (interactions must be acknowledged within 3 seconds),
// at most 16 at a time; Run waits for them when it stops.
func (n *Notifier) goAsync(f func(ctx context.Context)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		n.o.log.Warn("slack: interaction ignored: the notifier is stopping")
		return
	}
	n.async.Go(func() {
		// Not under Run's context: a decision taken goes through even when Run stops.
		ctx, cancel := context.WithTimeout(context.Background(), decideTimeout)
		defer cancel()
		select {
		case n.sem <- struct{}{}:
			defer func() { <-n.sem }()
		case <-ctx.Done():
			return
		}
		f(ctx)
	})
}

// decide applies a click: approvers only, then the Decider, then the message shows the result.
func (n *Notifier) decide(ctx context.Context, c click) {
	verb := map[bool]string{true: "approve", false: "deny"}[c.approve]
	if c.revoke {
		verb = "revoke"
	}
	log := n.o.log.With(zap.String("proposal", c.id), zap.String("user", c.user), zap.String("decision", verb))
	if ok, err := n.fromOurWorkspace(ctx, c); !ok {
		n.m.interactions.WithLabelValues("forbidden").Inc()
		log.Warn("slack: click from another workspace refused", zap.String("team", c.team), zap.Error(err))
		n.ephemeral(ctx, c.channel, c.user, fmt.Sprintf("Only members of this podmedic's Slack workspace may %s proposals. Nothing was done.", verb))
		return
	}
	ok, err := n.approvers.allowed(ctx, c.user)
	if errors.Is(err, errNoApprovers) {
		n.m.interactions.WithLabelValues("no_approvers").Inc()
		log.Warn("slack: click refused: slack.approvers is empty")
		n.ephemeral(ctx, c.channel, c.user, fmt.Sprintf("Nobody may %s from Slack yet: this podmedic has no approvers. "+
			"Set slack.approvers.users (Slack member ids, U…) or slack.approvers.groups (user group ids, S…) in rules.yaml. "+
			"Nothing was done.", verb))
		return
	}
	if err != nil {
		n.m.interactions.WithLabelValues("error").Inc()
		log.Warn("slack: could not check the approver", zap.Error(err))
		n.ephemeral(ctx, c.channel, c.user, fmt.Sprintf("podmedic could not check whether you may %s this (%s). Nothing was done; please try again in a minute.", verb, esc(err.Error())))
		return
	}
	if !ok {
		n.m.interactions.WithLabelValues("forbidden").Inc()
		log.Info("slack: click by a user who is not an approver ignored")
		n.ephemeral(ctx, c.channel, c.user, fmt.Sprintf("You are not allowed to %s this. Nothing was done.", verb))
		return
	}
	n.mu.Lock()
	decider := n.decider
	n.mu.Unlock()
	if c.revoke {
		n.revokeOverride(ctx, c, decider, log)
		return
	}
	if decider == nil {
		n.m.interactions.WithLabelValues("disabled").Inc()
		n.ephemeral(ctx, c.channel, c.user, "Approvals are not enabled in this podmedic. Nothing was done.")
		return
	}
	p, err := decider.Decide(ctx, c.id, c.user, c.approve)
	if err != nil {
		n.m.interactions.WithLabelValues("refused").Inc()
		log.Info("slack: decision refused", zap.Error(err))
		n.ephemeral(ctx, c.channel, c.user, fmt.Sprintf("Could not %s proposal %s: %s", verb, c.id, esc(err.Error())))
		if p != nil {
			n.applyDecision(p)
		} else {
			n.showExpired(c.id)
		}
		return
	}
	n.m.interactions.WithLabelValues(map[bool]string{true: "approved", false: "denied"}[c.approve]).Inc()
	log.Info("slack: decision taken", zap.String("state", string(p.State)))
	if p != nil {
		n.applyDecision(p)
	}
}

// revokeOverride applies a Revoke click: the override ends, the user is told, and the thread
// records who revoked it.
func (n *Notifier) revokeOverride(ctx context.Context, c click, d notifier.Decider, log *zap.Logger) {
	r, ok := d.(notifier.Revoker)
	if !ok {
		n.m.interactions.WithLabelValues("disabled").Inc()
		n.ephemeral(ctx, c.channel, c.user, "Overrides cannot be revoked from Slack in this podmedic. Nothing was done.")
		return
	}
	msg, err := r.RevokeOverride(ctx, c.id, c.user)
	if err != nil {
		n.m.interactions.WithLabelValues("refused").Inc()
		log.Info("slack: revocation refused", zap.Error(err))
		n.ephemeral(ctx, c.channel, c.user, fmt.Sprintf("Could not revoke override %s: %s", c.id, esc(err.Error())))
		return
	}
	n.m.interactions.WithLabelValues("revoked").Inc()
	log.Info("slack: override revoked", zap.String("override", c.id))
	text := fmt.Sprintf(":leftwards_arrow_with_hook: Revoked by <@%s>: %s", c.user, esc(msg))
	if c.channel == "" || c.thread == "" {
		n.ephemeral(ctx, c.channel, c.user, text)
		return
	}
	if _, _, err := n.api.PostMessageContext(ctx, c.channel, slack.MsgOptionText(text, false), slack.MsgOptionTS(c.thread)); err != nil {
		n.countError("chat.postMessage", err)
		log.Warn("slack: the revocation's thread reply failed; telling the user instead", zap.Error(err))
		n.ephemeral(ctx, c.channel, c.user, text)
	}
}

// showExpired makes a pending proposal's message show it expired when its time is up (after
// a refused click, without waiting for the actions stage's notice).
func (n *Notifier) showExpired(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.msgs["p:"+id]
	if !ok {
		return
	}
	l := m.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.proposal.State != finding.StatePending || m.expiredShown ||
		m.proposal.ExpiresAt.IsZero() || time.Now().Before(m.proposal.ExpiresAt) {
		return
	}
	m.expiredShown = true
	m.version++
	l.poke()
}

// runSocketMode keeps a Socket Mode connection until ctx ends, reconnecting with backoff.
func (n *Notifier) runSocketMode(ctx context.Context) {
	opts := []socketmode.Option{socketmode.OptionLog(log.New(zapWriter{n.o.log}, "", 0))}
	if n.o.dialer != nil {
		opts = append(opts, socketmode.OptionDialer(n.o.dialer))
	}
	client := socketmode.New(n.api, opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-client.Events:
				n.onSocketEvent(ctx, client, evt)
			}
		}
	}()
	for failures := 0; ctx.Err() == nil; {
		err := client.RunContext(ctx)
		if ctx.Err() != nil {
			break
		}
		failures++
		d := n.backoff(failures)
		n.countError("apps.connections.open", err)
		n.o.log.Error("slack: socket mode stopped; reconnecting", zap.Error(err), zap.Duration("backoff", d))
		retry.Sleep(ctx, d)
	}
	<-done
}

func (n *Notifier) onSocketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		n.o.log.Info("slack: socket mode connected")
	case socketmode.EventTypeConnectionError:
		n.o.log.Warn("slack: socket mode connection failed", zap.Any("event", fmt.Sprint(evt.Data)))
	case socketmode.EventTypeInvalidAuth:
		n.o.log.Error("slack: socket mode: invalid app token")
	case socketmode.EventTypeInteractive:
		// Acknowledge at once (Slack wants it within 3 seconds); the decision follows.
		if evt.Request != nil {
			if err := client.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
				n.o.log.Warn("slack: socket mode ack failed", zap.Error(err))
			}
		}
		if cb, ok := evt.Data.(slack.InteractionCallback); ok {
			n.onCallback(&cb)
		}
	case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand:
		if evt.Request != nil {
			_ = client.AckCtx(ctx, evt.Request.EnvelopeID, nil)
		}
	}
}

// zapWriter sends slack-go's log lines (debug output only; it never logs tokens) to zap.
type zapWriter struct{ l *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(p)), zap.String("component", "slack-go"))
	return len(p), nil
}
