package runtime

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/sdl"
)

// Container settings that are policy, not manifest.
const (
	// DefaultPidsLimit caps processes per container unless Options says otherwise.
	DefaultPidsLimit = 512
	// minPidsPerReplica is the fewest processes a replica may be left with.
	minPidsPerReplica = 16
	// serviceRestartRetries is how often a failing service is restarted
	// before it is left exited.
	serviceRestartRetries = 5
	// Log rotation: at most logMaxFiles files of logMaxSize per container.
	logMaxSize  = "10m"
	logMaxFiles = "3"
	// gpuDriver is the device driver the NVIDIA container toolkit registers
	// with the engine.
	gpuDriver = "nvidia"
)

// IsJob reports whether the group runs to completion: every service has
// restart "never". A group with no services is not a job.
func IsJob(g sdl.ManifestGroup) bool {
	if len(g.Services) == 0 {
		return false
	}
	for _, s := range g.Services {
		if s.Restart != "never" {
			return false
		}
	}
	return true
}

// replicaSpec is everything needed to create one replica's container.
type replicaSpec struct {
	Service string
	Replica int
	Name    string
	GPUs    []string
	// Persistent are the replica's persistent volume mounts, made (and
	// bound into Host.Mounts) just before the container is created.
	Persistent []sdl.ManifestMount
	Config     *container.Config
	Host       *container.HostConfig
	Net        *network.NetworkingConfig
}

// specSettings are the Options-derived inputs of container construction.
type specSettings struct {
	Provider    string
	PublishHost string
	PidsLimit   int64
	LeasePids   int64 // the lease's budget, split between its replicas
	Network     string
	// SharedNetwork: Network is the provider's shared network, where the
	// replica gets no service-name alias (nobody may reach it by name).
	SharedNetwork bool
	User          string // uid:gid every container runs as ("": the image's)
	Quota         bool   // the engine limits writable layers (StorageQuota)
	// NameSuffix follows every container name: an update's containers
	// are named apart from the ones they replace.
	NameSuffix string
}

// planReplicas turns a workload into one replicaSpec per service replica, in
// manifest order, handing out the lease's GPUs in order. It checks what can
// be checked without the engine, so that Deploy fails before creating
// anything.
func planReplicas(w Workload, set specSettings) ([]replicaSpec, error) {
	if len(w.Group.Services) == 0 {
		return nil, fmt.Errorf("lease %s: group %q has no services", leaseName(w.Lease), w.Group.Name)
	}
	gpus, err := assignGPUs(w.Group.Services, w.GPUs)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", leaseName(w.Lease), err)
	}
	// Each replica gets its share of the lease's process budget, and never
	// more than the per-container limit.
	replicas := int64(replicaCount(w.Group))
	if set.LeasePids > 0 && replicas > 0 {
		share := set.LeasePids / replicas
		if share < minPidsPerReplica {
			return nil, fmt.Errorf("lease %s: %d replicas leave %d processes each of the lease's %d; at least %d are needed", leaseName(w.Lease), replicas, share, set.LeasePids, minPidsPerReplica)
		}
		set.PidsLimit = min(set.PidsLimit, share)
	}
	var specs []replicaSpec
	names := map[string]string{} // container name → service, to catch collisions
	order, err := startOrder(w.Group.Services)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", leaseName(w.Lease), err)
	}
	groupHash := w.Group.Hash()
	for _, si := range order {
		svc := w.Group.Services[si]
		if err := checkService(svc); err != nil {
			return nil, fmt.Errorf("lease %s: %w", leaseName(w.Lease), err)
		}
		for r := 0; r < int(svc.Count); r++ {
			name := containerName(set.Provider, w.Lease, svc.Name, r) + set.NameSuffix
			if other, dup := names[name]; dup {
				return nil, fmt.Errorf("lease %s: services %q and %q map to the same container name %s", leaseName(w.Lease), other, svc.Name, name)
			}
			names[name] = svc.Name
			replicaGPUs, declared := splitDeclared(gpus[si][r])
			labels := replicaLabels(set.Provider, w.Lease, w.Group.Name, svc.Name, r)
			labels[LabelStorage] = strconv.FormatUint(svc.Resources.StorageBytes, 10)
			labels[LabelGPUs] = strings.Join(gpus[si][r], ",")
			labels[LabelManifest] = groupHash
			cfg := containerConfig(svc, r, labels)
			if set.User != "" {
				cfg.User = set.User
			}
			// The provider, not the image or the tenant, says which GPUs a
			// container sees: none ("void", and the plain runc runtime, so
			// no GPU hook runs at all) or exactly the replica's UUIDs. An
			// image's NVIDIA_VISIBLE_DEVICES=all is overridden.
			if len(replicaGPUs) == 0 {
				cfg.Env = append(cfg.Env, "NVIDIA_VISIBLE_DEVICES=void")
			} else {
				cfg.Env = append(cfg.Env, "NVIDIA_VISIBLE_DEVICES="+strings.Join(replicaGPUs, ","))
			}
			if len(declared) > 0 {
				// A declared GPU is a promise of the operator's, not a device
				// this host has: nothing can be attached. The workload is told
				// so instead of failing to start.
				cfg.Env = append(cfg.Env, "GPUNET_DECLARED_GPUS="+strings.Join(declared, ","))
			}
			var persistent []sdl.ManifestMount
			for _, m := range svc.Mounts {
				if m.Persistent {
					persistent = append(persistent, m)
				}
			}
			specs = append(specs, replicaSpec{
				Service:    svc.Name,
				Replica:    r,
				Name:       name,
				GPUs:       replicaGPUs,
				Persistent: persistent,
				Config:     cfg,
				Host:       hostConfig(svc, replicaGPUs, set),
				Net:        networkingConfig(svc, set.Network, set.SharedNetwork),
			})
		}
	}
	return specs, nil
}

// replicaCount is how many containers the group runs.
func replicaCount(g sdl.ManifestGroup) int {
	n := 0
	for _, svc := range g.Services {
		n += int(svc.Count)
	}
	return n
}

// startOrder is the order services start in: each after the services it
// depends on, otherwise as the manifest lists them. A dependency on a
// service outside the group, or a cycle, is the tenant's fault.
func startOrder(services []sdl.ManifestService) ([]int, error) {
	index := map[string]int{}
	for i, s := range services {
		index[s.Name] = i
	}
	state := make([]int, len(services)) // 0 unseen, 1 visiting, 2 placed
	var order []int
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("%w: services depend on each other in a cycle through %q", ErrWorkloadInvalid, services[i].Name)
		case 2:
			return nil
		}
		state[i] = 1
		for _, dep := range services[i].DependsOn {
			j, ok := index[dep]
			if !ok {
				return fmt.Errorf("%w: service %q depends on %q, which is not in its group", ErrWorkloadInvalid, services[i].Name, dep)
			}
			if err := visit(j); err != nil {
				return err
			}
		}
		state[i] = 2
		order = append(order, i)
		return nil
	}
	for i := range services {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// checkService rejects what the engine would reject less clearly.
func checkService(svc sdl.ManifestService) error {
	switch {
	case svc.Name == "":
		return errors.New("a service has no name")
	case svc.Image == "":
		return fmt.Errorf("service %q has no image", svc.Name)
	case svc.Count == 0:
		return fmt.Errorf("service %q has count 0", svc.Name)
	}
	if err := sdl.CheckEnv(svc.Env); err != nil {
		return fmt.Errorf("%w: service %q: %v", ErrWorkloadInvalid, svc.Name, err)
	}
	for _, m := range svc.Mounts {
		if m.Class != sdl.ClassRAM && !m.Persistent {
			return fmt.Errorf("%w: service %q mounts volume %q of class %q, neither ram nor persistent", ErrWorkloadInvalid, svc.Name, m.Volume, m.Class)
		}
		if err := sdl.CheckMountPath(m.Path, m.Class == sdl.ClassRAM); err != nil {
			return fmt.Errorf("%w: service %q: %v", ErrWorkloadInvalid, svc.Name, err)
		}
		if m.SizeBytes == 0 {
			return fmt.Errorf("%w: service %q: mount %q has no size", ErrWorkloadInvalid, svc.Name, m.Path)
		}
	}
	for _, e := range svc.Expose {
		if e.Port == 0 || e.Port > 65535 {
			return fmt.Errorf("service %q exposes port %d; ports are 1-65535", svc.Name, e.Port)
		}
		if p := exposeProto(e); p != "tcp" && p != "udp" {
			return fmt.Errorf("service %q exposes port %d/%s; protocols are tcp and udp", svc.Name, e.Port, e.Proto)
		}
	}
	return nil
}

// assignGPUs hands the lease's GPU UUIDs out in order: replica r of service
// s gets the next Resources.GPUUnits of them. The result is indexed
// [service][replica]; replicas without GPUs get nil. Spare UUIDs are left
// unused; too few is an error.
func assignGPUs(services []sdl.ManifestService, uuids []string) ([][][]string, error) {
	need := 0
	for _, s := range services {
		need += int(s.Resources.GPUUnits) * int(s.Count)
	}
	if need > len(uuids) {
		return nil, fmt.Errorf("%w: the group needs %d GPUs and %d were assigned", ErrGPUUnavailable, need, len(uuids))
	}
	out := make([][][]string, len(services))
	next := 0
	for si, s := range services {
		out[si] = make([][]string, s.Count)
		for r := range out[si] {
			n := int(s.Resources.GPUUnits)
			if n == 0 {
				continue
			}
			out[si][r] = append([]string(nil), uuids[next:next+n]...)
			next += n
		}
	}
	return out, nil
}

// splitDeclared separates NVML UUIDs from the placeholders of GPUs the
// operator declared (inventory.DeclaredUUIDPrefix).
func splitDeclared(uuids []string) (real, declared []string) {
	for _, u := range uuids {
		if strings.HasPrefix(u, inventory.DeclaredUUIDPrefix) {
			declared = append(declared, u)
		} else {
			real = append(real, u)
		}
	}
	return real, declared
}

// containerConfig is the replica's process and identity: entrypoint from
// Command (the image's when empty), arguments from Args, and labels.
func containerConfig(svc sdl.ManifestService, replica int, labels map[string]string) *container.Config {
	cfg := &container.Config{
		Image:        svc.Image,
		Hostname:     hostname(svc.Name, replica),
		Env:          append([]string(nil), svc.Env...),
		Labels:       labels,
		ExposedPorts: nat.PortSet{},
	}
	if len(svc.Command) > 0 {
		cfg.Entrypoint = append([]string(nil), svc.Command...)
	}
	if len(svc.Args) > 0 {
		cfg.Cmd = append([]string(nil), svc.Args...)
	}
	for _, e := range svc.Expose {
		cfg.ExposedPorts[exposePort(e)] = struct{}{}
	}
	return cfg
}

// hostConfig is the replica's confinement: resource limits, security
// settings, restart policy, network, published ports, log rotation and
// GPUs. It is pure so that the policy can be tested without an engine.
func hostConfig(svc sdl.ManifestService, replicaGPUs []string, set specSettings) *container.HostConfig {
	pids := set.PidsLimit
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(set.Network),
		RestartPolicy:  restartPolicy(svc),
		Privileged:     false,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: false,
		PortBindings:   nat.PortMap{},
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": logMaxSize, "max-file": logMaxFiles},
		},
		Resources: container.Resources{
			NanoCPUs:  int64(svc.Resources.CPUMillis) * 1_000_000,
			Memory:    int64(svc.Resources.MemoryBytes),
			PidsLimit: &pids,
		},
	}
	// No swap: the memory+swap limit equals the memory limit.
	hc.MemorySwap = hc.Memory
	// The writable layer is held to Resources.StorageBytes by the engine
	// where it can (overlay2 on xfs with pquota); elsewhere the storage
	// watch (CheckStorage) stops a replica past it.
	if set.Quota && svc.Resources.StorageBytes > 0 {
		hc.StorageOpt = map[string]string{"size": strconv.FormatUint(svc.Resources.StorageBytes, 10)}
	}
	// A ram volume is memory-backed and sized; its pages are charged to
	// the container's memory, whose limit the SDL already raised by its
	// size. At /dev/shm it is the engine's shared-memory mount.
	for _, m := range svc.Mounts {
		if m.Persistent {
			continue // bound when the container is created (volumes.go)
		}
		if m.Path == "/dev/shm" {
			hc.ShmSize = int64(m.SizeBytes)
			continue
		}
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		opts := "size=" + strconv.FormatUint(m.SizeBytes, 10) + ",mode=1777"
		if m.ReadOnly {
			opts += ",ro"
		}
		hc.Tmpfs[m.Path] = opts
	}
	// Global exposes are published on a free host port ("" asks the engine
	// for one; Status reports which). The others are for the lease's own
	// services and stay on its network, reached by service name. Expose.As
	// cannot be honoured on a shared host and is left to whoever fronts the
	// provider.
	for _, e := range svc.Expose {
		if e.Global {
			hc.PortBindings[exposePort(e)] = []nat.PortBinding{{HostIP: set.PublishHost, HostPort: ""}}
		}
	}
	if len(replicaGPUs) == 0 {
		hc.Runtime = "runc"
	} else {
		hc.DeviceRequests = []container.DeviceRequest{{
			Driver:       gpuDriver,
			DeviceIDs:    append([]string(nil), replicaGPUs...),
			Capabilities: [][]string{{"gpu"}},
		}}
	}
	return hc
}

// restartPolicy: jobs ("never") are not restarted; services are restarted
// on failure a bounded number of times, so a crash-looping workload ends up
// exited and visible in status rather than burning the host.
func restartPolicy(svc sdl.ManifestService) container.RestartPolicy {
	if svc.Restart == "never" {
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}
	}
	return container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: serviceRestartRetries}
}

// networkingConfig attaches the replica to the lease network under its
// service name, so replicas of one lease reach each other as "<service>";
// on the shared network, where no other replica of the lease is, it has
// no alias.
func networkingConfig(svc sdl.ManifestService, networkName string, shared bool) *network.NetworkingConfig {
	if shared {
		return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{networkName: {}}}
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		networkName: {Aliases: []string{sanitizeName(svc.Name)}},
	}}
}

// hostname is "<service>-<replica>", cut to the 63 characters a DNS label
// may have.
func hostname(service string, replica int) string {
	h := sanitizeName(replicaKey(service, replica))
	if len(h) > 63 {
		h = h[:63]
	}
	return h
}

// exposeProto is the expose's protocol, tcp when unset.
func exposeProto(e sdl.ManifestExpose) string {
	if e.Proto == "" {
		return "tcp"
	}
	return strings.ToLower(e.Proto)
}

// exposePort is the engine's "port/proto" key.
func exposePort(e sdl.ManifestExpose) nat.Port {
	return nat.Port(strconv.FormatUint(uint64(e.Port), 10) + "/" + exposeProto(e))
}
