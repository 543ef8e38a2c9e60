//go:build unix && !linux

package kubeenv

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group. Outside Linux there
// is no parent-death signal: a test process that dies leaves it running.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
