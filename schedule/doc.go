// Package schedule runs podmedic's scheduled jobs — cleanup sweeps and the on-call digest — on
// cron schedules, on one replica only: the leader elected with a Kubernetes Lease.
//
// A sweep (Sweeper) takes the findings the rules make now about pods that match its selector,
// keeps those whose failure began more than older_than ago (rules.Registry.FailureSince), oldest first, and
// hands each to the actions stage within the job's budget per run: auto mode acts through the
// one guard (Guard.Do: scope, global budgets, cooldown, dry-run, re-verification of the pod
// just before acting), approve mode proposes through the Service (one proposal per pod, never
// twice). Each run is one Report: acted on N, refused M by reason, K left for the next run.
//
// The digest (Digester) reads the audit stream over a window (findings, proposal transitions,
// sweep reports) and the proposals waiting for a decision, and summarises them for the
// on-call channel; `podmedic digest` prints the same.
//
// The Scheduler runs the jobs with robfig/cron while its replica leads (Elector: LeaseElector
// with ReleaseOnCancel, or AlwaysLeader for one process). Each run first claims
// "schedule.<job>.<scheduled unix time>" on the bus, so a tick is run once across replicas,
// restarts and leader changes. A tick missed while no replica led runs once, late, when a
// leader starts, if it is no older than the job's interval (at most an hour); a run still
// going when the next tick comes makes that tick skip (cron.SkipIfStillRunning, logged).
//
// Time comes from Options.Now and the timers of the standard library, so tests run the
// scheduler in a testing/synctest bubble without sleeping.
package schedule
