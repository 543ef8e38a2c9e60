// Package app assembles podmedic's stages into the running daemon: the Kubernetes client, the
// bus, the watchers, the rule handler, the actions stage, the notifiers and the schedules,
// under one errgroup, with the HTTP endpoints for health, readiness and metrics. It only
// constructs, connects, starts and stops: each protocol lives in the package of its concept.
// The CLI (cmd/podmedic) and the demo call Run.
package app
