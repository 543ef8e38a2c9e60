// Package audit is podmedic's audit trail: the records the stages write on the PODMEDIC_AUDIT
// stream (findings, proposal transitions, scheduled runs, refusal notices), the subjects they
// are written on, and the read-only reader the on-call digest and `podmedic digest` use.
//
// Writers publish through the bus; the record types and subjects are defined here, once.
package audit
