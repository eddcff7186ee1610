// Command pause is the pod sandbox's process for the end-to-end node (containerd's
// sandbox_image): it holds the pod's namespaces until the runtime stops it. The test bed
// cannot pull registry.k8s.io/pause, so scripts/e2e builds this into an image FROM scratch.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
