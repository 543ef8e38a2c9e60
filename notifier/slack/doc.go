// Package slack delivers podmedic's notices to Slack and takes Approve/Deny decisions back.
//
// A Notifier renders each notice as a Block Kit message (what happened, the evidence, the
// action with its exact parameters, and for proposals the Approve/Deny buttons with action ids
// podmedic.approve/podmedic.deny and the proposal id as value and block_id), routes it to a
// channel, folds storms of the same failure into one message per group, and keeps that message
// current with coalesced chat.update calls. After a decision it replaces the buttons with who
// decided, when and what happened, and records the outcome in a thread reply.
//
// Delivery is asynchronous: Notify accepts a notice into a bounded queue and Run's per-channel
// senders deliver it: at once while Slack accepts every call, and, for a minute after Slack
// answered a channel 429, paced to one message per second and coalescing group updates,
// honouring 429 Retry-After (with a default when the header is missing) and retrying 5xx and
// network errors with exponential backoff, so nothing accepted is dropped while Run runs and
// nothing is posted twice.
//
// Inside, a notice goes three ways in turn: the intake (Notify; dedup of findings, grouping,
// the index of messages) under the Notifier's lock; the lane of its channel, which owns the
// channel's messages under its own lock, picks its next call and paces it (a
// golang.org/x/time/rate limiter, Retry-After, backoff); and the Web API call itself, made
// with no lock held. Only Run's context reaches the lanes and the Socket Mode connection;
// decisions are handed to the Decider given to Run.
//
// Interactions arrive over Socket Mode (run by Run when Config.SocketMode is set) or as signed
// POSTs to InteractionHandler (v0 HMAC with the signing secret, 5-minute window, replays
// refused). Only approvers (user ids, or members of user groups) may decide; anyone else gets an
// ephemeral refusal and nothing happens.
//
// # Decisions
//
//   - Notify's nil means accepted for delivery, not delivered: Run delivers it, retrying for as
//     long as it runs. Duplicates (the same finding key; the same proposal in the same or an
//     older state) are accepted and ignored. ErrQueueFull (more than WithQueueSize, default
//     5000, notices undelivered) and ErrStopped mean "not accepted, retry"; ErrInvalidNotice
//     means never. Notices still undelivered when Run stops are logged and lost with the
//     process; call Flush with a timeout before stopping.
//   - Grouping: findings without a pending proposal fold by GroupKey (rule + namespace +
//     Airflow dag/task, else owner, else Spark app) and channel, for WithGroupWindow (default
//     10m) after the group's first message. The message shows the first failure in full and
//     the next 10 in a list; the rest go to thread replies (at most 200 per reply). Updates of
//     a group message, and partial thread replies, come at once while the channel is not
//     rate limited, else at most once per WithUpdateInterval (default 5s); a full reply goes
//     at once.
//   - Proposals are never folded: each has its own buttons and its own decision.
//   - Pacing: none until Slack answers a channel 429; then, for WithPaceFor (1m) after the
//     last 429, one chat.postMessage/chat.update per second (WithChannelInterval) and group
//     updates coalesced (WithSteadyPacing: always). 429 waits Retry-After, or WithRetryAfter (1s) doubling while the header stays missing;
//     5xx, network errors and Slack errors a human must fix (not_in_channel, invalid_auth)
//     back off 1s doubling to 1m; blocks Slack refuses fall back to the text; a message that
//     is gone (deleted) is posted again.
//   - Routing: the first route named Finding.Route whose severities and namespaces match;
//     else Finding.Route itself when it is a literal channel ("#name" or a channel id: a rule's
//     fixed notify.channel); else the default channel.
//   - A pending proposal whose ExpiresAt has passed loses its buttons at once; the thread reply
//     waits for the expired decision notice (or a refused click).
//   - Replays: POST /slack/interactions refuses a signature already seen (409) for 6 minutes;
//     clicks are deduplicated across transports by user, action_ts, trigger_id, proposal and
//     action for 10 minutes.
//   - Approvers: only members of slack.team_ids (default: the bot token's workspace, from
//     auth.test) who are listed approvers; with none listed nobody may decide from Slack.
//     Group members are cached for
//     WithApproverRefresh (5m), re-read at most every 30s when an unknown user clicks, and the
//     stale cache is used while Slack fails.
package slack
