// Package daemon composes gpunet-provider: the chain watcher feeds block
// events to the bid engine and the lease manager, the broadcaster sends
// every transaction, the runtime runs containers and the tenant API takes
// manifests and serves status and logs.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/bidengine"
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/provider/runtime"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// Daemon is one running provider.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	chain   *chain.Client
	bcast   *chain.Broadcaster
	watcher *chain.Watcher
	engine  *bidengine.Engine
	rt      *runtime.Runtime
	store   *store
	inv     inventory.Inventory
	metrics *metrics
	api     *http.Server

	provider string // bech32 address
	// params are x/market's params, read at every reconcile (so a change
	// by governance reaches the bid deposit and the manifest timeout within
	// one reconcile interval) and again when a bid is refused; under mu.
	params    markettypes.Params
	hasParams bool

	mu sync.Mutex
	// bids holds the orders this provider has bid on: the time the bid was
	// sent while it is not yet seen on chain, the zero time once it is.
	bids    map[string]time.Time
	skipped map[string]string // order key → last skip reason (logged once)
	leases  map[string]*lease // order key → lease won by us
	missing map[string]bool   // tracked leases the last reconcile did not find on chain
}

// lease is a lease this provider won and is running or about to.
type lease struct {
	ref      runtime.LeaseRef
	key      string
	spec     markettypes.GroupSpec
	state    markettypes.LeaseState
	deadline int64
	// createdAt is the height the lease was won at: the tenant's manifest
	// is due by createdAt + manifest_timeout.
	createdAt int64
	price     sdk.DecCoin
	// phase is the daemon's progress: awaiting_manifest, deploying, running, closing.
	phase string
	// watching is true while a goroutine waits for the job to exit.
	watching bool
	// closeReason is the reason of a close that failed and is retried.
	closeReason markettypes.CloseReason
}

// New builds a daemon from its config and inventory; Run starts it.
func New(cfg *config.Config, inv inventory.Inventory, logger *slog.Logger) (*Daemon, error) {
	c, err := chain.Dial(chain.Options{
		ChainID: cfg.Chain.ID, RPC: cfg.Chain.RPC, GRPC: cfg.Chain.GRPC,
		KeyName: cfg.Key.Name, KeyringBackend: cfg.Key.KeyringBackend, KeyringDir: cfg.Path(cfg.Key.KeyringDir),
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
	d := &Daemon{
		cfg: cfg, log: logger, chain: c, inv: inv, store: st,
		engine:   bidengine.New(inv, prices, cfg.Provider.Attributes),
		provider: c.Address.String(),
		metrics:  newMetrics(),
		bids:     map[string]time.Time{}, skipped: map[string]string{}, leases: map[string]*lease{}, missing: map[string]bool{},
	}
	d.bcast = chain.NewBroadcaster(c, gasPrice, cfg.Chain.GasAdjustment, logger.With("component", "broadcaster"))
	d.watcher = chain.NewWatcher(c, cfg.DataPath("watcher.json"), d.handleBlock, logger.With("component", "watcher"))
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

// Run serves until ctx ends or the tenant API fails.
func (d *Daemon) Run(parent context.Context) error {
	// Every goroutine below ends with ctx: a failed API server cancels it,
	// so the daemon exits (and its supervisor restarts it) instead of
	// running on without an API.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	rt, err := runtime.New(ctx, runtime.Options{
		Provider: d.provider, PublishHost: d.cfg.Runtime.PublishHost, PidsLimit: d.cfg.Runtime.PidsLimit,
		Pull: d.cfg.Runtime.PullImages, MaxImageBytes: d.cfg.MaxImageBytes(), Logger: d.log, DockerHost: d.cfg.Runtime.DockerHost,
		LeaseSubnets: d.cfg.Runtime.LeaseSubnets, LeaseSubnetBits: d.cfg.Runtime.LeaseSubnetBits,
	})
	if err != nil {
		return err
	}
	d.rt = rt
	d.log.Info("provider daemon starting", "provider", d.provider, "chain_id", d.cfg.Chain.ID,
		"inventory", d.inv.Source, "gpus", len(d.inv.Healthy()), "cpu_millis", d.inv.CPUMillis, "memory_bytes", d.inv.MemoryBytes)

	// Reservations from before a restart come back first, so nothing is promised twice.
	saved, err := d.store.loadReservations()
	if err != nil {
		return err
	}
	for _, r := range saved {
		if err := d.engine.Restore(r); err != nil {
			d.log.Warn("dropping saved reservation", "key", r.Key, "err", err)
		}
	}

	apiErr := make(chan error, 1)
	if err := d.startAPI(apiErr); err != nil {
		return err
	}
	go d.bcast.Run(ctx)

	// State first (adopt containers, forget what closed while we were down),
	// then follow blocks. Reconcile retries until the node answers.
	for {
		err := d.reconcile(ctx)
		if err == nil {
			break
		}
		d.log.Warn("initial reconcile failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return d.shutdown()
		case <-time.After(2 * time.Second):
		}
	}

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = d.watcher.Run(ctx) }()
	go func() { defer wg.Done(); d.every(ctx, d.cfg.ReconcileInterval.D(), "reconcile", d.reconcile) }()
	go func() { defer wg.Done(); d.every(ctx, d.cfg.WithdrawInterval.D(), "withdraw", d.withdrawAll) }()
	select {
	case <-ctx.Done():
	case err = <-apiErr:
		d.log.Error("API server stopped; shutting down", "err", err)
		cancel()
	}
	wg.Wait()
	if serr := d.shutdown(); err == nil {
		err = serr
	}
	return err
}

func (d *Daemon) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.api != nil {
		_ = d.api.Shutdown(ctx)
	}
	d.log.Info("provider daemon stopped; containers keep running and are adopted on restart")
	return d.chain.Close()
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

// persistReservations writes the engine's reservations.
func (d *Daemon) persistReservations() {
	if err := d.store.saveReservations(d.engine.Reservations()); err != nil {
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
	res, err := d.chain.Market.Params(ctx, &markettypes.QueryParamsRequest{})
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

// reconcile makes the daemon agree with the chain and Docker: leases won
// are tracked, leases gone are torn down, containers of live leases are
// adopted, open orders get considered, stale reservations are freed.
func (d *Daemon) reconcile(ctx context.Context) error {
	if _, err := d.marketParams(ctx, true); err != nil {
		return fmt.Errorf("market params: %w", err)
	}
	leases, err := d.allLeases(ctx)
	if err != nil {
		return fmt.Errorf("leases: %w", err)
	}
	bids, err := d.allBids(ctx)
	if err != nil {
		return fmt.Errorf("bids: %w", err)
	}
	running, err := d.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("containers: %w", err)
	}

	live := map[string]markettypes.Lease{}
	for _, l := range leases {
		live[orderKey(l.Id.Order)] = l
	}
	openBids := map[string]bool{}
	for _, b := range bids {
		openBids[orderKey(b.Id.Order)] = true
	}

	// Leases we track but the chain no longer has are closed. The block's
	// closing event normally gets there first and says why; a lease missing
	// on two reconciles in a row is torn down here.
	d.mu.Lock()
	var gone []string
	for key := range d.leases {
		if _, ok := live[key]; ok {
			delete(d.missing, key)
			continue
		}
		if d.missing[key] {
			gone = append(gone, key)
		} else {
			d.missing[key] = true
		}
	}
	d.mu.Unlock()
	for _, key := range gone {
		d.leaseClosed(ctx, key, "not on chain any more")
	}
	// Containers of leases that exist neither on chain nor in our books
	// (closed while the daemon was down) go.
	for key, ref := range running {
		d.mu.Lock()
		_, tracked := d.leases[key]
		d.mu.Unlock()
		if _, ok := live[key]; !ok && !tracked {
			d.log.Info("removing containers of a lease closed while away", "lease", key)
			if err := d.rt.Remove(ctx, ref); err != nil {
				return err
			}
		}
	}
	// Every live lease is tracked; its containers are adopted or started.
	for key, l := range live {
		_, hasContainers := running[key]
		if err := d.trackLease(ctx, l, hasContainers); err != nil {
			d.log.Warn("cannot track lease", "lease", key, "err", err)
		}
	}
	// Reservations held for neither a live lease nor an open or in-flight
	// bid are freed.
	changed := false
	for _, r := range d.engine.Reservations() {
		d.mu.Lock()
		_, placed := d.bids[r.Key]
		d.mu.Unlock()
		if _, ok := live[r.Key]; !ok && !openBids[r.Key] && !placed {
			d.engine.Release(r.Key)
			changed = true
			d.log.Info("released reservation", "order", r.Key, "why", "no open bid or lease")
		}
	}
	// Bids the chain no longer holds are forgotten, except those still on
	// their way into a block: forgetting one of those would bid twice.
	d.mu.Lock()
	now := time.Now()
	for key, sent := range d.bids {
		_, isLive := live[key]
		if !openBids[key] && !isLive && (sent.IsZero() || now.Sub(sent) > bidSettle) {
			delete(d.bids, key)
		}
	}
	for key := range openBids {
		d.bids[key] = time.Time{}
	}
	d.mu.Unlock()
	if changed {
		d.persistReservations()
	}
	d.metrics.leases.Set(float64(len(live)))
	n := 0
	for key, ref := range running {
		if _, ok := live[key]; !ok {
			continue
		}
		if st, err := d.rt.Status(ctx, ref); err == nil {
			for _, reps := range st.Services {
				for _, r := range reps {
					if r.State == "running" {
						n++
					}
				}
			}
		}
	}
	d.metrics.containers.Set(float64(n))
	return d.considerOpenOrders(ctx)
}

func (d *Daemon) allLeases(ctx context.Context) ([]markettypes.Lease, error) {
	var out []markettypes.Lease
	var next []byte
	for {
		res, err := d.chain.Market.LeasesByProvider(ctx, &markettypes.QueryByProviderRequest{Provider: d.provider, Pagination: &query.PageRequest{Key: next, Limit: 500}})
		if err != nil {
			return nil, err
		}
		out = append(out, res.Leases...)
		if res.Pagination == nil || len(res.Pagination.NextKey) == 0 {
			return out, nil
		}
		next = res.Pagination.NextKey
	}
}

func (d *Daemon) allBids(ctx context.Context) ([]markettypes.Bid, error) {
	var out []markettypes.Bid
	var next []byte
	for {
		res, err := d.chain.Market.BidsByProvider(ctx, &markettypes.QueryByProviderRequest{Provider: d.provider, Pagination: &query.PageRequest{Key: next, Limit: 500}})
		if err != nil {
			return nil, err
		}
		out = append(out, res.Bids...)
		if res.Pagination == nil || len(res.Pagination.NextKey) == 0 {
			return out, nil
		}
		next = res.Pagination.NextKey
	}
}

func (d *Daemon) considerOpenOrders(ctx context.Context) error {
	var next []byte
	for {
		res, err := d.chain.Market.OpenOrders(ctx, &markettypes.QueryOpenOrdersRequest{Pagination: &query.PageRequest{Key: next, Limit: 500}})
		if err != nil {
			return fmt.Errorf("open orders: %w", err)
		}
		for _, o := range res.Orders {
			if err := d.considerOrder(ctx, o); err != nil {
				return err
			}
		}
		if res.Pagination == nil || len(res.Pagination.NextKey) == 0 {
			return nil
		}
		next = res.Pagination.NextKey
	}
}

// considerOrder bids on an open order when it fits and pays enough.
func (d *Daemon) considerOrder(ctx context.Context, o markettypes.Order) error {
	key := orderKey(o.Id)
	if o.State != markettypes.ORDER_STATE_OPEN {
		return nil
	}
	for _, ex := range o.ExcludedProviders {
		if ex == d.provider {
			return nil // we failed an earlier round of this group: the chain refuses our bid
		}
	}
	// The watcher and reconcile may both reach an order: claiming it under
	// the lock (as a bid in flight) before reserving makes one of them bid,
	// and keeps reconcile from freeing the reservation before the bid is
	// sent.
	d.mu.Lock()
	if _, placed := d.bids[key]; placed {
		d.mu.Unlock()
		return nil
	}
	d.bids[key] = time.Now()
	d.mu.Unlock()
	unclaim := func() {
		d.mu.Lock()
		delete(d.bids, key)
		d.mu.Unlock()
	}
	dec := d.engine.Evaluate(key, o.Spec)
	if !dec.Bid {
		unclaim()
		d.mu.Lock()
		first := d.skipped[key] != dec.Reason
		d.skipped[key] = dec.Reason
		d.mu.Unlock()
		if first {
			d.log.Info("bid skipped", "order", key, "reason", dec.Reason)
			d.metrics.bids.WithLabelValues("skipped").Inc()
		}
		return nil
	}
	deposit, err := d.bidDeposit(ctx)
	if err != nil {
		d.engine.Release(key)
		unclaim()
		return fmt.Errorf("bid deposit: %w", err)
	}
	d.mu.Lock()
	delete(d.skipped, key)
	d.mu.Unlock()
	d.persistReservations()
	msg := &markettypes.MsgCreateBid{Provider: d.provider, Order: o.Id, Price: dec.Price, Deposit: deposit}
	result := d.bcast.Submit(msg)
	d.log.Info("bid placed", "order", key, "price", api.FormatDecCoin(dec.Price.Amount.String(), dec.Price.Denom)+"/h", "gpus", dec.Reservation.GPUs, "max_price", api.FormatDecCoin(o.Spec.MaxPrice.Amount.String(), o.Spec.MaxPrice.Denom)+"/h")
	go func() {
		r := <-result
		if r.Err != nil && d.bidOnChain(ctx, o.Id) {
			// Refused because an earlier send of it already landed (a retry
			// after an outage): the bid stands, and so does its reservation.
			d.log.Info("bid already on chain", "order", key)
			d.mu.Lock()
			d.bids[key] = time.Time{}
			d.mu.Unlock()
			return
		}
		if r.Err != nil {
			d.log.Warn("bid refused", "order", key, "err", r.Err)
			if strings.Contains(r.Err.Error(), markettypes.ErrBidDepositTooLow.Error()) {
				if _, err := d.marketParams(ctx, true); err != nil {
					d.log.Warn("cannot read market params", "err", err)
				}
			}
			d.metrics.bids.WithLabelValues("refused").Inc()
			d.mu.Lock()
			delete(d.bids, key)
			d.skipped[key] = "refused: " + r.Err.Error()
			_, won := d.leases[key]
			d.mu.Unlock()
			if !won {
				d.engine.Release(key)
				d.persistReservations()
			}
			return
		}
		d.metrics.bids.WithLabelValues("placed").Inc()
		d.log.Debug("bid accepted into the mempool", "order", key, "tx", r.TxHash)
	}()
	return nil
}

// bidSettle is how long a bid sent to the node may take to show up on chain
// before reconcile stops counting it as in flight.
const bidSettle = 30 * time.Second

// bidOnChain reports whether the chain holds this provider's bid on the
// order. A failed query counts as no.
func (d *Daemon) bidOnChain(ctx context.Context, id markettypes.OrderID) bool {
	res, err := d.chain.Market.BidsByOrder(ctx, &markettypes.QueryOrderRequest{Owner: id.Owner, Dseq: id.Dseq, Gseq: id.Gseq, Oseq: id.Oseq})
	if err != nil {
		return false
	}
	for _, b := range res.Bids {
		if b.Id.Provider == d.provider {
			return true
		}
	}
	return false
}

// withdrawAll withdraws the earnings of every active lease in one batch.
func (d *Daemon) withdrawAll(ctx context.Context) error {
	d.mu.Lock()
	var msgs []sdk.Msg
	for _, l := range d.leases {
		if l.state == markettypes.LEASE_STATE_ACTIVE && l.phase != "closing" {
			msgs = append(msgs, &markettypes.MsgWithdrawLease{Provider: d.provider, Lease: bidID(l.ref)})
		}
	}
	d.mu.Unlock()
	for len(msgs) > 0 {
		n := min(len(msgs), chain.MaxBatch)
		if _, err := d.bcast.Send(ctx, msgs[:n]...); err != nil {
			return fmt.Errorf("withdraw: %w", err)
		}
		d.log.Info("earnings withdrawn", "leases", n)
		msgs = msgs[n:]
	}
	return nil
}

func orderKey(id markettypes.OrderID) string {
	return fmt.Sprintf("%s/%d/%d/%d", id.Owner, id.Dseq, id.Gseq, id.Oseq)
}

func deploymentKey(owner string, dseq uint64) string { return fmt.Sprintf("%s/%d", owner, dseq) }

func bidID(ref runtime.LeaseRef) markettypes.BidID {
	return markettypes.BidID{Order: markettypes.OrderID{Owner: ref.Owner, Dseq: ref.DSeq, Gseq: ref.GSeq, Oseq: ref.OSeq}, Provider: ref.Provider}
}

func refOf(id markettypes.BidID) runtime.LeaseRef {
	return runtime.LeaseRef{Owner: id.Order.Owner, DSeq: id.Order.Dseq, GSeq: id.Order.Gseq, OSeq: id.Order.Oseq, Provider: id.Provider}
}
