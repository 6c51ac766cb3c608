// Package daemon composes gpunet-provider: the chain watcher feeds block
// events to the bid engine and to one lease manager per lease won, the
// broadcaster sends every transaction, the runtime runs containers and the
// tenant API takes manifests and serves status and logs. See README.md for
// the map of the package.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/gpunet/gpunet/provider/bidengine"
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/egress"
	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/provider/runtime/kube"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// Daemon is one running provider.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	client  *chain.Client // the real chain connection (nil in unit tests)
	chain   Chain
	tx      Sender
	bcast   *chain.Broadcaster
	watcher *chain.Watcher
	// processed is the last height whose events the daemon has handled
	// (the watcher's; unit tests set their own).
	processed  func() int64
	engine     *bidengine.Engine
	rt         Runtime
	store      *store
	inv        inventory.Inventory
	metrics    *metrics
	api        *http.Server
	metricsSrv *http.Server
	metricsAt  string // the metrics server's address, once listening
	env        *managerEnv
	// host is the real runtime (nil in unit tests): what the host does to
	// contain leases, its storage watch and the GPUs its containers hold.
	host *runtime.Runtime
	// ingress routes hostnames to leases' HTTP exposes; ingressSrv serves it.
	ingress      *ingressTable
	ingressSrv   *http.Server
	ingressCerts *ingressCerts // nil without the HTTPS ingress
	// leaseLog keeps each lease's events for its tenant.
	leaseLog *leaseLog
	// revoked are owners' revocations of their browser session grants.
	revoked *revocations
	// egress is the lease egress filter in force (nil: off); egressErr
	// what its last check found wrong.
	egress    *egress.Policy
	egressErr error

	provider string // bech32 address
	keys     Signer // the provider's key, for manifest receipts
	keyName  string

	// ctx is Run's context: lease managers live in it, whoever spawns them
	// (the watcher, reconcile, or an API request). wg waits for every
	// goroutine the daemon starts.
	ctx context.Context
	wg  sync.WaitGroup

	mu sync.Mutex
	// params are x/market's params, read at every reconcile (so a change by
	// governance reaches the bid deposit and the manifest timeout within
	// one reconcile interval) and again when a bid is refused.
	params    markettypes.Params
	hasParams bool
	// bids holds the orders this provider has bid on: the time the bid was
	// sent while it is not yet seen on chain, the zero time once it is.
	bids     map[string]time.Time
	skipped  map[string]string        // order key → last skip reason (logged once)
	managers map[string]*leaseManager // order key → the manager of a lease we won
	owners   map[string]int           // tenant → how many of its leases are managed
	missing  map[string]*missingLease // managed leases a reconcile did not find on chain
	// signed is what auditors signed for this provider, read at signedAt.
	signed   []audittypes.AuditedAttributes
	signedAt time.Time
	// reliability is this provider's score, read at reliabilityAt.
	reliability   sdkmath.LegacyDec
	reliabilityAt time.Time
	streams       map[string]int // open followed log streams, by "lease/…" and "owner/…"
	// attesting is set while an attestation is in flight; attestedAt is
	// the height of the block that triggered the last one that landed.
	attesting  bool
	attestedAt int64
	// attestEvery is x/provider's attest_interval, re-read at every reconcile.
	attestEvery uint64
}

// New builds a daemon from its config and inventory; Run starts it.
func New(cfg *config.Config, inv inventory.Inventory, logger *slog.Logger) (*Daemon, error) {
	pass, err := cfg.KeyringPassphrase()
	if err != nil {
		return nil, err
	}
	c, err := chain.Dial(chain.Options{
		ChainID: cfg.Chain.ID, RPC: cfg.Chain.RPC, GRPC: cfg.Chain.GRPC,
		GRPCTLS: cfg.Chain.GRPCTLS, GRPCCAFile: cfg.Path(cfg.Chain.GRPCCAFile), GRPCServerName: cfg.Chain.GRPCServerName,
		KeyName: cfg.Key.Name, KeyringBackend: cfg.Key.KeyringBackend, KeyringDir: cfg.Path(cfg.Key.KeyringDir), Passphrase: pass,
	})
	if err != nil {
		return nil, err
	}
	prices, err := cfg.Pricing.Table()
	if err != nil {
		return nil, err
	}
	gasPrice, err := config.ParseGasPrice(cfg.Chain.GasPrices)
	if err != nil {
		return nil, err
	}
	st, err := newStore(cfg.Path(cfg.DataDir))
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.Runtime.Kind == config.RuntimeKubernetes {
		// The cluster as it is now, less what others' pods request there
		// (this provider's own are its reservations).
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		inv, err = kube.Discover(dctx, cfg.Path(cfg.Runtime.Kubernetes.Kubeconfig), c.Address.String())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cluster inventory: %w", err)
		}
		if inv.StorageClasses, err = inventory.ConfiguredClasses(cfg); err != nil {
			return nil, err
		}
	} else if cfg.Runtime.StorageLimit == runtime.StorageOff {
		inv.StorageBytes = 0 // storage nothing limits is not offered
	}
	engine := bidengine.New(inv, prices, cfg.Provider.Attributes)
	engine.MaxReplicas = cfg.Runtime.MaxReplicasPerLease
	engine.MaxVolumesPerLease, engine.MaxVolumes = cfg.Runtime.MaxVolumesPerLease, cfg.Runtime.MaxVolumes
	d := newDaemon(cfg, logger, chainClient{QueryClient: c.Market, c: c}, c.Address.String(), st, engine, inv)
	// A revoked browser session must not come back with a restart: an
	// unreadable record stops the daemon rather than forget it.
	if d.revoked, err = loadRevocations(st.dir); err != nil {
		return nil, fmt.Errorf("session grant revocations: %w (fix or remove the file)", err)
	}
	d.client, d.keys, d.keyName = c, c.Key, c.KeyName
	d.bcast = chain.NewBroadcaster(c, gasPrice, cfg.Chain.GasAdjustment, logger.With("component", "broadcaster"))
	if d.bcast.MaxFee, err = config.ParseCoin(cfg.Chain.MaxFee); err != nil {
		return nil, fmt.Errorf("chain.max_fee: %w", err)
	}
	d.tx = d.bcast
	d.env.tx = d.bcast
	d.watcher = chain.NewWatcher(c, cfg.DataPath("watcher.json"), d.handleBlock, logger.With("component", "watcher"))
	d.processed = d.watcher.LastHeight
	d.watcher.OnHeight = func(processed, latest int64) {
		d.metrics.height.Set(float64(processed))
		d.metrics.lag.Set(float64(latest - processed))
	}
	d.watcher.OnPruned = func(ctx context.Context, _, _ int64) {
		if err := d.reconcile(ctx); err != nil {
			d.log.Error("reconcile after pruned gap failed", "err", err)
		}
	}
	return d, nil
}

// newDaemon wires a daemon from its parts (unit tests give fakes).
func newDaemon(cfg *config.Config, logger *slog.Logger, c Chain, provider string, st *store, engine *bidengine.Engine, inv inventory.Inventory) *Daemon {
	d := &Daemon{
		cfg: cfg, log: logger, chain: c, inv: inv, store: st, engine: engine, provider: provider,
		metrics: newMetrics(), ctx: context.Background(), ingress: newIngressTable(cfg.IngressDomain()),
		bids: map[string]time.Time{}, skipped: map[string]string{}, managers: map[string]*leaseManager{}, owners: map[string]int{}, missing: map[string]*missingLease{},
		processed: func() int64 { return math.MaxInt64 },
	}
	d.env = &managerEnv{
		provider:  provider,
		txTimeout: 30 * time.Second,
		gpus: func(key string) ([]string, bool) {
			r, ok := d.engine.Get(key)
			return r.GPUs, ok
		},
		finished:      d.leaseFinished,
		crashRestarts: cfg.Runtime.CrashLoopRestarts,
		crashWindow:   cfg.Runtime.CrashLoopWindow.D(),
	}
	if cfg.Runtime.Kind != config.RuntimeKubernetes {
		d.env.engineSlots = make(chan struct{}, cmp.Or(cfg.Runtime.ParallelDeploys, config.DefaultParallelDeploys))
	}
	d.leaseLog = newLeaseLog(filepath.Join(st.dir, "lease-events")) // beside the manifests and reservations
	d.revoked = &revocations{file: filepath.Join(st.dir, "grant-revocations.json"), byOwner: map[string]int64{}}
	d.env.record = d.leaseLog.add
	return d
}

// Run serves until ctx ends, the tenant API fails or the chain watcher
// stops; every goroutine it started has returned when it does.
func (d *Daemon) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	d.ctx = ctx
	rc := d.cfg.Runtime
	if len(d.inv.StorageClasses) > 0 && os.Geteuid() != 0 && rc.Kind != config.RuntimeKubernetes {
		return errors.New("inventory.storage_classes: persistent volumes are mounted filesystem images, which needs the daemon to run as root")
	}
	start := d.startDocker
	if rc.Kind == config.RuntimeKubernetes {
		start = d.startKubernetes
	}
	err := start(ctx)
	if err != nil {
		return err
	}
	d.log.Info("provider daemon starting", "provider", d.provider, "chain_id", d.cfg.Chain.ID,
		"inventory", d.inv.Source, "gpus", len(d.inv.Healthy()), "cpu_millis", d.inv.CPUMillis, "memory_bytes", d.inv.MemoryBytes)

	// Reservations from before a restart come back first, so nothing is
	// promised twice: what running containers hold, then what was saved.
	if err := d.restoreReservations(ctx); err != nil {
		return err
	}

	stopped := make(chan error, 4) // the API, metrics or ingress server's, or the watcher's end
	if err := d.startAPI(stopped); err != nil {
		return err
	}
	if err := d.startMetrics(stopped); err != nil {
		err = errors.Join(err, d.shutdown())
		d.wg.Wait()
		return err
	}
	if err := d.startIngress(stopped); err != nil {
		err = errors.Join(err, d.shutdown())
		d.wg.Wait()
		return err
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.bcast.Run(ctx) }()

	// State first (adopt containers, forget what closed while we were down),
	// then follow blocks. Reconcile retries until the node answers.
	for ctx.Err() == nil {
		err := d.reconcile(ctx)
		if err == nil {
			break
		}
		d.log.Warn("initial reconcile failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}

	if ctx.Err() == nil {
		d.wg.Add(4)
		go func() { defer d.wg.Done(); d.rt.WatchEvents(ctx, d.onContainerEvent) }()
		go func() {
			defer d.wg.Done()
			if err := d.watcher.Run(ctx); err != nil && ctx.Err() == nil {
				stopped <- fmt.Errorf("chain watcher stopped: %w", err)
			}
		}()
		go func() { defer d.wg.Done(); d.every(ctx, d.cfg.ReconcileInterval.D(), "reconcile", d.reconcile) }()
		go func() { defer d.wg.Done(); d.every(ctx, d.cfg.WithdrawInterval.D(), "withdraw", d.withdrawAll) }()
		// Attestations follow the chain's head, not the blocks handled: a
		// block the daemon keeps retrying must not silence it.
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.every(ctx, time.Second, "attest", func(ctx context.Context) error { d.attestDue(ctx, d.watcher.Head()); return nil })
		}()
		if d.host != nil && d.host.Isolation().StorageLimit == runtime.StorageWatch {
			d.wg.Add(1)
			go func() { defer d.wg.Done(); d.every(ctx, rc.StorageCheckInterval.D(), "storage watch", d.watchStorage) }()
		}
	}
	select {
	case <-ctx.Done():
	case err = <-stopped:
		d.log.Error("shutting down", "err", err)
	}
	cancel()
	if serr := d.shutdown(); err == nil {
		err = serr
	}
	d.wg.Wait()
	if d.client != nil {
		err = errors.Join(err, d.client.Close())
	}
	return err
}

// startDocker connects the Docker runtime and readies the host: volumes
// mounted again, the egress filter, the GPU toolkit's check.
func (d *Daemon) startDocker(ctx context.Context) error {
	rc := d.cfg.Runtime
	rt, err := runtime.New(ctx, runtime.Options{
		Provider: d.provider, PublishHost: rc.PublishHost, PidsLimit: rc.PidsLimit, LeasePidsLimit: rc.LeasePidsLimit,
		Pull: rc.PullImages, MaxImageBytes: d.cfg.MaxImageBytes(), Logger: d.log, DockerHost: rc.DockerHost,
		LeaseSubnets: rc.LeaseSubnets, LeaseSubnetBits: rc.LeaseSubnetBits,
		ContainerUser: rc.ContainerUser, StorageLimit: rc.StorageLimit, StorageCheckInterval: rc.StorageCheckInterval.D(),
		Registries:       runtime.RegistryPolicy{Allow: rc.RegistryAllow, Deny: rc.RegistryDeny},
		PulledImagesFile: d.cfg.DataPath("pulled-images.json"),
		StorageClasses:   d.storageClassPaths(),
	})
	if err != nil {
		return err
	}
	d.rt, d.env.rt, d.host = rt, rt, rt
	// Volumes of leases that ran before a reboot are mounted again before
	// anything else, so a restarted container sees its data.
	if n, err := rt.RemountVolumes(ctx); err != nil {
		d.log.Error("persistent volumes could not all be mounted again", "err", err)
	} else if n > 0 {
		d.log.Info("persistent volumes mounted again", "volumes", n)
	}
	if err := d.setupEgress(ctx); err != nil {
		return err
	}
	// Offering real GPUs through a toolkit with known escapes would hand a
	// tenant the host: refuse to start, saying why.
	if d.inv.Source == inventory.SourceNVML && len(d.inv.Healthy()) > 0 {
		if err := runtime.CheckToolkit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startKubernetes connects the kubernetes runtime. The cluster's own
// policies (NetworkPolicies per lease, quotas, Pod Security) confine
// leases; nothing is installed on this host.
func (d *Daemon) startKubernetes(ctx context.Context) error {
	k := d.cfg.Runtime.Kubernetes
	rt, err := kube.New(ctx, kube.Options{
		Provider: d.provider, Kubeconfig: d.cfg.Path(k.Kubeconfig), NodeHost: k.NodeHost,
		PullPolicy: corev1.PullPolicy(k.ImagePullPolicy), RuntimeClass: k.RuntimeClass, RunAsNonRoot: k.RunAsNonRoot,
		ContainerUser: d.cfg.Runtime.ContainerUser, EgressAllow: d.cfg.Runtime.EgressAllow,
		Registries:    runtime.RegistryPolicy{Allow: d.cfg.Runtime.RegistryAllow, Deny: d.cfg.Runtime.RegistryDeny},
		DeployTimeout: k.DeployTimeout.D(), StorageClasses: d.cfg.KubernetesClasses(), Logger: d.log,
	})
	if err != nil {
		return err
	}
	d.rt, d.env.rt = rt, rt
	return nil
}

// storageClassPaths maps each configured storage class to its directory.
func (d *Daemon) storageClassPaths() map[string]string {
	out := map[string]string{}
	for _, c := range d.inv.StorageClasses {
		out[c.Name] = c.Path
	}
	return out
}

func (d *Daemon) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if d.api != nil {
		if err = d.api.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			err = nil // a log stream still open when the daemon stops: cut
		}
	}
	if d.metricsSrv != nil {
		err = errors.Join(err, d.metricsSrv.Shutdown(ctx))
	}
	if d.ingressSrv != nil {
		if ierr := d.ingressSrv.Shutdown(ctx); ierr != nil && !errors.Is(ierr, context.DeadlineExceeded) {
			err = errors.Join(err, ierr)
		}
	}
	d.log.Info("provider daemon stopped; containers keep running and are adopted on restart")
	return err
}

func (d *Daemon) every(ctx context.Context, period time.Duration, name string, fn func(context.Context) error) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn(name+" failed; will retry", "err", err)
			}
		}
	}
}

// persistReservations writes the engine's reservations, as they are once
// the write begins.
func (d *Daemon) persistReservations() {
	if err := d.store.saveReservations(d.engine.Reservations); err != nil {
		d.log.Error("cannot persist reservations", "err", err)
	}
}

// bidDeposit is the configured deposit or the chain's minimum.
func (d *Daemon) bidDeposit(ctx context.Context) (sdk.Coin, error) {
	if d.cfg.Pricing.BidDeposit != "" {
		amt, err := config.ParseCoin(d.cfg.Pricing.BidDeposit)
		if err != nil {
			return sdk.Coin{}, err
		}
		return sdk.NewCoin(config.Denom, amt), nil
	}
	p, err := d.marketParams(ctx, false)
	if err != nil {
		return sdk.Coin{}, err
	}
	return p.BidMinDeposit, nil
}

// marketParams returns x/market's params, read from the chain when fresh is
// set or none were read yet.
func (d *Daemon) marketParams(ctx context.Context, fresh bool) (markettypes.Params, error) {
	d.mu.Lock()
	p, ok := d.params, d.hasParams
	d.mu.Unlock()
	if ok && !fresh {
		return p, nil
	}
	res, err := d.chain.Params(ctx, &markettypes.QueryParamsRequest{})
	if err != nil {
		if ok {
			return p, nil // the last known params beat none while the node is away
		}
		return markettypes.Params{}, err
	}
	d.mu.Lock()
	if ok && !d.params.BidMinDeposit.Equal(res.Params.BidMinDeposit) {
		d.log.Info("market params changed", "bid_min_deposit", res.Params.BidMinDeposit.String(), "manifest_timeout", res.Params.ManifestTimeout)
	}
	d.params, d.hasParams = res.Params, true
	d.mu.Unlock()
	return res.Params, nil
}

// withdrawAll withdraws the earnings of every active lease in one batch.
func (d *Daemon) withdrawAll(ctx context.Context) error {
	var msgs []sdk.Msg
	for _, m := range d.leaseManagers() {
		v := m.view()
		if v.State == markettypes.LEASE_STATE_ACTIVE && v.Phase != PhaseClosing && v.Phase != PhaseClosed {
			msgs = append(msgs, &markettypes.MsgWithdrawLease{Provider: d.provider, Lease: m.ref})
		}
	}
	for len(msgs) > 0 {
		n := min(len(msgs), chain.MaxBatch)
		if _, err := d.tx.Send(ctx, msgs[:n]...); err != nil {
			return fmt.Errorf("withdraw: %w", err)
		}
		d.log.Info("earnings withdrawn", "leases", n)
		msgs = msgs[n:]
	}
	return nil
}

// orderKey names an order (and its lease) in the daemon's maps, logs and
// reservations: "owner/dseq/gseq/oseq", as the chain names it.
func orderKey(id markettypes.OrderID) string { return id.Name() }

func deploymentKey(owner string, dseq uint64) string { return fmt.Sprintf("%s/%d", owner, dseq) }
