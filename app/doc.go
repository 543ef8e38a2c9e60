// Package app assembles podmedic's stages into the running daemon: the Kubernetes client, the
// bus, the watchers, the rule handlers and the notifier, under one errgroup, with the HTTP
// endpoints for health, readiness and metrics. The CLI (cmd/podmedic) and the demo call Run.
package app
