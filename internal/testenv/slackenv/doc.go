// Package slackenv is a Slack-compatible Web API and Socket Mode server for tests: it answers
// the methods podmedic's Slack notifier calls (chat.postMessage, chat.update,
// chat.postEphemeral, usergroups.users.list, auth.test, apps.connections.open and the Socket
// Mode websocket), records every call for assertions, and can behave like Slack on a bad night:
// per-channel rate limits answered with 429 (with or without Retry-After) and spells of 5xx.
//
// A Server listens on 127.0.0.1 (Start) or on an in-memory network (StartInMemory) whose
// connections are made of net.Pipe, so that a test can run the notifier and the server inside a
// testing/synctest bubble and let fake time pass through Retry-After waits and coalescing
// intervals. Everything is deterministic: message timestamps and channel ids are counters, and
// "sometimes without Retry-After" is every Nth 429.
package slackenv
