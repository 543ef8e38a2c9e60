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
// senders deliver it, pacing themselves to Slack's one message per second per channel,
// honouring 429 Retry-After (with a default when the header is missing) and retrying 5xx and
// network errors with exponential backoff, so nothing accepted is dropped while Run runs and
// nothing is posted twice.
//
// Interactions arrive over Socket Mode (run by Run when Config.SocketMode is set) or as signed
// POSTs to InteractionHandler (v0 HMAC with the signing secret, 5-minute window, replays
// refused). Only approvers (user ids, or members of user groups) may decide; anyone else gets an
// ephemeral refusal and nothing happens.
package slack
