// Command pause is the sandbox ("pause") container of the local
// Kubernetes cluster the tests run (scripts/k8s): it holds a pod's
// namespaces and does nothing else until it is told to stop. It reaps
// orphaned children, as PID 1 of a pod must.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
