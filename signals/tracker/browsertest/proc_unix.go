//go:build unix

package browsertest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts chromedriver in its own process group, so that
// killProcessGroup also ends the Chromium processes it started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
