// Command workload is the container the runtime tests run. It has no
// dependencies so it can be compiled statically into a FROM-scratch image
// (see provider/runtime/imagebuild), and it does, in this order, whatever its
// flags ask:
//
//	-print-stderr TEXT                 print TEXT once to stderr
//	-print TEXT -count N -interval D   print TEXT to stdout N times, D apart
//	-cat-cgroup                        print the container's own cgroup limits
//	-listen ADDR                       accept TCP connections, answer "hello from HOST"
//	-dial ADDR -dial-timeout D -dial-retry-for D
//	                                   connect to ADDR, print "dial ADDR: ok ..." or
//	                                   "dial ADDR: failed ..."; a failure makes the
//	                                   exit code 1
//	-sleep D                           then sleep D (with -listen and no -sleep: forever)
//	-exit N                            then exit with N
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	var (
		text        = flag.String("print", "", "text to print to stdout")
		count       = flag.Int("count", 1, "how many times to print -print")
		interval    = flag.Duration("interval", 0, "pause between -print lines")
		stderrText  = flag.String("print-stderr", "", "text to print once to stderr")
		catCgroup   = flag.Bool("cat-cgroup", false, "print memory, cpu and pids cgroup limits")
		listen      = flag.String("listen", "", "TCP address to accept connections on")
		dial        = flag.String("dial", "", "TCP address to connect to")
		dialTimeout = flag.Duration("dial-timeout", time.Second, "timeout of one connection attempt")
		dialRetry   = flag.Duration("dial-retry-for", 0, "keep retrying a failed -dial this long")
		sleep       = flag.Duration("sleep", 0, "sleep this long before exiting")
		exitCode    = flag.Int("exit", 0, "exit code")
	)
	flag.Parse()

	if *stderrText != "" {
		fmt.Fprintln(os.Stderr, *stderrText)
	}
	if *text != "" {
		for i := 0; i < *count; i++ {
			if i > 0 {
				time.Sleep(*interval)
			}
			fmt.Println(*text)
		}
	}
	if *catCgroup {
		printCgroupLimits()
	}
	if *listen != "" {
		if err := serve(*listen); err != nil {
			fmt.Fprintf(os.Stderr, "listen %s: %v\n", *listen, err)
			os.Exit(2)
		}
	}
	code := *exitCode
	if *dial != "" && !dialOnce(*dial, *dialTimeout, *dialRetry) {
		code = 1
	}
	switch {
	case *sleep > 0:
		time.Sleep(*sleep)
	case *listen != "":
		select {}
	}
	os.Exit(code)
}

// printCgroupLimits prints "memory.limit=", "cpu.quota=", "cpu.period=" and
// "pids.max=" lines, read from cgroup v1 files, or from cgroup v2 files when
// the v1 ones are absent.
func printCgroupLimits() {
	v1 := map[string]string{
		"memory.limit": "/sys/fs/cgroup/memory/memory.limit_in_bytes",
		"cpu.quota":    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
		"cpu.period":   "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
		"pids.max":     "/sys/fs/cgroup/pids/pids.max",
	}
	if _, err := os.Stat(v1["memory.limit"]); err == nil {
		for _, k := range []string{"memory.limit", "cpu.quota", "cpu.period", "pids.max"} {
			fmt.Printf("%s=%s\n", k, readTrim(v1[k]))
		}
		return
	}
	// cgroup v2: cpu.max is "QUOTA PERIOD" ("max PERIOD" when unlimited).
	quota, period, _ := strings.Cut(readTrim("/sys/fs/cgroup/cpu.max"), " ")
	fmt.Printf("memory.limit=%s\n", readTrim("/sys/fs/cgroup/memory.max"))
	fmt.Printf("cpu.quota=%s\n", quota)
	fmt.Printf("cpu.period=%s\n", period)
	fmt.Printf("pids.max=%s\n", readTrim("/sys/fs/cgroup/pids.max"))
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

// serve accepts connections in the background and answers each with one
// line naming this host.
func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	fmt.Printf("listening on %s\n", ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", host)
			c.Close()
		}
	}()
	return nil
}

// dialOnce connects to addr, retrying for up to retryFor, and reports the
// outcome on stdout.
func dialOnce(addr string, timeout, retryFor time.Duration) bool {
	deadline := time.Now().Add(retryFor)
	for {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(timeout))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			fmt.Printf("dial %s: ok: %s\n", addr, strings.TrimSpace(line))
			return true
		}
		if time.Now().After(deadline) {
			fmt.Printf("dial %s: failed: %v\n", addr, err)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}
