package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// goBench parses `go test -bench` output: benchmark name (without the -N
// GOMAXPROCS suffix) → unit → the median of that figure over repeated runs
// (-count).
func goBench(path string) (map[string]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only
	runs := map[string]map[string][]float64{}
	suffix := regexp.MustCompile(`-\d+$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := suffix.ReplaceAllString(fields[0], "")
		if runs[name] == nil {
			runs[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err == nil {
				runs[name][fields[i+1]] = append(runs[name][fields[i+1]], v)
			}
		}
	}
	out := map[string]map[string]float64{}
	for name, units := range runs {
		out[name] = map[string]float64{}
		for unit, vs := range units {
			out[name][unit] = percentile(vs, .5)
		}
	}
	return out, sc.Err()
}

// inProcessFigures turns the Go benchmarks into the table's figures.
func inProcessFigures(b map[string]map[string]float64) []Figure {
	get := func(name, unit string) float64 { return b[name][unit] }
	var figs []Figure
	bank, dep, bid := get("BenchmarkTxExecution/bank-send", "ns/tx"), get("BenchmarkTxExecution/create-deployment", "ns/tx"), get("BenchmarkTxExecution/create-bid", "ns/tx")
	if bank > 0 && dep > 0 {
		figs = append(figs,
			Figure{Name: "execution: bank send per tx (blocks of 100 signed txs)", Value: bank / 1e3, Unit: "µs"},
			Figure{Name: "execution: create-deployment per tx", Value: dep / 1e3, Unit: "µs"},
			Figure{Name: "execution: create-bid per tx", Value: bid / 1e3, Unit: "µs"},
			Figure{Name: "execution throughput create-deployment ÷ bank send", Value: bank / dep, Unit: "×", Target: "≥ 0.9"},
			Figure{Name: "execution throughput create-bid ÷ bank send", Value: bank / bid, Unit: "×", Target: "≥ 0.9"},
		)
		if r := get("BenchmarkTxExecution/interleaved", "deployment-ratio"); r > 0 {
			figs = append(figs,
				Figure{Name: "execution throughput create-deployment ÷ bank send, blocks of each kind in turn", Value: r, Unit: "×", Target: "≥ 0.9",
					Note: "median over runs of each run's own ratio: blocks run side by side see the same machine"},
				Figure{Name: "execution throughput create-bid ÷ bank send, blocks of each kind in turn", Value: get("BenchmarkTxExecution/interleaved", "bid-ratio"), Unit: "×", Target: "≥ 0.9"})
		}
		figs = append(figs,
			Figure{Name: "gas: bank send", Value: get("BenchmarkTxExecution/bank-send", "gas/tx"), Unit: "gas"},
			Figure{Name: "gas: create-deployment", Value: get("BenchmarkTxExecution/create-deployment", "gas/tx"), Unit: "gas", Target: "≤ 95k"},
			Figure{Name: "gas: create-bid", Value: get("BenchmarkTxExecution/create-bid", "gas/tx"), Unit: "gas", Target: "≤ 80k"},
		)
	}
	for _, f := range []struct{ label, unit, outUnit string }{
		{"x/market EndBlock (5 auctions close)", "market-ns/op", "µs"},
		{"x/escrow EndBlock (5 accounts run dry, their leases close)", "escrow-ns/op", "µs"},
		{"whole block through the app (5 orders+bids, 5 auctions close, 5 accounts run dry; FinalizeBlock+Commit)", "ns/block", "ms"},
	} {
		scale := 1e3
		if f.outUnit == "ms" {
			scale = 1e6
		}
		for _, n := range []int{1_000, 10_000, 100_000} {
			if v := get(fmt.Sprintf("BenchmarkEndBlock/leases=%d", n), f.unit); v > 0 {
				figs = append(figs, Figure{Name: fmt.Sprintf("%s, %dk running leases", f.label, n/1000), Value: v / scale, Unit: f.outUnit})
			}
		}
		small, big := get("BenchmarkEndBlock/leases=1000", f.unit), get("BenchmarkEndBlock/leases=100000", f.unit)
		if small > 0 && big > 0 {
			figs = append(figs, Figure{Name: f.label + ", 100k ÷ 1k", Value: big / small, Unit: "×", Target: "≤ 1.1"})
		}
	}
	if one := get("BenchmarkAttestGas/leases=1/down=0", "gas/tx"); one > 0 {
		figs = append(figs,
			Figure{Name: "gas: attestation (MsgAttest), 1 active lease", Value: one, Unit: "gas"},
			Figure{Name: "gas: attestation, 300 active leases, one tx", Value: get("BenchmarkAttestGas/leases=300/down=0", "gas/tx"), Unit: "gas"},
			Figure{Name: "gas: attestation, 1,000 active leases, one tx", Value: get("BenchmarkAttestGas/leases=1000/down=0", "gas/tx"), Unit: "gas"},
			Figure{Name: "gas: attestation, 1,000 leases ÷ 1 lease", Value: get("BenchmarkAttestGas/leases=1000/down=0", "gas/tx") / one, Unit: "×", Target: "flat (≤ 1.05)"},
			Figure{Name: "gas: attestation, 1,000 leases of which 10 down", Value: get("BenchmarkAttestGas/leases=1000/down=10", "gas/tx"), Unit: "gas"},
		)
	}
	if v := get("BenchmarkStatePerLease", "bytes/lease"); v > 0 {
		figs = append(figs,
			Figure{Name: "state per live lease (deployment, order, lease, escrow account+payment, indexes)", Value: v, Unit: "bytes", Target: "≤ 2048"},
			Figure{Name: "state left after 10k deployments opened, leased and closed", Value: get("BenchmarkStatePerLease", "bytes-left-after-10k"), Unit: "bytes", Target: "≈ 0"},
		)
	}
	return figs
}
