// Package inbox is podmedic's local approval page for running without Slack: a small web page,
// bound to 127.0.0.1, that lists pending proposals with Approve and Deny buttons and the history
// of decisions. `podmedic demo` and `podmedic run` without a Slack token serve it.
package inbox
