// Package notifier tells humans what podmedic found and did: the console (and, in later
// stages, Slack and the local inbox). Notifiers are small: one Notify method, with a Func
// adapter and a Fanout combinator.
package notifier
