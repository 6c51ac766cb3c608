// Command hello is the local cluster's smoke-test workload
// (scripts/k8s/smoke.sh): it prints its arguments and then sleeps for
// -sleep (0: exits at once, as a Job).
package main

import (
	"flag"
	"fmt"
	"strings"
	"time"
)

func main() {
	sleep := flag.Duration("sleep", 0, "how long to run after printing")
	flag.Parse()
	fmt.Println("hello from gpunet:", strings.Join(flag.Args(), " "))
	time.Sleep(*sleep)
}
