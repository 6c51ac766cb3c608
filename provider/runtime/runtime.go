package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/docker/docker/client"

	"github.com/gpunet/gpunet/provider/subnet"
	"github.com/gpunet/gpunet/sdl"
)

var (
	// ErrImageUnavailable is wrapped, with the image name, when an image is
	// not on the engine and cannot be pulled (or pulling is off).
	ErrImageUnavailable = errors.New("image unavailable")
	// ErrGPUUnavailable is wrapped when a lease's GPUs cannot be given to its
	// containers: too few UUIDs were assigned, or the engine has no GPU
	// device driver (the NVIDIA container toolkit is missing).
	ErrGPUUnavailable = errors.New("GPU unavailable")
	// ErrWorkloadInvalid is wrapped when the workload cannot run as the
	// tenant gave it, whoever runs it: the engine refuses its container's
	// configuration, the command cannot be executed, or the image is larger
	// than the provider accepts. A lease failing so is the tenant's fault.
	ErrWorkloadInvalid = errors.New("workload invalid")
	// ErrLeaseNotFound is wrapped by Logs and JobState when the engine has no
	// containers for the lease.
	ErrLeaseNotFound = errors.New("no containers for lease")
)

// Options configure a Runtime.
type Options struct {
	// Provider is the provider's bech32 address; every container and network
	// gets the label gpunet.provider=<Provider>, and the runtime only ever
	// sees objects carrying it. Required.
	Provider string
	// PublishHost is the host IP exposed ports are published on (default
	// "0.0.0.0").
	PublishHost string
	// PidsLimit caps processes per container (default DefaultPidsLimit).
	PidsLimit int64
	// LeasePidsLimit is a lease's process budget: each of its n replicas
	// gets min(PidsLimit, LeasePidsLimit/n), so a lease of many replicas
	// cannot multiply its way past it (0: no lease budget).
	LeasePidsLimit int64
	// Pull lets Deploy pull an image that is not on the engine.
	Pull bool
	// MaxImageBytes refuses (as ErrWorkloadInvalid) an image larger than
	// this; 0 means no limit.
	MaxImageBytes int64
	// DockerHost is the engine address, e.g. "unix:///var/run/docker.sock";
	// empty means DOCKER_HOST, or the default socket when that is unset.
	DockerHost string
	// LeaseSubnets is the IPv4 pool each lease's bridge network gets its
	// subnet from (default subnet.DefaultPool). It must not overlap the
	// host's own networks.
	LeaseSubnets string
	// LeaseSubnetBits is the prefix length of one lease's subnet (default
	// subnet.DefaultBits).
	LeaseSubnetBits int
	// ContainerUser ("uid:gid") runs every container as that user instead
	// of the image's; empty keeps the image's.
	ContainerUser string
	// StorageLimit is how writable layers are held to their replica's
	// storage size: StorageAuto (default), StorageQuota, StorageWatch or
	// StorageOff; StorageCheckInterval is how often the daemon is expected
	// to call CheckStorage in watch mode (for the log).
	StorageLimit         string
	StorageCheckInterval time.Duration
	// Registries limits where images may come from.
	Registries RegistryPolicy
	// StorageClasses map persistent storage classes to the directories
	// their volume images live in (see volumes.go).
	StorageClasses map[string]string
	// PulledImagesFile records the images this runtime pulled, which it
	// removes when no container uses them any more ("" keeps the record in
	// memory only).
	PulledImagesFile string
	// Logger receives one line per decision (default slog.Default()).
	Logger *slog.Logger
}

// Runtime runs leases on one Docker engine. It is safe for concurrent use;
// calls for the same lease that change it (Deploy, Remove) are serialized.
type Runtime struct {
	cli  *client.Client
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex // lease key → its lock

	subnets subnet.Pool
	// sharedMu makes finding or creating the shared network one step.
	sharedMu sync.Mutex

	iso     Isolation
	evicted evictions
	pulled  *pulledImages
}

// Workload is what Deploy runs for one lease.
type Workload struct {
	Lease LeaseRef
	// Group is the manifest group the lease runs.
	Group sdl.ManifestGroup
	// GPUs are the NVML UUIDs assigned to the lease, handed out to GPU-using
	// replicas in manifest order, each taking Resources.GPUUnits of them.
	GPUs []string
	// ImagesDue, when set, closes when the workload's images must be on
	// the engine (a pending lease's start deadline drawing near): an
	// image pull still running then is cut and the deploy fails with
	// ErrImageUnavailable, the tenant's registry's fault. Only the wait
	// for an image is cut; the rest of a deploy goes on.
	ImagesDue <-chan struct{}
}

// pingTimeout bounds New's check that the engine answers.
const pingTimeout = 10 * time.Second

// New connects to the Docker engine (DockerHost, else DOCKER_HOST, else the
// default socket) and checks that it answers.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Provider == "" {
		return nil, errors.New("runtime: Options.Provider (the provider address) is required")
	}
	if opts.PublishHost == "" {
		opts.PublishHost = "0.0.0.0"
	}
	if opts.PidsLimit <= 0 {
		opts.PidsLimit = DefaultPidsLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LeaseSubnets == "" {
		opts.LeaseSubnets = subnet.DefaultPool
	}
	if opts.LeaseSubnetBits == 0 {
		opts.LeaseSubnetBits = subnet.DefaultBits
	}
	pool, err := subnet.Parse(opts.LeaseSubnets, opts.LeaseSubnetBits)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	clientOpts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.DockerHost != "" {
		clientOpts = append(clientOpts, client.WithHost(opts.DockerHost))
	}
	cli, err := client.NewClientWithOpts(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("runtime: docker client (check DOCKER_HOST): %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	ping, err := cli.Ping(pingCtx)
	if err != nil {
		_ = cli.Close() // the engine is not there: nothing to close cleanly
		return nil, fmt.Errorf("runtime: Docker engine not reachable at %s (is dockerd running? set DOCKER_HOST, or the provider's docker host setting, to its socket, e.g. unix:///var/run/docker.sock): %w", cli.DaemonHost(), err)
	}
	r := &Runtime{
		cli:   cli,
		opts:  opts,
		log:   opts.Logger.With("component", "runtime", "provider", opts.Provider),
		locks: map[string]*sync.Mutex{},

		subnets: pool,
	}
	if r.pulled, err = loadPulled(opts.PulledImagesFile); err != nil {
		_ = cli.Close() // nothing was started on it
		return nil, fmt.Errorf("runtime: pulled images record: %w", err)
	}
	if err := r.probeIsolation(pingCtx); err != nil {
		_ = cli.Close() // nothing was started on it
		return nil, err
	}
	r.log.Info("docker engine connected", "host", cli.DaemonHost(), "api_version", ping.APIVersion)
	return r, nil
}

// Close releases the engine connection; containers keep running.
func (r *Runtime) Close() error {
	return r.cli.Close()
}

// lockLease serializes changes to one lease; the returned func unlocks.
// Locks are few (one per lease this process touched) and small, so they
// are kept rather than reference-counted.
func (r *Runtime) lockLease(l LeaseRef) func() {
	r.mu.Lock()
	m, ok := r.locks[leaseName(l)]
	if !ok {
		m = &sync.Mutex{}
		r.locks[leaseName(l)] = m
	}
	r.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// checkLease refuses a lease won by another provider: its objects would be
// labelled with this runtime's provider and look like ours.
func (r *Runtime) checkLease(l LeaseRef) error {
	if l.Provider != "" && l.Provider != r.opts.Provider {
		return fmt.Errorf("lease %s belongs to provider %s, this runtime runs %s", leaseName(l), l.Provider, r.opts.Provider)
	}
	return nil
}

// settingsFor is settings with the network the group runs on: a group of
// one container joins the provider's shared network (no bridge and
// iptables rules of its own to create, which is what starting many leases
// at once waits on); a group of several gets a network of its own, where
// its replicas reach each other by service name.
func (r *Runtime) settingsFor(l LeaseRef, g sdl.ManifestGroup) specSettings {
	set := r.settings(l)
	if replicaCount(g) == 1 {
		set.Network, set.SharedNetwork = r.sharedNetwork(), true
	}
	return set
}

// sharedNetwork is the name of this provider's shared network in its pool.
func (r *Runtime) sharedNetwork() string {
	return sharedNetworkName(r.opts.Provider, r.subnets.String())
}

func (r *Runtime) settings(l LeaseRef) specSettings {
	return specSettings{
		Provider:    r.opts.Provider,
		PublishHost: r.opts.PublishHost,
		PidsLimit:   r.opts.PidsLimit,
		LeasePids:   r.opts.LeasePidsLimit,
		Network:     networkName(r.opts.Provider, l),
		User:        r.opts.ContainerUser,
		Quota:       r.iso.StorageLimit == StorageQuota,
	}
}
