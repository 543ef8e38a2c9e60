// Package notifier tells humans what podmedic found and did: the console here, Slack in
// notifier/slack and the local inbox in notifier/inbox. Notifiers are small: one Notify
// method, with a Func adapter and a Fanout combinator; Decider and ProposalLister are what
// Slack and the inbox ask of the actions stage.
package notifier
