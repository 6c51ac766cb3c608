package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/docker/docker/api/types/container"
)

// ContainerUsage is what a container uses now: CPU in percent of one core
// over the engine's last sampling interval, and memory (without the page
// cache the kernel can drop) against its limit.
type ContainerUsage struct {
	CPUPercent  float64
	MemoryBytes uint64
	MemoryLimit uint64
}

// Usage samples the running containers of a lease, by container ID. Each
// sample takes the engine about a second; the containers are sampled
// together.
func (r *Runtime) Usage(ctx context.Context, l LeaseRef) (map[string]ContainerUsage, error) {
	cs, err := r.leaseContainers(ctx, l)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  = map[string]ContainerUsage{}
		errs []error
	)
	sem := make(chan struct{}, 8)
	for _, c := range cs {
		if c.State != container.StateRunning {
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			u, err := r.sample(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out[id] = u
		}(c.ID)
	}
	wg.Wait()
	if len(out) == 0 && len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// sample reads one container's stats from the engine (not streamed: the
// engine takes two readings to give the CPU delta).
func (r *Runtime) sample(ctx context.Context, id string) (ContainerUsage, error) {
	res, err := r.cli.ContainerStats(ctx, id, false)
	if err != nil {
		return ContainerUsage{}, fmt.Errorf("stats of %s: %w", id, err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return ContainerUsage{}, fmt.Errorf("stats of %s: %w", id, err)
	}
	return usageOf(st), nil
}

// usageOf turns the engine's counters into usage, as `docker stats` does.
func usageOf(st container.StatsResponse) ContainerUsage {
	u := ContainerUsage{MemoryLimit: st.MemoryStats.Limit}
	u.MemoryBytes = st.MemoryStats.Usage
	// cgroup v2 reports inactive_file, v1 total_inactive_file: cache the
	// kernel reclaims before it kills anything.
	for _, k := range []string{"inactive_file", "total_inactive_file"} {
		if v, ok := st.MemoryStats.Stats[k]; ok && v < u.MemoryBytes {
			u.MemoryBytes -= v
			break
		}
	}
	cpu := float64(st.CPUStats.CPUUsage.TotalUsage) - float64(st.PreCPUStats.CPUUsage.TotalUsage)
	sys := float64(st.CPUStats.SystemUsage) - float64(st.PreCPUStats.SystemUsage)
	cpus := float64(st.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(st.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpu > 0 && sys > 0 && cpus > 0 {
		u.CPUPercent = cpu / sys * cpus * 100
	}
	return u
}
