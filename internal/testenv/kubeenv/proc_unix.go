//go:build unix

package kubeenv

import (
	"os/exec"
	"syscall"
)

// terminate sends SIGTERM to the process group of cmd.
func terminate(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
}

// kill sends SIGKILL to the process group of cmd.
func kill(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
