// Command gpunet-bench measures the network figures of ARCHITECTURE.md §6 on
// this machine: rental latency (deployment submitted → first bid → lease →
// container running) over many deployments on a local chain with ~1 s
// blocks, a real provider daemon and a locally built image; and the
// provider daemon's memory and CPU while it tracks many leases. It prints
// one line per figure and, with -json, writes them for `make bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Figure is one measured number.
type Figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Note   string  `json:"note,omitempty"`
}

func main() {
	var (
		gpunetd        = flag.String("gpunetd", "build/gpunetd", "gpunetd binary")
		provider       = flag.String("provider", "build/gpunet-provider", "gpunet-provider binary")
		cfgPath        = flag.String("config", "config.yml", "local network config")
		deploys        = flag.Int("deployments", 20, "deployments for the latency figures")
		tracked        = flag.Int("leases", 1000, "running leases (one container each) for the daemon's footprint figure")
		jsonOut        = flag.String("json", "", "write the figures as JSON to this file")
		keepDir        = flag.Bool("keep", false, "keep the work directory")
		imageRepo      = flag.String("image-src", "examples/images/gpu-job", "Go package of the job image")
		goBenchIn      = flag.String("gobench", "", "also report the in-process figures from this `go test -bench` output")
		noNet          = flag.Bool("no-network", false, "skip the network figures")
		loadAccounts   = flag.Int("load-accounts", 40, "accounts sending the throughput load")
		loadPerAccount = flag.Int("load-per-account", 100, "pre-signed transactions per account and kind")
		only           = flag.String("only", "latency,throughput,footprint", "network figures to measure")
		loadRounds     = flag.Int("load-rounds", 3, "rounds of the throughput load (figures are medians)")
		provGODEBUG    = flag.String("provider-godebug", "", "GODEBUG for the provider daemon only (e.g. gctrace=1)")
		blockTime      = flag.Duration("block-time", 0, "the chain's timeout_commit instead of config.yml's (the latency figures are named with it)")
	)
	flag.Parse()
	var figs []Figure
	if *goBenchIn != "" {
		b, err := goBench(*goBenchIn)
		must(err)
		figs = append(figs, inProcessFigures(b)...)
	}
	if *noNet {
		report(figs, *jsonOut)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	// A failing network step still prints what was measured before it, and
	// stops the chain and daemon it started (os.Exit skips the defers).
	var env *bench
	must := func(err error) {
		if err != nil {
			if env != nil {
				env.stop()
			}
			report(figs, *jsonOut)
			fmt.Fprintln(os.Stderr, "gpunet-bench:", err)
			os.Exit(1)
		}
	}

	dir, err := os.MkdirTemp("", "gpunet-bench")
	must(err)
	if !*keepDir {
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintf(os.Stderr, "cannot remove %s: %v\n", dir, err)
			}
		}()
	}
	abs := func(p string) string { a, err := filepath.Abs(p); must(err); return a }
	env = &bench{gpunetd: abs(*gpunetd), provider: abs(*provider), dir: dir, providerGODEBUG: *provGODEBUG, blockTime: *blockTime}
	must(env.startChain(ctx, abs(*cfgPath)))
	defer env.stop()
	must(env.buildImage(ctx, abs(*imageRepo)))
	must(env.startProvider(ctx, *tracked))

	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	if want["latency"] {
		lat, err := env.latency(ctx, *deploys)
		must(err)
		figs = append(figs, lat...)
	}
	if want["throughput"] {
		tput, err := env.throughput(ctx, *loadAccounts, *loadPerAccount, *loadRounds)
		must(err)
		figs = append(figs, tput...)
	}
	if want["footprint"] {
		foot, err := env.footprint(ctx, *tracked)
		must(err)
		figs = append(figs, foot...)
	}

	report(figs, *jsonOut)
}

// report prints the table and writes the JSON.
func report(figs []Figure, jsonOut string) {
	fmt.Printf("\n%-82s %12s %-7s %s\n", "figure", "value", "unit", "target")
	for _, f := range figs {
		fmt.Printf("%-82s %12.2f %-7s %s\n", f.Name, f.Value, f.Unit, f.Target)
		if f.Note != "" {
			fmt.Printf("    %s\n", f.Note)
		}
	}
	if jsonOut != "" {
		raw, _ := json.MarshalIndent(figs, "", "  ")
		must(os.WriteFile(jsonOut, raw, 0o644))
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpunet-bench:", err)
		os.Exit(1)
	}
}

// percentile of sorted values (nearest rank).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}
