package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// JobResult is how a job lease ended.
type JobResult struct {
	// Succeeded is true when every container exited with code 0.
	Succeeded bool
	// ExitCodes maps container name to its exit code.
	ExitCodes map[string]int
}

// WaitJob blocks until every container of the lease has exited and reports
// their exit codes. Containers that exited before the call (for instance
// while the daemon was down) count at once. It is meant for jobs; for a
// service it returns at the first time each container is not running.
// A container that was created but never started is an error rather than a
// result: it did not run, so it neither succeeded nor failed.
func (r *Runtime) WaitJob(ctx context.Context, l LeaseRef) (JobResult, error) {
	containers, err := r.leaseContainers(ctx, l)
	if err != nil {
		return JobResult{}, err
	}
	if len(containers) == 0 {
		return JobResult{}, fmt.Errorf("%w %s", ErrLeaseNotFound, leaseName(l))
	}

	// One container after the other: the job is over when the last has
	// exited, and a waiter holds no goroutine or connection of its own.
	res := JobResult{Succeeded: true, ExitCodes: map[string]int{}}
	var errs []error
	for _, c := range containers {
		name, code, err := r.waitExit(ctx, c.ID)
		if ctx.Err() != nil {
			return JobResult{}, ctx.Err()
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.ExitCodes[name] = code
		res.Succeeded = res.Succeeded && code == 0
	}
	if err := errors.Join(errs...); err != nil {
		return JobResult{}, fmt.Errorf("lease %s: %w", leaseName(l), err)
	}
	r.log.Info("job finished", "lease", leaseName(l), "succeeded", res.Succeeded, "exit_codes", res.ExitCodes)
	return res, nil
}

// waitExit waits until the container is not running and returns its name
// and exit code. It does not hold a connection to the engine while it
// waits: one events stream for the whole runtime tells every waiter when
// its container dies (a long-poll per container cost the daemon a socket,
// buffers and goroutines for each of its running jobs).
func (r *Runtime) waitExit(ctx context.Context, id string) (string, int, error) {
	died := r.exits.subscribe(id)
	defer r.exits.unsubscribe(id, died)
	r.exitsOnce.Do(func() { go r.watchExits() })
	for {
		// Inspect after subscribing: a container that dies in between is
		// seen either here or by the event.
		c, err := r.cli.ContainerInspect(ctx, id)
		if err != nil {
			return "", 0, fmt.Errorf("inspect container %s: %w", id, err)
		}
		name := trimSlash(c.Name)
		if c.State == nil || c.State.Status == container.StateCreated {
			return name, 0, fmt.Errorf("container %s was created but never started", name)
		}
		if !c.State.Running && !c.State.Restarting {
			return name, c.State.ExitCode, nil
		}
		select {
		case <-died:
		case <-ctx.Done():
			return "", 0, fmt.Errorf("wait for container %s: %w", id, ctx.Err())
		}
	}
}

// exitWaiters maps container ids to the channels of their waiters.
type exitWaiters struct {
	mu sync.Mutex
	m  map[string][]chan struct{}
}

func (w *exitWaiters) subscribe(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string][]chan struct{}{}
	}
	w.m[id] = append(w.m[id], ch)
	return ch
}

func (w *exitWaiters) unsubscribe(id string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.m[id]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(w.m, id)
	} else {
		w.m[id] = list
	}
}

// notify wakes the waiters of id, or of every container when id is "".
func (w *exitWaiters) notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for cid, list := range w.m {
		if id != "" && cid != id {
			continue
		}
		for _, ch := range list {
			select {
			case ch <- struct{}{}:
			default: // already woken
			}
		}
	}
}

// watchExits follows the engine's die events for this provider's
// containers until the runtime is closed. No death is missed: Events
// returns only once the engine has accepted the stream, and every waiter is
// then woken to inspect its container again, which covers a container that
// died while the stream was connecting (the first time) or broken (after
// which the stream is opened anew).
func (r *Runtime) watchExits() {
	for r.bg.Err() == nil {
		msgs, errs := r.cli.Events(r.bg, events.ListOptions{Filters: filters.NewArgs(
			filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("event", string(events.ActionDie)),
			filters.Arg("label", LabelProvider+"="+r.opts.Provider))})
		r.exits.notify("")
	stream:
		for {
			select {
			case m := <-msgs:
				r.exits.notify(m.Actor.ID)
			case err := <-errs:
				if r.bg.Err() == nil {
					r.log.Warn("engine events stream ended; reconnecting", "err", err)
				}
				break stream
			}
		}
		select {
		case <-r.bg.Done():
		case <-time.After(time.Second):
		}
	}
}
