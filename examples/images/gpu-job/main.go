// Command gpu-job is gpunet's sample GPU job. It reports the GPU it was
// given (from the NVIDIA driver's /proc entries and NVIDIA_VISIBLE_DEVICES,
// which the container runtime sets from the lease's device request) and
// runs a small, real workload: a Monte Carlo estimate of pi, printed step by
// step. Without a GPU it says so and runs the same workload on the CPU.
// It exits 0 when the work is done.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	steps := flag.Int("steps", 5, "progress steps")
	samples := flag.Int("samples", 2_000_000, "samples per step")
	interval := flag.Duration("interval", 0, "pause between steps (a long-running job for demos and tests)")
	flag.Parse()

	fmt.Printf("gpunet sample job starting on %s/%s with %d CPUs\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	gpus := visibleGPUs()
	if len(gpus) == 0 {
		if d := os.Getenv("GPUNET_DECLARED_GPUS"); d != "" {
			fmt.Printf("lease holds declared GPU(s) %s, but the provider has no NVIDIA driver, so no device is attached\n", d)
		}
		fmt.Println("no GPU visible to this container: running the CPU workload")
	}
	for _, g := range gpus {
		fmt.Printf("GPU: %s\n", g)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	inside, total := 0, 0
	began := time.Now()
	for s := 1; s <= *steps; s++ {
		for i := 0; i < *samples; i++ {
			x, y := rng.Float64(), rng.Float64()
			if x*x+y*y <= 1 {
				inside++
			}
		}
		total += *samples
		pi := 4 * float64(inside) / float64(total)
		fmt.Printf("step %d/%d: %d samples, pi ~ %.6f (error %.2e)\n", s, *steps, total, pi, math.Abs(pi-math.Pi))
		if *interval > 0 && s < *steps {
			time.Sleep(*interval)
		}
	}
	fmt.Printf("done in %s: pi ~ %.6f\n", time.Since(began).Round(time.Millisecond), 4*float64(inside)/float64(total))
}

// visibleGPUs lists the GPUs the driver exposes to this container.
func visibleGPUs() []string {
	var out []string
	infos, _ := filepath.Glob("/proc/driver/nvidia/gpus/*/information")
	for _, f := range infos {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		model, uuid := "", ""
		for _, line := range strings.Split(string(raw), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "Model":
				model = strings.TrimSpace(v)
			case "GPU UUID":
				uuid = strings.TrimSpace(v)
			}
		}
		out = append(out, strings.TrimSpace(model+" "+uuid))
	}
	if len(out) == 0 {
		if v := os.Getenv("NVIDIA_VISIBLE_DEVICES"); v != "" && v != "void" && v != "none" {
			for _, id := range strings.Split(v, ",") {
				out = append(out, "device "+id+" (driver details not mounted)")
			}
		}
	}
	return out
}
