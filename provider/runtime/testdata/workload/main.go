// Command workload is the container the runtime tests run. It has no
// dependencies so it can be compiled statically into a FROM-scratch image
// (see provider/runtime/imagebuild), and it does, in this order, whatever its
// flags ask:
//
//	-stat PATH                         print "stat PATH: size=BYTES" (or missing)
//	-http ADDR                         serve HTTP: "hello from HOST for HOSTHEADER"
//	-statfs PATH                       print "statfs PATH: size=BYTES"
//	-endless-line                      print one line without a newline, forever
//	-write-mib N -write-path P         write N MiB to P, print "wrote N MiB" or
//	                                   "write failed after K MiB: ERR"
//	-fork N                            start N sleeping children, print "started K of N"
//	-echo-stdin                        print each line of stdin upper-cased, then "stdin ended"
//	-winsize N                         print "winsize ROWSxCOLS" of the terminal N times, 1s apart
//	-alloc-mib N                       after -print, allocate and touch N MiB (an OOM kill)
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
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unsafe"
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
		writeMiB    = flag.Int("write-mib", 0, "write this many MiB to -write-path, reporting how far it got")
		writePath   = flag.String("write-path", "/fill", "file -write-mib writes")
		fork        = flag.Int("fork", 0, "start this many child processes (each sleeps), reporting how many started")
		endless     = flag.Bool("endless-line", false, "print one line that never ends")
		statfs      = flag.String("statfs", "", "print the size of the filesystem at this path")
		stat        = flag.String("stat", "", "print the size of this file, or that it is missing")
		httpAddr    = flag.String("http", "", "serve HTTP on this address: every request is answered with this host's name and the Host header")
		echoStdin   = flag.Bool("echo-stdin", false, "copy standard input to standard output, upper-cased, until it ends")
		winsize     = flag.Int("winsize", 0, "print the terminal's size this many times, a second apart")
		allocMiB    = flag.Int("alloc-mib", 0, "after -print, allocate and touch this many MiB of memory, 16 MiB at a time, reporting how far it got")
	)
	flag.Parse()

	if *httpAddr != "" {
		host, _ := os.Hostname()
		go func() {
			err := http.ListenAndServe(*httpAddr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "hello from %s for %s\n", host, r.Host)
			}))
			fmt.Fprintf(os.Stderr, "http %s: %v\n", *httpAddr, err)
			os.Exit(2)
		}()
		if *sleep == 0 && *listen == "" {
			select {}
		}
	}

	if *stat != "" {
		if fi, err := os.Stat(*stat); err != nil {
			fmt.Printf("stat %s: missing: %v\n", *stat, err)
		} else {
			fmt.Printf("stat %s: size=%d\n", *stat, fi.Size())
		}
	}
	if *statfs != "" {
		var st syscall.Statfs_t
		if err := syscall.Statfs(*statfs, &st); err != nil {
			fmt.Printf("statfs %s: %v\n", *statfs, err)
		} else {
			fmt.Printf("statfs %s: size=%d\n", *statfs, uint64(st.Blocks)*uint64(st.Bsize))
		}
	}

	if *endless {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for {
			if _, err := os.Stdout.Write(chunk); err != nil {
				os.Exit(3)
			}
		}
	}
	if *writeMiB > 0 {
		writeFill(*writePath, *writeMiB)
	}
	if *fork > 0 {
		forkChildren(*fork)
	}

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
	if *echoStdin {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			fmt.Println(strings.ToUpper(sc.Text()))
		}
		fmt.Println("stdin ended")
	}
	for i := 0; i < *winsize; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		var ws struct{ Row, Col, X, Y uint16 }
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, os.Stdout.Fd(), syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws))); errno != 0 {
			fmt.Printf("winsize: %v\n", errno)
		} else {
			fmt.Printf("winsize %dx%d\n", ws.Row, ws.Col)
		}
	}
	if *allocMiB > 0 {
		var keep [][]byte
		for got := 0; got < *allocMiB; got += 16 {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = byte(i)
			}
			keep = append(keep, b)
			fmt.Printf("allocated %d MiB\n", got+16)
		}
		fmt.Printf("holding %d MiB\n", len(keep)*16)
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

// writeFill writes n MiB of zeros to path and reports "wrote n MiB" or
// where and why it stopped.
func writeFill(path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Printf("write failed after 0 MiB: %v\n", err)
		return
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := 0; i < n; i++ {
		if _, err := f.Write(buf); err != nil {
			fmt.Printf("write failed after %d MiB: %v\n", i, err)
			return
		}
		if err := f.Sync(); err != nil {
			fmt.Printf("write failed after %d MiB: %v\n", i, err)
			return
		}
	}
	fmt.Printf("wrote %d MiB\n", n)
}

// forkChildren starts n copies of this program that sleep, and reports
// how many started before the kernel refused ("started k of n").
func forkChildren(n int) {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	started := 0
	var firstErr error
	for i := 0; i < n; i++ {
		cmd := exec.Command(self, "-sleep", "1h")
		if err := cmd.Start(); err != nil {
			firstErr = err
			break
		}
		started++
	}
	fmt.Printf("started %d of %d children (first refusal: %v)\n", started, n, firstErr)
}
