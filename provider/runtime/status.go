package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// LeaseStatus is what the engine has for a lease.
type LeaseStatus struct {
	Lease LeaseRef
	// Network is the bridge network the lease's containers are on: its
	// own, or the provider's shared one for a single container.
	Network string
	// Services maps service name to its replicas, in replica order. Empty
	// when the engine has no containers for the lease (see Found).
	Services map[string][]ReplicaStatus
}

// Found reports whether the engine has any container of the lease.
func (s LeaseStatus) Found() bool { return len(s.Services) > 0 }

// Exited reports whether the lease has containers and none of them is
// running, restarting or yet to start.
func (s LeaseStatus) Exited() bool {
	if !s.Found() {
		return false
	}
	for _, replicas := range s.Services {
		for _, rep := range replicas {
			if !rep.Exited() {
				return false
			}
		}
	}
	return true
}

// ReplicaStatus is one replica's container.
type ReplicaStatus struct {
	Service       string
	Replica       int
	ContainerName string
	ContainerID   string
	Image         string
	// State is the engine's: created, running, restarting, paused, exited,
	// removing or dead.
	State string
	// ExitCode is the last exit's code (0 while running for the first time).
	ExitCode int
	// Error is the engine's explanation when the container could not run.
	Error        string
	OOMKilled    bool
	RestartCount int
	// StartedAt and FinishedAt are zero when the container has not started
	// or finished.
	StartedAt  time.Time
	FinishedAt time.Time
	// Ports are the published ports as actually bound on the host.
	Ports []PortStatus
	// Manifest is the hash of the manifest group the container runs ("" for
	// containers made before it was recorded).
	Manifest string
	// GPUs are the GPU UUIDs the replica was given.
	GPUs []string
}

// Exited reports whether the replica's container ran and stopped for good
// (exited or dead).
func (r ReplicaStatus) Exited() bool {
	return r.State == string(container.StateExited) || r.State == string(container.StateDead)
}

// PortStatus is one published port.
type PortStatus struct {
	ContainerPort uint16
	Proto         string // tcp or udp
	HostIP        string
	HostPort      uint16
}

// Status reports the lease's containers. A lease the engine has nothing for
// is not an error: the status has no Services and Found is false.
func (r *Runtime) Status(ctx context.Context, l LeaseRef) (LeaseStatus, error) {
	net := networkName(r.opts.Provider, l)
	summaries, err := r.leaseContainers(ctx, l)
	if err != nil {
		st, _ := r.statusOf(ctx, l, net, nil) // no ids: no engine call
		return st, err
	}
	ids := make([]string, 0, len(summaries))
	for _, c := range summaries {
		if c.HostConfig.NetworkMode != "" {
			net = c.HostConfig.NetworkMode // the shared network, for a single-container lease
		}
		ids = append(ids, c.ID)
	}
	return r.statusOf(ctx, l, net, ids)
}

// replicaStatus inspects one container.
func (r *Runtime) replicaStatus(ctx context.Context, id string) (ReplicaStatus, error) {
	c, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return ReplicaStatus{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	rep := ReplicaStatus{
		ContainerName: trimSlash(c.Name),
		ContainerID:   c.ID,
		RestartCount:  c.RestartCount,
	}
	if c.Config != nil {
		rep.Service = c.Config.Labels[LabelService]
		rep.Replica, _ = strconv.Atoi(c.Config.Labels[LabelReplica])
		rep.Image = c.Config.Image
		rep.Manifest = c.Config.Labels[LabelManifest]
		if g := c.Config.Labels[LabelGPUs]; g != "" {
			rep.GPUs = strings.Split(g, ",")
		}
	}
	if s := c.State; s != nil {
		rep.State = string(s.Status)
		rep.ExitCode = s.ExitCode
		rep.Error = s.Error
		if why := r.evicted.get(c.ID); why != "" && !s.Running {
			rep.Error = why
		}
		rep.OOMKilled = s.OOMKilled
		rep.StartedAt = engineTime(s.StartedAt)
		rep.FinishedAt = engineTime(s.FinishedAt)
	}
	if c.NetworkSettings != nil {
		for port, bindings := range c.NetworkSettings.Ports {
			for _, b := range bindings {
				hostPort, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					continue
				}
				rep.Ports = append(rep.Ports, PortStatus{
					ContainerPort: uint16(port.Int()),
					Proto:         port.Proto(),
					HostIP:        b.HostIP,
					HostPort:      uint16(hostPort),
				})
			}
		}
		sort.Slice(rep.Ports, func(i, j int) bool {
			a, b := rep.Ports[i], rep.Ports[j]
			if a.ContainerPort != b.ContainerPort {
				return a.ContainerPort < b.ContainerPort
			}
			if a.Proto != b.Proto {
				return a.Proto < b.Proto
			}
			return a.HostIP < b.HostIP
		})
	}
	return rep, nil
}

// engineTime parses the engine's RFC 3339 times; "0001-01-01T00:00:00Z"
// (never) becomes the zero time.
func engineTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

func trimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}

// leaseContainers lists the lease's containers in any state, ordered by
// service and replica.
func (r *Runtime) leaseContainers(ctx context.Context, l LeaseRef) ([]container.Summary, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.leaseFilter(l)})
	if err != nil {
		return nil, fmt.Errorf("lease %s: list containers: %w", leaseName(l), err)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].Labels, list[j].Labels
		if a[LabelService] != b[LabelService] {
			return a[LabelService] < b[LabelService]
		}
		ra, _ := strconv.Atoi(a[LabelReplica])
		rb, _ := strconv.Atoi(b[LabelReplica])
		return ra < rb
	})
	return list, nil
}

// leaseFilter selects this provider's objects of one lease.
func (r *Runtime) leaseFilter(l LeaseRef) filters.Args {
	return filters.NewArgs(
		filters.Arg("label", LabelProvider+"="+r.opts.Provider),
		filters.Arg("label", LabelLease+"="+leaseName(l)),
	)
}

// Remove force-removes the lease's containers and its network. It is
// idempotent: a lease with nothing on the engine is not an error.
func (r *Runtime) Remove(ctx context.Context, l LeaseRef) error {
	if err := r.checkLease(l); err != nil {
		return err
	}
	unlock := r.lockLease(l)
	defer unlock()
	return r.remove(ctx, l)
}

// remove is Remove without the lease lock, for Deploy's cleanup.
func (r *Runtime) remove(ctx context.Context, l LeaseRef) error {
	containers, err := r.leaseContainers(ctx, l)
	if err != nil {
		return err
	}
	var errs []error
	var images []string
	for _, c := range containers {
		if !slices.Contains(images, c.Image) {
			images = append(images, c.Image)
		}
		err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			r.evicted.forget(c.ID)
		}
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("lease %s: remove container %s: %w", leaseName(l), c.ID, err))
			continue
		}
		r.log.Info("container removed", "lease", leaseName(l), "service", c.Labels[LabelService],
			"replica", c.Labels[LabelReplica], "container", trimSlash(firstName(c.Names)))
	}
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: r.leaseFilter(l)})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("lease %s: list networks: %w", leaseName(l), err))...)
	}
	for _, n := range nets {
		err := r.cli.NetworkRemove(ctx, n.ID)
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("lease %s: remove network %s: %w", leaseName(l), n.Name, err))
			continue
		}
		r.log.Info("network removed", "lease", leaseName(l), "network", n.Name)
	}
	if len(errs) == 0 {
		r.removeUnusedImages(ctx, images)
		if err := r.removeLeaseVolumes(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("lease %s: persistent volumes: %w", leaseName(l), err))
		}
	}
	return errors.Join(errs...)
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// RunningContainers counts this provider's running containers by lease
// (leaseName), with one engine call however many leases there are.
func (r *Runtime) RunningContainers(ctx context.Context) (map[string]int, error) {
	running := filters.NewArgs(filters.Arg("label", LabelProvider+"="+r.opts.Provider), filters.Arg("status", "running"))
	cs, err := r.cli.ContainerList(ctx, container.ListOptions{Filters: running})
	if err != nil {
		return nil, fmt.Errorf("list running containers: %w", err)
	}
	out := map[string]int{}
	for _, c := range cs {
		if l, ok := leaseFromLabels(c.Labels); ok {
			out[leaseName(l)]++
		}
	}
	return out, nil
}

// Held is what the engine holds of one of this provider's leases: the
// lease, and how many of its containers run. Running means something only
// when Counted: an engine that listed the lease but could not count its
// containers (a cluster whose pod listing failed) says so rather than
// report none running.
type Held struct {
	Ref     LeaseRef
	Running int
	Counted bool
}

// List returns every lease this provider has containers or a network for on
// the engine, keyed by leaseName, with how many of its containers run, so
// a restarted daemon can reconcile the engine with the chain: adopt live
// leases, Remove the rest. A lease with only a network is one whose Deploy
// was interrupted. It lists the engine's containers once: every such list
// walks all the containers the engine holds.
func (r *Runtime) List(ctx context.Context) (map[string]Held, error) {
	mine := filters.NewArgs(filters.Arg("label", LabelProvider+"="+r.opts.Provider))
	containers, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: mine})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: mine})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	type object struct {
		labels  map[string]string
		running bool
	}
	objects := make([]object, 0, len(containers)+len(nets))
	for _, c := range containers {
		objects = append(objects, object{c.Labels, c.State == container.StateRunning})
	}
	for _, n := range nets {
		if n.Labels[LabelShared] == "" {
			objects = append(objects, object{labels: n.Labels})
		}
	}
	leases := map[string]Held{}
	for _, o := range objects {
		l, ok := leaseFromLabels(o.labels)
		if !ok {
			r.log.Warn("object with malformed lease labels ignored", "labels", o.labels)
			continue
		}
		h := leases[leaseName(l)]
		h.Ref, h.Counted = l, true
		if o.running {
			h.Running++
		}
		leases[leaseName(l)] = h
	}
	return leases, nil
}
