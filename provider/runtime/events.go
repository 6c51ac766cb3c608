package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// ContainerEvent is something the engine did to one of a lease's
// containers, as the tenant hears of it.
type ContainerEvent struct {
	Time    time.Time
	Kind    string // created, started, exited, oom, stopped, removed, health
	Service string
	Replica int
	// Manifest is the version the container runs (sdl.ManifestGroup.Hash).
	Manifest string
	// ExitCode is set for exited.
	ExitCode int
	// Final is set for an exited service replica the engine will not
	// start again (its restart policy gave up).
	Final bool
	// Detail is the health status, or the signal of a stop.
	Detail string
}

// containerKinds maps the engine's container actions to event kinds; the
// others (attach, exec, top, …) are not lifecycle.
var containerKinds = map[events.Action]string{
	events.ActionCreate:  "created",
	events.ActionStart:   "started",
	events.ActionDie:     "exited",
	events.ActionOOM:     "oom",
	events.ActionKill:    "stopped",
	events.ActionDestroy: "removed",
}

// WatchEvents calls fn for each lifecycle event of this provider's
// containers until ctx ends, following the engine's event stream again
// after it breaks.
func (r *Runtime) WatchEvents(ctx context.Context, fn func(LeaseRef, ContainerEvent)) {
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("label", LabelProvider+"="+r.opts.Provider))
	since := time.Now()
	for ctx.Err() == nil {
		msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: f, Since: strconv.FormatInt(since.Unix(), 10)})
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				if ctx.Err() == nil {
					r.log.Warn("engine event stream broke; following it again", "err", err)
				}
				break stream
			case m := <-msgs:
				since = time.Unix(0, m.TimeNano)
				if l, ev, ok := r.containerEvent(ctx, m); ok {
					fn(l, ev)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// containerEvent reads an engine message; ok is false for what is not a
// lease container's lifecycle.
func (r *Runtime) containerEvent(ctx context.Context, m events.Message) (LeaseRef, ContainerEvent, bool) {
	a := m.Actor.Attributes
	l, ok := leaseFromLabels(a)
	if !ok {
		return LeaseRef{}, ContainerEvent{}, false
	}
	ev := ContainerEvent{Time: time.Unix(0, m.TimeNano), Service: a[LabelService], Manifest: a[LabelManifest]}
	ev.Replica, _ = strconv.Atoi(a[LabelReplica])
	action := m.Action
	if strings.HasPrefix(string(action), string(events.ActionHealthStatus)) {
		ev.Kind, ev.Detail = "health", strings.TrimSpace(strings.TrimPrefix(string(action), string(events.ActionHealthStatus)+":"))
		return l, ev, true
	}
	kind, ok := containerKinds[action]
	if !ok {
		return LeaseRef{}, ContainerEvent{}, false
	}
	ev.Kind = kind
	switch kind {
	case "exited":
		ev.ExitCode, _ = strconv.Atoi(a["exitCode"])
		ev.Final = r.gaveUp(ctx, m.Actor.ID, ev.ExitCode)
	case "stopped":
		ev.Detail = a["signal"]
	case "started":
		if c, err := r.cli.ContainerInspect(ctx, m.Actor.ID); err == nil && c.RestartCount > 0 {
			ev.Detail = fmt.Sprintf("restart %d by the engine", c.RestartCount)
		}
	}
	return l, ev, true
}

// gaveUp reports whether the engine will not restart an exited container:
// a job, a clean exit, or a service past its restart budget.
func (r *Runtime) gaveUp(ctx context.Context, id string, exitCode int) bool {
	c, err := r.cli.ContainerInspect(ctx, id)
	if err != nil || c.HostConfig == nil {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch {
	case p.Name == container.RestartPolicyDisabled || p.Name == "":
		return true
	case p.Name == container.RestartPolicyOnFailure:
		return exitCode == 0 || (p.MaximumRetryCount > 0 && c.RestartCount >= p.MaximumRetryCount)
	}
	return false
}
