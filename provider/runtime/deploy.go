package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"

	"github.com/gpunet/gpunet/provider/subnet"
	"github.com/gpunet/gpunet/sdl"
)

// cleanupTimeout bounds the removal of a failed deployment, which runs even
// when the caller's context is already cancelled.
const cleanupTimeout = 30 * time.Second

// Deploy runs the workload's lease and returns its status.
//
// It is idempotent: when the engine already has containers for the lease,
// in any state, it creates and starts nothing and returns their status, so
// a restarted daemon adopts what it left running. Otherwise it checks that
// every image is on the engine (pulling it when Options.Pull) before
// creating anything, creates the lease's bridge network and one container
// per service replica, and starts them. If any step after the first
// creation fails, everything Deploy created is removed and the error is
// returned.
func (r *Runtime) Deploy(ctx context.Context, w Workload) (LeaseStatus, error) {
	if err := r.checkLease(w.Lease); err != nil {
		return LeaseStatus{}, err
	}
	unlock := r.lockLease(w.Lease)
	defer unlock()
	log := r.log.With("lease", leaseName(w.Lease))

	existing, err := r.leaseContainers(ctx, w.Lease)
	if err != nil {
		return LeaseStatus{}, err
	}
	if len(existing) > 0 {
		log.Info("lease adopted", "containers", len(existing))
		return r.Status(ctx, w.Lease)
	}

	set := r.settingsFor(w.Lease, w.Group)
	specs, err := planReplicas(w, set)
	if err != nil {
		log.Warn("deploy refused", "err", err)
		return LeaseStatus{}, err
	}
	if err := r.ensureImages(ctx, w); err != nil {
		return LeaseStatus{}, err
	}
	ids, err := r.createAndStart(ctx, w.Lease, set, specs)
	if err != nil {
		log.Warn("deploy failed, removing what it created", "err", err)
		r.cleanup(ctx, w.Lease)
		return LeaseStatus{}, err
	}
	log.Info("lease deployed", "containers", len(specs), "network", set.Network)
	return r.statusOf(ctx, w.Lease, set.Network, ids)
}

// statusOf reports the lease's containers with the given ids, inspecting
// each, replicas in order. Deploy passes those it just made, so it does not
// ask the engine to list containers (a list walks every container the
// engine holds); Status passes those it listed.
func (r *Runtime) statusOf(ctx context.Context, l LeaseRef, net string, ids []string) (LeaseStatus, error) {
	st := LeaseStatus{Lease: l, Network: net, Services: map[string][]ReplicaStatus{}}
	if st.Lease.Provider == "" {
		st.Lease.Provider = r.opts.Provider
	}
	for _, id := range ids {
		rep, err := r.replicaStatus(ctx, id)
		if cerrdefs.IsNotFound(err) {
			continue // removed since it started
		}
		if err != nil {
			return st, fmt.Errorf("lease %s: %w", leaseName(l), err)
		}
		st.Services[rep.Service] = append(st.Services[rep.Service], rep)
	}
	for _, reps := range st.Services {
		sort.Slice(reps, func(i, j int) bool { return reps[i].Replica < reps[j].Replica })
	}
	return st, nil
}

// PullImages makes sure every image of the workload is on the engine, as
// Deploy and Update do before they create anything: a caller that bounds
// its deploys pulls first, so a slow registry holds none of its slots. A
// workload Deploy would refuse (its replicas cannot be planned: services
// depending on each other in a cycle, GPUs that do not match) is refused
// here the same way, before anything is pulled for it.
func (r *Runtime) PullImages(ctx context.Context, w Workload) error {
	if err := r.checkLease(w.Lease); err != nil {
		return err
	}
	if _, err := planReplicas(w, r.settingsFor(w.Lease, w.Group)); err != nil {
		return err
	}
	return r.ensureImages(ctx, w)
}

// ensureImages makes sure every image of the group is on the engine,
// pulling missing ones when Options.Pull is set.
func (r *Runtime) ensureImages(ctx context.Context, w Workload) error {
	seen := map[string]bool{}
	for _, svc := range w.Group.Services {
		if seen[svc.Image] {
			continue
		}
		seen[svc.Image] = true
		if err := r.opts.Registries.Check(svc.Image); err != nil {
			return fmt.Errorf("lease %s service %q: %w: %v", leaseName(w.Lease), svc.Name, ErrWorkloadInvalid, err)
		}
		var err error
		if svc.Credentials != nil {
			err = r.pullPrivate(ctx, w.Lease.Order.Owner, svc.Image, svc.Credentials, w.ImagesDue)
		} else if err = r.pulled.mayUse(svc.Image, w.Lease.Order.Owner); err == nil {
			err = r.ensureImage(ctx, svc.Image, w.ImagesDue)
		}
		if err != nil {
			r.log.Warn("image unavailable", "lease", leaseName(w.Lease), "service", svc.Name, "image", svc.Image, "err", err)
			return fmt.Errorf("lease %s service %q: %w", leaseName(w.Lease), svc.Name, err)
		}
	}
	return nil
}

// ensureImage makes sure ref is on the engine, pulling it when it is not
// (until due closes, when set).
func (r *Runtime) ensureImage(ctx context.Context, ref string, due <-chan struct{}) error {
	img, err := r.cli.ImageInspect(ctx, ref)
	if err == nil {
		return r.checkImageSize(ref, img.Size)
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if !r.opts.Pull {
		return fmt.Errorf("%w: %s is not on the engine and pulling is off", ErrImageUnavailable, ref)
	}
	r.log.Info("pulling image", "image", ref)
	if err := r.pullWith(ctx, ref, "", due); errors.Is(err, ErrWorkloadInvalid) {
		return err
	} else if err != nil {
		return fmt.Errorf("%w: %s is not on the engine and could not be pulled: %v", ErrImageUnavailable, ref, err)
	}
	// A pull can fail inside its progress stream; the image being there
	// afterwards is the only reliable sign of success.
	img, err = r.cli.ImageInspect(ctx, ref)
	if err != nil {
		return fmt.Errorf("%w: %s is not on the engine after pulling: %v", ErrImageUnavailable, ref, err)
	}
	r.log.Info("image pulled", "image", ref, "bytes", img.Size)
	if err := r.pulled.mark(ref, true); err != nil {
		r.log.Warn("could not record a pulled image", "image", ref, "err", err)
	}
	return r.checkImageSize(ref, img.Size)
}

// checkImageSize refuses an image over the configured size.
func (r *Runtime) checkImageSize(ref string, size int64) error {
	if r.opts.MaxImageBytes > 0 && size > r.opts.MaxImageBytes {
		return fmt.Errorf("%w: image %s is %d bytes; this provider accepts at most %d", ErrWorkloadInvalid, ref, size, r.opts.MaxImageBytes)
	}
	return nil
}

// pullPrivate pulls ref with a tenant's registry login, every time (even
// when the engine has the image: the pull is what proves the tenant may
// use it), records the image as private to owner, and checks its size.
// The login goes to the engine for this pull only; it is never logged.
func (r *Runtime) pullPrivate(ctx context.Context, owner, ref string, c *sdl.Credentials, due <-chan struct{}) error {
	if !r.opts.Pull {
		return fmt.Errorf("%w: %s is private and pulling is off", ErrImageUnavailable, ref)
	}
	if err := sdl.CheckLogin(ref, c.Host); err != nil {
		return fmt.Errorf("%w: %v", ErrWorkloadInvalid, err)
	}
	auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: c.Username, Password: c.Password, Email: c.Email, ServerAddress: c.Host})
	if err != nil {
		return fmt.Errorf("%w: registry login: %v", ErrWorkloadInvalid, err)
	}
	r.log.Info("pulling private image", "image", ref, "registry", c.Host)
	if err := r.pullWith(ctx, ref, auth, due); errors.Is(err, ErrWorkloadInvalid) {
		return err
	} else if err != nil {
		return fmt.Errorf("%w: %s could not be pulled with the lease's login: %v", ErrImageUnavailable, ref, err)
	}
	img, err := r.cli.ImageInspect(ctx, ref)
	if err != nil {
		return fmt.Errorf("%w: %s is not on the engine after pulling: %v", ErrImageUnavailable, ref, err)
	}
	if err := r.pulled.markPrivate(ref, owner); err != nil {
		r.log.Warn("could not record a private image", "image", ref, "err", err)
	}
	return r.checkImageSize(ref, img.Size)
}

// pullWith pulls ref with an encoded registry login ("" for none),
// stopping as soon as the sizes of the layers the registry announces add
// up to more than MaxImageBytes (compressed sizes: the unpacked image is
// checked again after the pull), or when due closes (nil: never).
func (r *Runtime) pullWith(ctx context.Context, ref, auth string, due <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	if due != nil {
		var cut context.CancelCauseFunc
		ctx, cut = context.WithCancelCause(ctx)
		defer cut(nil)
		go func() {
			select {
			case <-due:
				cut(errImagesDue)
			case <-ctx.Done():
			}
		}()
	}
	err := r.pullStream(ctx, ref, auth)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errImagesDue) {
		return cause // the engine's own error says only "canceled"
	}
	return err
}

// errImagesDue is a pull cut when its workload's images became due.
var errImagesDue = errors.New("the registry had not sent it by the time the lease's start deadline drew near")

// pullStream runs one pull on the engine and reads its progress to the end.
func (r *Runtime) pullStream(ctx context.Context, ref, auth string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := r.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return err
	}
	defer body.Close()
	err = pullStreamError(body, r.opts.MaxImageBytes)
	var tooLarge errTooLarge
	if errors.As(err, &tooLarge) {
		cancel() // the engine drops the pull when its client goes
		err = fmt.Errorf("%w: image %s: %v", ErrWorkloadInvalid, ref, tooLarge)
	}
	return err
}

// errTooLarge is pullStreamError's refusal of an oversized image.
type errTooLarge struct{ total, max int64 }

func (e errTooLarge) Error() string {
	return fmt.Sprintf("its layers add up to more than %d bytes compressed (at least %d); this provider accepts at most %d", e.max, e.total, e.max)
}

// pullStreamError reads a pull's JSON progress stream to the end and
// returns the error it reports, if any. With max > 0 it stops with
// errTooLarge when the layer sizes announced so far exceed max.
func pullStreamError(stream io.Reader, max int64) error {
	dec := json.NewDecoder(stream)
	layers := map[string]int64{}
	var total int64
	for {
		var msg struct {
			ID       string `json:"id"`
			Error    string `json:"error"`
			Progress struct {
				Total int64 `json:"total"`
			} `json:"progressDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading pull progress: %w", err)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
		if max > 0 && msg.ID != "" && msg.Progress.Total > layers[msg.ID] {
			total += msg.Progress.Total - layers[msg.ID]
			layers[msg.ID] = msg.Progress.Total
			if total > max {
				return errTooLarge{total: total, max: max}
			}
		}
	}
}

// createAndStart creates the lease network (or reuses one left by an
// interrupted deploy, or the shared network) and the containers, then
// starts them in order.
func (r *Runtime) createAndStart(ctx context.Context, l LeaseRef, set specSettings, specs []replicaSpec) ([]string, error) {
	ensure := func() error { return r.ensureNetwork(ctx, l, set.Network) }
	if set.SharedNetwork {
		ensure = func() error { return r.ensureShared(ctx) }
	}
	if err := ensure(); err != nil {
		return nil, err
	}
	ids := make([]string, len(specs))
	for i, s := range specs {
		if len(s.Persistent) > 0 {
			mounts, err := r.persistentMounts(ctx, l, sdl.ManifestService{Name: s.Service, Mounts: s.Persistent}, s.Replica)
			if err != nil {
				return nil, err
			}
			s.Host.Mounts = append(s.Host.Mounts, mounts...)
		}
		resp, err := r.cli.ContainerCreate(ctx, s.Config, s.Host, s.Net, nil, s.Name)
		if err != nil {
			if cerrdefs.IsInvalidArgument(err) {
				err = fmt.Errorf("%w: %v", ErrWorkloadInvalid, err)
			}
			return nil, fmt.Errorf("lease %s service %q replica %d: create container %s: %w", leaseName(l), s.Service, s.Replica, s.Name, err)
		}
		ids[i] = resp.ID
		r.log.Info("container created", "lease", leaseName(l), "service", s.Service, "replica", s.Replica,
			"container", s.Name, "gpus", s.GPUs, "warnings", resp.Warnings)
	}
	for i, s := range specs {
		if err := r.cli.ContainerStart(ctx, ids[i], container.StartOptions{}); err != nil {
			return nil, startError(l, s, err)
		}
		r.log.Info("container started", "lease", leaseName(l), "service", s.Service, "replica", s.Replica, "container", s.Name)
	}
	return ids, nil
}

// netMu makes choosing a subnet and creating its network one step for
// every Runtime of the process; another process on the same engine can
// still race, which the retry in ensureNetwork absorbs.
var netMu sync.Mutex

// ensureNetwork creates the lease's bridge network. A network of that name
// with this provider's label is one an earlier, interrupted Deploy left:
// it is reused.
func (r *Runtime) ensureNetwork(ctx context.Context, l LeaseRef, name string) error {
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("name", name), filters.Arg("label", LabelProvider+"="+r.opts.Provider))})
	if err != nil {
		return fmt.Errorf("lease %s: list networks: %w", leaseName(l), err)
	}
	for _, n := range nets {
		if n.Name == name { // the name filter matches substrings
			r.log.Info("network reused", "lease", leaseName(l), "network", name)
			return nil
		}
	}
	// Docker's default address pools hold only ~30 bridge networks; each
	// lease's network gets its own subnet from the provider's pool instead.
	if err := r.createNetwork(ctx, name, r.subnets, leaseLabels(r.opts.Provider, l), nil); err != nil {
		return fmt.Errorf("lease %s: %w", leaseName(l), err)
	}
	return nil
}

// createNetwork creates a bridge network on a free subnet of pool.
// Another process may take the chosen subnet between the listing and the
// create: the engine refuses the overlap and the next free one is tried.
func (r *Runtime) createNetwork(ctx context.Context, name string, pool subnet.Pool, labels, options map[string]string) error {
	netMu.Lock()
	defer netMu.Unlock()
	for attempt := 1; ; attempt++ {
		all, err := r.cli.NetworkList(ctx, network.ListOptions{})
		if err != nil {
			return fmt.Errorf("list networks: %w", err)
		}
		var used []netip.Prefix
		for _, n := range all {
			for _, c := range n.IPAM.Config {
				if p, err := netip.ParsePrefix(c.Subnet); err == nil {
					used = append(used, p)
				}
			}
		}
		sub, err := pool.Free(used)
		if err != nil {
			return fmt.Errorf("create network %s: %w", name, err)
		}
		_, err = r.cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver:   "bridge",
			Internal: false, // workloads may reach the internet; the egress filter keeps them off the rest
			Labels:   labels,
			Options:  options,
			IPAM:     &network.IPAM{Config: []network.IPAMConfig{{Subnet: sub.String()}}},
		})
		if err != nil && attempt < 5 && strings.Contains(err.Error(), "overlaps") {
			r.log.Warn("subnet taken meanwhile, trying the next", "network", name, "subnet", sub.String(), "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("create network %s (subnet %s): %w", name, sub, err)
		}
		r.log.Info("network created", "network", name, "subnet", sub.String(), "lease", labels[LabelLease])
		return nil
	}
}

// iccOption turns off traffic between a bridge's containers.
const iccOption = "com.docker.network.bridge.enable_icc"

// ensureShared makes sure the provider's shared network exists: a bridge
// with inter-container traffic off (the engine drops frames between two of
// its containers), on a subnet of the lease pool 16 times a lease's, so the
// egress filter covers it like any lease network. It is looked up at every
// deploy (a list call, which carries no container data), so a network an
// operator pruned while no lease used it is made again. A network of that
// name that lets its containers talk is refused, not used.
func (r *Runtime) ensureShared(ctx context.Context) error {
	r.sharedMu.Lock()
	defer r.sharedMu.Unlock()
	name := r.sharedNetwork()
	nets, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nets {
		if n.Name != name { // the name filter matches substrings
			continue
		}
		if n.Options[iccOption] != "false" || n.Labels[LabelProvider] != r.opts.Provider {
			return fmt.Errorf("network %s exists but lets its containers reach each other (or is not this provider's); remove it", name)
		}
		for _, c := range n.IPAM.Config {
			if sub, err := netip.ParsePrefix(c.Subnet); err != nil || !r.subnets.Covers(sub) {
				return fmt.Errorf("network %s has subnet %s, outside runtime.lease_subnets %s, where the egress filter does not reach; remove it", name, c.Subnet, r.subnets)
			}
		}
		return nil
	}
	if err := r.createNetwork(ctx, name, r.subnets.Widened(4),
		map[string]string{LabelProvider: r.opts.Provider, LabelShared: "true"},
		map[string]string{iccOption: "false"}); err != nil {
		return err
	}
	r.log.Info("shared network for single-container leases created", "network", name)
	return nil
}

// startError explains a failed start. An engine without the NVIDIA
// container toolkit creates a container with a GPU request but refuses to
// start it with HTTP 500 "could not select device driver "nvidia" with
// capabilities: [[gpu]]"; no error type marks that case, so the message is
// matched, and only for replicas that asked for GPUs.
func startError(l LeaseRef, s replicaSpec, err error) error {
	if len(s.GPUs) > 0 && strings.Contains(err.Error(), "could not select device driver") {
		return fmt.Errorf("%w: lease %s service %q replica %d: the engine has no %q GPU device driver (is the NVIDIA container toolkit installed?): %v",
			ErrGPUUnavailable, leaseName(l), s.Service, s.Replica, gpuDriver, err)
	}
	if workloadCannotExec(err) {
		return fmt.Errorf("%w: lease %s service %q replica %d: the container's command cannot run: %v", ErrWorkloadInvalid, leaseName(l), s.Service, s.Replica, err)
	}
	return fmt.Errorf("lease %s service %q replica %d: start container %s: %w", leaseName(l), s.Service, s.Replica, s.Name, err)
}

// workloadCannotExec reports a start refused because of what the tenant
// asked to run: the OCI runtime could not execute the command (missing,
// not executable, wrong architecture). The engine gives these only as text
// ("OCI runtime create failed: ... exec: \"/x\": stat /x: no such file or
// directory"), so the message is matched; anything else (networks, the
// engine itself) stays the provider's problem and is retried.
func workloadCannotExec(err error) bool {
	msg := err.Error()
	if !strings.Contains(msg, "OCI runtime") || !strings.Contains(msg, "exec") {
		return false
	}
	for _, s := range []string{"executable file not found", "no such file or directory", "permission denied", "exec format error", "is a directory"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// cleanup removes what a failed Deploy created, even when ctx is done.
func (r *Runtime) cleanup(ctx context.Context, l LeaseRef) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := r.remove(ctx, l); err != nil {
		r.log.Error("cleanup after failed deploy incomplete", "lease", leaseName(l), "err", err)
		return
	}
	r.log.Info("failed deploy cleaned up", "lease", leaseName(l))
}
