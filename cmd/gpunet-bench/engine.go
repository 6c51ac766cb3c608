package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"

	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// engineParallel is how many deploys runtimeAlone keeps in flight: more
// does not start containers faster on the bench machine.
const engineParallel = 8

// runtimeAlone deploys n leases of the footprint group straight through
// gpunet's Docker runtime, engineParallel at a time, with no chain, tenant
// API or daemon involved: the same containers, networks, labels and limits
// the daemon creates, at the engine's own pace. The daemon's figure is to be
// read against it. Its containers carry another provider's label (the
// tenant's address), so the daemon never sees them, and all are removed
// before it returns (removeProvider).
func (b *bench) runtimeAlone(ctx context.Context, n int, owner string) (Figure, error) {
	d, err := sdl.Parse([]byte(footprintSDL))
	if err != nil {
		return Figure{}, err
	}
	rt, err := runtime.New(ctx, runtime.Options{Provider: owner, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return Figure{}, err
	}
	defer func() { _ = rt.Close() }() // its containers are removed below, by label
	sem := make(chan struct{}, engineParallel)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		ref := runtime.LeaseRef{Order: markettypes.OrderID{Owner: owner, Dseq: uint64(i + 1), Gseq: 1, Oseq: 1}, Provider: owner}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := rt.Deploy(ctx, runtime.Workload{Lease: ref, Group: d.Manifest.Groups[0]}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	close(errs)
	err = <-errs
	if rerr := removeProvider(context.WithoutCancel(ctx), owner); err == nil {
		err = rerr
	}
	if err != nil {
		return Figure{}, fmt.Errorf("runtime alone: %w", err)
	}
	return Figure{Name: fmt.Sprintf("Docker engine alone: %d of the same leases deployed through gpunet's runtime, %d at a time", n, engineParallel),
		Value: took.Seconds(), Unit: "s",
		Note: "no chain, tenant API or daemon: what the engine on this machine allows the daemon's figure below"}, nil
}

// removeProvider removes every container and network carrying provider's
// label: the containers one at a time, because Docker 20.10.24's
// libnetwork deadlocks when containers of one user-defined network are
// removed side by side in numbers (docs/benchmarks.md), then the networks
// (the shared one a runtime keeps for its next lease among them).
func removeProvider(ctx context.Context, provider string) error {
	cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }() // lists and removals: nothing to flush
	label := filters.NewArgs(filters.Arg("label", runtime.LabelProvider+"="+provider))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: label})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			return err
		}
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: label})
	if err != nil {
		return err
	}
	for _, n := range nets {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil {
			return err
		}
	}
	return nil
}

// containerStarts counts the engine's container start events for
// provider's containers from now on, without polling the engine (a list
// walks every container it holds, which would load it while it works):
// wait blocks until n distinct containers have started and returns when
// the nth did; stop ends the event stream. The events are read as they
// come, not only once wait is called: the engine gives a subscriber that
// does not read its events 100 ms before it drops them, and a run that
// dropped a start would wait for it until its limit.
func containerStarts(ctx context.Context, provider string) (wait func(n int, limit time.Duration) (time.Time, error), stop func(), err error) {
	cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("event", string(events.ActionStart)),
		filters.Arg("label", runtime.LabelProvider+"="+provider))})
	type start struct {
		n    int       // distinct containers started so far
		last time.Time // when the latest of them first started
		err  error     // the stream's end
	}
	progress := make(chan start, 1)
	go func() {
		// A container the engine restarts (on-failure) starts again: each
		// is counted once, at its first start.
		started := map[string]bool{}
		var st start
		for st.err == nil {
			select {
			case m := <-msgs:
				if started[m.Actor.ID] {
					continue
				}
				started[m.Actor.ID] = true
				st.n, st.last = len(started), time.Unix(0, m.TimeNano)
			case err := <-errs:
				st.err = fmt.Errorf("engine events: %w", err)
			}
			select { // only the latest progress is kept
			case <-progress:
			default:
			}
			progress <- st
		}
	}()
	return func(n int, limit time.Duration) (time.Time, error) {
		timeout := time.After(limit)
		var st start
		for st.n < n {
			select {
			case st = <-progress:
				if st.err != nil {
					return st.last, st.err
				}
			case <-timeout:
				return st.last, fmt.Errorf("%d of %d containers started within %s", st.n, n, limit)
			}
		}
		return st.last, nil
	}, func() { cancel(); _ = cli.Close() }, nil
}
