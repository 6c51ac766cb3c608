package app

import (
	"context"
	"sync"
	"time"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/prometheus/client_golang/prometheus"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// The node's gpunet gauges, read from the last committed state when
// Prometheus scrapes the node (CometBFT serves them with its own metrics on
// instrumentation.prometheus_listen_addr). They walk the market, escrow
// and provider stores, so a scrape reuses the last reading for
// metricsTTL: the cost stays off the blocks and bounded per minute.

// metricsTTL is how long one reading of the state serves scrapes.
const metricsTTL = 10 * time.Second

var (
	descOpenOrders = prometheus.NewDesc("gpunet_open_orders", "Orders open for bids.", nil, nil)
	descLeases     = prometheus.NewDesc("gpunet_leases", "Live leases, by state (pending: won, not started; active: paid).", []string{"state"}, nil)
	descEscrow     = prometheus.NewDesc("gpunet_escrow_balance_ugpn", "What the escrow accounts hold to pay with, in ugpn.", nil, nil)
	descAccounts   = prometheus.NewDesc("gpunet_escrow_accounts", "Open escrow accounts (deployments).", nil, nil)
	descProviders  = prometheus.NewDesc("gpunet_providers", "Registered providers, by whether they hold the minimum bond.", []string{"bonded"}, nil)
	descBacklog    = prometheus.NewDesc("gpunet_sweep_backlog", "Entries of an end-block queue already due and not yet processed.", []string{"module", "queue"}, nil)
	descParked     = prometheus.NewDesc("gpunet_sweep_parked", "Entries an end-block sweep could not process and parked.", []string{"module"}, nil)
	descHeight     = prometheus.NewDesc("gpunet_metrics_height", "The committed height the gauges were read at.", nil, nil)
)

type metricsReading struct {
	at                   time.Time
	height               int64
	openOrders, accounts float64
	pending, active      float64
	escrow               float64
	bonded, unbonded     float64
	backlog              map[[2]string]float64
	parked               map[string]float64
}

// stateCollector is a prometheus.Collector over the app's state.
type stateCollector struct {
	app *App
	mu  sync.Mutex
	r   *metricsReading
}

// RegisterMetrics adds gpunet's gauges to reg.
func (app *App) RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(&stateCollector{app: app})
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpenOrders, descLeases, descEscrow, descAccounts, descProviders, descBacklog, descParked, descHeight} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.r == nil || time.Since(c.r.at) > metricsTTL {
		r, err := c.read()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descHeight, err)
			return
		}
		c.r = r
	}
	r := c.r
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(descOpenOrders, r.openOrders)
	g(descLeases, r.pending, "pending")
	g(descLeases, r.active, "active")
	g(descEscrow, r.escrow)
	g(descAccounts, r.accounts)
	g(descProviders, r.bonded, "true")
	g(descProviders, r.unbonded, "false")
	for k, v := range r.backlog {
		g(descBacklog, v, k[0], k[1])
	}
	for m, v := range r.parked {
		g(descParked, v, m)
	}
	g(descHeight, float64(r.height))
}

// read walks the last committed state once.
func (c *stateCollector) read() (*metricsReading, error) {
	ctx, err := c.app.CreateQueryContext(0, false) // the last committed height
	if err != nil {
		return nil, err
	}
	r := &metricsReading{at: time.Now(), height: ctx.BlockHeight(), backlog: map[[2]string]float64{}, parked: map[string]float64{}}
	mk, ek, pk := c.app.MarketKeeper, c.app.EscrowKeeper, c.app.ProviderKeeper
	if r.openOrders, err = count(ctx, mk.OrderQueue); err != nil {
		return nil, err
	}
	if err := mk.Leases.Walk(ctx, nil, func(_ collections.Quad[uint64, sdk.AccAddress, uint64, sdk.AccAddress], l markettypes.Lease) (bool, error) {
		switch l.State {
		case markettypes.LEASE_STATE_PENDING:
			r.pending++
		case markettypes.LEASE_STATE_ACTIVE:
			r.active++
		}
		return false, nil
	}); err != nil {
		return nil, err
	}
	total := sdkmath.ZeroInt()
	if err := ek.Accounts.Walk(ctx, nil, func(_ collections.Pair[uint64, sdk.AccAddress], a escrowtypes.Account) (bool, error) {
		r.accounts++
		total = total.Add(a.Balance)
		return false, nil
	}); err != nil {
		return nil, err
	}
	r.escrow, _ = total.ToLegacyDec().Float64()
	if err := pk.Providers.Walk(ctx, nil, func(_ sdk.AccAddress, p providertypes.Provider) (bool, error) {
		ok, err := pk.HasMinBond(ctx, p)
		if ok {
			r.bonded++
		} else {
			r.unbonded++
		}
		return false, err
	}); err != nil {
		return nil, err
	}
	// The end-block queues' due entries: what a block still has to do.
	now, h := ctx.BlockTime(), ctx.BlockHeight()
	queues := []struct {
		module, queue string
		n             func() (float64, error)
	}{
		{markettypes.ModuleName, "orders", func() (float64, error) { return countBefore(ctx, mk.OrderQueue, h+1) }},
		{markettypes.ModuleName, "disputes", func() (float64, error) { return countBefore(ctx, mk.DisputeQueue, h+1) }},
		{escrowtypes.ModuleName, "depletions", func() (float64, error) { return countBefore(ctx, ek.DepletionQueue, now.Add(time.Nanosecond)) }},
		{escrowtypes.ModuleName, "topups", func() (float64, error) { return countBefore(ctx, ek.TopUpQueue, now.Add(time.Nanosecond)) }},
		{providertypes.ModuleName, "unbondings", func() (float64, error) { return countBefore(ctx, pk.UnbondingQueue, now.Add(time.Nanosecond)) }},
	}
	for _, q := range queues {
		n, err := q.n()
		if err != nil {
			return nil, err
		}
		r.backlog[[2]string{q.module, q.queue}] = n
	}
	for _, m := range []struct {
		name string
		n    func() (float64, error)
	}{
		{markettypes.ModuleName, func() (float64, error) { return countMap(ctx, mk.Parked) }},
		{escrowtypes.ModuleName, func() (float64, error) { return countMap(ctx, ek.Parked) }},
		{providertypes.ModuleName, func() (float64, error) { return countMap(ctx, pk.Parked) }},
	} {
		n, err := m.n()
		if err != nil {
			return nil, err
		}
		r.parked[m.name] = n
	}
	return r, nil
}

// count is how many keys a key set holds.
func count[K any](ctx context.Context, s collections.KeySet[K]) (float64, error) {
	n := 0.0
	err := s.Walk(ctx, nil, func(K) (bool, error) { n++; return false, nil })
	return n, err
}

// countBefore is how many entries of a due queue come before bound.
func countBefore[T, K any](ctx context.Context, s collections.KeySet[collections.Pair[T, K]], bound T) (float64, error) {
	n := 0.0
	rng := new(collections.Range[collections.Pair[T, K]]).EndExclusive(collections.PairPrefix[T, K](bound))
	err := s.Walk(ctx, rng, func(collections.Pair[T, K]) (bool, error) { n++; return false, nil })
	return n, err
}

// countMap is how many entries a map holds.
func countMap[K, V any](ctx context.Context, m collections.Map[K, V]) (float64, error) {
	n := 0.0
	err := m.Walk(ctx, nil, func(K, V) (bool, error) { n++; return false, nil })
	return n, err
}
