package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/system"

	"github.com/gpunet/gpunet/internal/atomicfile"
	"github.com/gpunet/gpunet/sdl"
)

// Storage limit modes (Options.StorageLimit).
const (
	// StorageAuto picks StorageQuota when the engine can, else StorageWatch.
	StorageAuto = "auto"
	// StorageQuota gives each container the engine's writable-layer size
	// option: a write past it fails with "no space left on device".
	StorageQuota = "quota"
	// StorageWatch measures writable layers every check and stops a replica
	// past its size, reporting "no space" as the replica's error.
	StorageWatch = "watch"
	// StorageOff offers no storage: nothing limits a writable layer.
	StorageOff = "off"
)

// Labels the runtime puts on each container besides the lease's.
const (
	// LabelStorage is the replica's storage size in bytes.
	LabelStorage = "gpunet.storage"
	// LabelGPUs are the GPU UUIDs given to the replica (NVML and declared),
	// comma-separated: after a restart they say who holds which GPU.
	LabelGPUs = "gpunet.gpus"
)

// Isolation is how this host contains leases, reported by the inventory
// and on /healthz.
type Isolation struct {
	// UsernsRemap is the engine running containers in a user namespace
	// (dockerd --userns-remap): root in a container is not root on the host.
	UsernsRemap bool `json:"userns_remap"`
	// ContainerUser is runtime.container_user, when set.
	ContainerUser string `json:"container_user,omitempty"`
	// LeasesRunAsHostRoot is true when neither of the above holds: a lease
	// whose image runs as root is root on the host, held only by dropped
	// capabilities, seccomp and no-new-privileges.
	LeasesRunAsHostRoot bool `json:"leases_run_as_host_root"`
	// StorageLimit is the mode in force (quota, watch or off) and
	// StorageDriver the engine's driver and backing filesystem.
	StorageLimit  string `json:"storage_limit"`
	StorageDriver string `json:"storage_driver"`
}

// probeIsolation asks the engine how it runs containers and settles the
// storage mode: quota is used when the engine accepts a writable-layer
// size, and asked for explicitly it is an error when it does not.
func (r *Runtime) probeIsolation(ctx context.Context) error {
	info, err := r.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("runtime: engine info: %w", err)
	}
	iso := Isolation{
		UsernsRemap:   slices.ContainsFunc(info.SecurityOptions, func(s string) bool { return strings.Contains(s, "name=userns") }),
		ContainerUser: r.opts.ContainerUser,
		StorageDriver: info.Driver + backingFS(info),
	}
	iso.LeasesRunAsHostRoot = !iso.UsernsRemap && iso.ContainerUser == ""
	mode := r.opts.StorageLimit
	if mode == "" {
		mode = StorageAuto
	}
	if mode == StorageAuto || mode == StorageQuota {
		qerr := r.probeQuota(ctx, info)
		switch {
		case qerr == nil:
			mode = StorageQuota
		case mode == StorageQuota:
			return fmt.Errorf("runtime: storage_limit is quota but the engine cannot limit a writable layer (%s): %w; put Docker's data root on xfs mounted with pquota, or use watch", iso.StorageDriver, qerr)
		default:
			r.log.Warn("the engine cannot limit writable layers; watching their size instead (a fast writer can pass its size by what it writes in one check)",
				"driver", iso.StorageDriver, "why", qerr.Error(), "check_every", r.opts.StorageCheckInterval)
			mode = StorageWatch
		}
	}
	if mode == StorageOff {
		r.log.Warn("storage_limit is off: writable layers are not limited and no storage is offered")
	}
	iso.StorageLimit = mode
	r.iso = iso
	if iso.LeasesRunAsHostRoot {
		r.log.Warn("leases whose image runs as root are root on this host (no userns-remap, no container_user); see the README's \"Securing a provider host\"")
	}
	if networkDeadlockProne(info.ServerVersion) {
		r.log.Warn("this Docker engine can deadlock when many containers of one network exit or are removed at once (moby/moby#46661), and then starts and removes nothing until it is restarted; use Docker 20.10.27, 23.0 or later",
			"engine_version", info.ServerVersion)
	}
	return nil
}

// networkDeadlockProne reports an engine version whose libnetwork takes
// the network and controller locks in opposite orders when an endpoint is
// deleted (moby/moby#46661): Docker before 20.10.27 (fixed there by
// moby/moby#46693, and in 23.0 by moby/moby#42545). Single-container
// leases share one network, so a provider that closes many leases at once,
// or many of whose jobs end together, can hit it. A version that does not
// parse is not flagged.
func networkDeadlockProne(version string) bool {
	var major, minor, patch int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	return major < 20 || (major == 20 && (minor < 10 || patch < 27))
}

func backingFS(info system.Info) string {
	for _, kv := range info.DriverStatus {
		if kv[0] == "Backing Filesystem" {
			return " on " + kv[1]
		}
	}
	return ""
}

// probeQuota creates (and removes, never starts) a container with a
// writable-layer size from any local image; the engine refuses the option
// where it cannot enforce it.
func (r *Runtime) probeQuota(ctx context.Context, info system.Info) error {
	if info.Driver == "overlay2" && !strings.Contains(backingFS(info), "xfs") {
		return errors.New("overlay2 limits a writable layer only on xfs with pquota")
	}
	imgs, err := r.cli.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return err
	}
	if len(imgs) == 0 || len(imgs[0].RepoTags) == 0 && len(imgs[0].ID) == 0 {
		return errors.New("no local image to probe the engine with")
	}
	resp, err := r.cli.ContainerCreate(ctx, &container.Config{Image: imgs[0].ID, Labels: map[string]string{LabelProvider + ".probe": r.opts.Provider}},
		&container.HostConfig{StorageOpt: map[string]string{"size": "64M"}}, nil, nil, "")
	if err != nil {
		return err
	}
	return r.cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
}

// Isolation reports how this host contains leases (settled by New).
func (r *Runtime) Isolation() Isolation { return r.iso }

// RegistryPolicy says which registries images may come from.
type RegistryPolicy struct {
	// Allow, when not empty, are the only registries allowed; Deny are
	// refused. Entries are host names; "*.example.com" matches subdomains.
	Allow, Deny []string
}

// Check refuses an image reference from a registry the policy does not
// allow, naming the registry.
func (p RegistryPolicy) Check(ref string) error {
	if len(p.Allow) == 0 && len(p.Deny) == 0 {
		return nil
	}
	reg, err := sdl.ImageRegistry(ref)
	if err != nil {
		return err
	}
	match := func(list []string) bool {
		for _, pat := range list {
			if ok, _ := path.Match(pat, reg); ok || pat == reg {
				return true
			}
		}
		return false
	}
	if match(p.Deny) {
		return fmt.Errorf("image %s comes from registry %s, which this provider refuses", ref, reg)
	}
	if len(p.Allow) > 0 && !match(p.Allow) {
		return fmt.Errorf("image %s comes from registry %s; this provider takes images only from %s", ref, reg, strings.Join(p.Allow, ", "))
	}
	return nil
}

// GPUHolds lists, per lease, the GPU UUIDs its containers (running or
// not) were given, from their labels, or for containers made before the
// label from their device requests and GPUNET_DECLARED_GPUS. After a
// restart these, not the saved reservations nor the config, say which
// GPUs are taken.
func (r *Runtime) GPUHolds(ctx context.Context) (map[string][]string, error) {
	mine := filters.NewArgs(filters.Arg("label", LabelProvider+"="+r.opts.Provider))
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: mine})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	holds := map[string][]string{}
	for _, c := range list {
		l, ok := leaseFromLabels(c.Labels)
		if !ok {
			continue
		}
		var uuids []string
		if v, ok := c.Labels[LabelGPUs]; ok {
			if v != "" {
				uuids = strings.Split(v, ",")
			}
		} else {
			ins, err := r.cli.ContainerInspect(ctx, c.ID)
			if cerrdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("inspect container %s: %w", c.ID, err)
			}
			for _, dr := range ins.HostConfig.DeviceRequests {
				uuids = append(uuids, dr.DeviceIDs...)
			}
			for _, e := range ins.Config.Env {
				if v, ok := strings.CutPrefix(e, "GPUNET_DECLARED_GPUS="); ok && v != "" {
					uuids = append(uuids, strings.Split(v, ",")...)
				}
			}
		}
		key := leaseName(l)
		for _, u := range uuids {
			if !slices.Contains(holds[key], u) {
				holds[key] = append(holds[key], u)
			}
		}
	}
	for k := range holds {
		sort.Strings(holds[k])
	}
	return holds, nil
}

// Eviction is a replica the storage watch stopped.
type Eviction struct {
	Lease     LeaseRef
	Service   string
	Replica   int
	Container string
	Reason    string
}

// evictions remembers why the storage watch stopped a container, for its
// status.
type evictions struct {
	mu sync.Mutex
	by map[string]string // container ID → reason
}

func (e *evictions) set(id, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.by == nil {
		e.by = map[string]string{}
	}
	e.by[id] = reason
}

// forget drops a removed container's reason.
func (e *evictions) forget(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.by, id)
}

func (e *evictions) get(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.by[id]
}

// CheckStorage is one round of the storage watch (mode watch): every
// running container of this provider whose writable layer is over its
// replica's storage size is stopped, with "no space" as its error. Other
// modes check nothing.
func (r *Runtime) CheckStorage(ctx context.Context) ([]Eviction, error) {
	if r.iso.StorageLimit != StorageWatch {
		return nil, nil
	}
	mine := filters.NewArgs(filters.Arg("label", LabelProvider+"="+r.opts.Provider), filters.Arg("status", "running"))
	list, err := r.cli.ContainerList(ctx, container.ListOptions{Size: true, Filters: mine})
	if err != nil {
		return nil, fmt.Errorf("list containers with sizes: %w", err)
	}
	var out []Eviction
	for _, c := range list {
		limit, err := strconv.ParseInt(c.Labels[LabelStorage], 10, 64)
		if err != nil || limit <= 0 || c.SizeRw <= limit {
			continue
		}
		l, ok := leaseFromLabels(c.Labels)
		if !ok {
			continue
		}
		reason := fmt.Sprintf("no space: the writable layer holds %d bytes, over the replica's storage of %d bytes; the replica was stopped", c.SizeRw, limit)
		r.evicted.set(c.ID, reason)
		timeout := 0
		if err := r.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil && !cerrdefs.IsNotFound(err) {
			return out, fmt.Errorf("stop container %s over its storage: %w", c.ID, err)
		}
		rep, _ := strconv.Atoi(c.Labels[LabelReplica])
		ev := Eviction{Lease: l, Service: c.Labels[LabelService], Replica: rep, Container: trimSlash(firstName(c.Names)), Reason: reason}
		r.log.Warn("replica stopped: over its storage", "lease", leaseName(l), "service", ev.Service, "replica", rep, "container", ev.Container, "bytes", c.SizeRw, "limit", limit)
		out = append(out, ev)
	}
	return out, nil
}

// pulledImages are the images this runtime pulled (not those the operator
// put on the engine), kept in a file so that a restarted daemon still
// removes them when no lease uses them. An image pulled with a tenant's
// registry login is private: only the owners who pulled it with a login
// may run it without sending one.
type pulledImages struct {
	mu      sync.Mutex
	file    string
	refs    map[string]bool
	private map[string][]string // ref → owners
}

// pulledRecord is the file's layout.
type pulledRecord struct {
	Pulled  []string            `json:"pulled"`
	Private map[string][]string `json:"private,omitempty"`
}

func loadPulled(file string) (*pulledImages, error) {
	p := &pulledImages{file: file, refs: map[string]bool{}, private: map[string][]string{}}
	if file == "" {
		return p, nil
	}
	raw, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	var rec pulledRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, ref := range rec.Pulled {
		p.refs[ref] = true
	}
	for ref, owners := range rec.Private {
		p.private[ref] = owners
	}
	return p, nil
}

func (p *pulledImages) mark(ref string, pulled bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refs[ref] == pulled {
		return nil
	}
	if pulled {
		p.refs[ref] = true
	} else {
		delete(p.refs, ref)
		delete(p.private, ref)
	}
	return p.save()
}

// markPrivate records that owner pulled ref with its own login.
func (p *pulledImages) markPrivate(ref, owner string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refs[ref] = true
	if !slices.Contains(p.private[ref], owner) {
		p.private[ref] = append(p.private[ref], owner)
		sort.Strings(p.private[ref])
	}
	return p.save()
}

// mayUse refuses a private image to an owner who never pulled it with a
// login: the image being on the engine must not hand one tenant's private
// image to another.
func (p *pulledImages) mayUse(ref, owner string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	owners, private := p.private[ref]
	if !private || slices.Contains(owners, owner) {
		return nil
	}
	return fmt.Errorf("%w: %s is a private image on this provider; the service needs its registry credentials", ErrImageUnavailable, ref)
}

// save writes the record; the caller holds mu.
func (p *pulledImages) save() error {
	if p.file == "" {
		return nil
	}
	rec := pulledRecord{Pulled: make([]string, 0, len(p.refs)), Private: p.private}
	for ref := range p.refs {
		rec.Pulled = append(rec.Pulled, ref)
	}
	sort.Strings(rec.Pulled)
	raw, _ := json.Marshal(rec)
	return atomicfile.Write(p.file, raw)
}

func (p *pulledImages) has(ref string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refs[ref]
}

// removeUnusedImages removes the images among refs that this runtime
// pulled and that no container on the engine (of any provider or none)
// was made from. Removing a name another name shares the image with only
// untags it; the engine refuses to delete an image a container still uses
// under another name, which is logged and retried with the next lease.
func (r *Runtime) removeUnusedImages(ctx context.Context, refs []string) {
	var all []container.Summary
	for _, ref := range refs {
		if !r.pulled.has(ref) {
			continue
		}
		if all == nil {
			var err error
			if all, err = r.cli.ContainerList(ctx, container.ListOptions{All: true}); err != nil {
				r.log.Warn("could not list containers to remove unused images", "err", err)
				return
			}
		}
		if slices.ContainsFunc(all, func(c container.Summary) bool { return c.Image == ref }) {
			continue
		}
		if _, err := r.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
			r.log.Warn("could not remove an image no lease uses", "image", ref, "err", err)
			continue
		}
		if err := r.pulled.mark(ref, false); err != nil {
			r.log.Warn("could not record an image's removal", "image", ref, "err", err)
		}
		r.log.Info("image removed: no lease uses it", "image", ref)
	}
}

// pullTimeout bounds one image pull.
const pullTimeout = 30 * time.Minute
