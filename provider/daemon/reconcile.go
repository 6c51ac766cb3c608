package daemon

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/cosmos/cosmos-sdk/types/query"

	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// missingLimit is how many reconciles in a row may miss a managed lease
// before it is torn down even though the watcher has not caught up with
// the block that closed it (a watcher stuck on one block).
const missingLimit = 20

// missingLease is a managed lease a reconcile did not find on chain: the
// node's height then, and how many reconciles in a row missed it.
type missingLease struct {
	at         int64
	reconciles int
}

// reconcile makes the daemon agree with the chain and Docker: leases won
// are tracked, leases gone are torn down, containers of live leases are
// adopted, open orders get considered, stale reservations are freed.
func (d *Daemon) reconcile(ctx context.Context) error {
	d.checkEgress(ctx)
	if _, err := d.marketParams(ctx, true); err != nil {
		return fmt.Errorf("market params: %w", err)
	}
	d.attestInterval(ctx, true)
	leases, err := d.allLeases(ctx)
	if err != nil {
		return fmt.Errorf("leases: %w", err)
	}
	bids, err := d.allBids(ctx)
	if err != nil {
		return fmt.Errorf("bids: %w", err)
	}
	held, err := d.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("containers: %w", err)
	}

	live := make(map[string]*markettypes.Lease, len(leases))
	for i := range leases {
		live[orderKey(leases[i].Id.Order)] = &leases[i]
	}
	openBids := map[string]bool{}
	for _, b := range bids {
		openBids[orderKey(b.Id.Order)] = true
	}

	// Leases we manage but the chain no longer has are closed. The block's
	// closing event says why, so it is waited for: a lease is torn down
	// here once the watcher has handled every block up to one where the
	// lease was already gone and no closing event came (a daemon back from
	// a freeze finds its leases gone well before it has caught up on the
	// blocks that closed them), or after missingLimit reconciles whatever
	// the watcher does.
	head, err := d.chain.LatestHeight(ctx)
	if err != nil {
		// A first miss then cannot say how far the watcher must get: only
		// the count of reconciles ends it. The rest of reconcile goes on.
		d.log.Warn("cannot read the chain's height; leases missing from now on wait for missingLimit reconciles", "err", err)
		head = math.MaxInt64
	}
	processed := d.processed()
	var gone []*leaseManager
	d.mu.Lock()
	for key, m := range d.managers {
		if _, ok := live[key]; ok {
			delete(d.missing, key)
			continue
		}
		miss, seen := d.missing[key]
		if !seen {
			d.missing[key] = &missingLease{at: head, reconciles: 1}
			continue
		}
		if miss.reconciles++; processed >= miss.at || miss.reconciles > missingLimit {
			gone = append(gone, m)
		}
	}
	d.mu.Unlock()
	for _, m := range gone {
		m.send(inClosed{reason: "not on chain any more"})
	}
	// Containers of leases that exist neither on chain nor in our books
	// (closed while the daemon was down) go.
	for key, h := range held {
		_, managed := d.managed(key)
		if _, ok := live[key]; !ok && !managed {
			d.log.Info("removing containers of a lease closed while away", "lease", key)
			if err := d.rt.Remove(ctx, h.Ref); err != nil {
				return err
			}
		}
	}
	// Every live lease has a manager, told what the chain and the engine
	// hold now (from the one listing above: an idle lease costs no engine
	// call, and no goroutine: tell): it adopts containers, deploys, starts,
	// retries a close, or looks at a job none of whose containers runs any
	// more.
	for key, l := range live {
		h, hasContainers := held[key]
		m, err := d.leaseManager(ctx, *l)
		if err != nil {
			d.log.Warn("cannot manage lease", "lease", key, "err", err)
			continue
		}
		m.tell(inChain{lease: *l, containers: hasContainers, running: h.Running, counted: h.Counted})
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
	for key := range live {
		n += held[key].Running
	}
	d.metrics.containers.Set(float64(n))
	return d.considerOpenOrders(ctx)
}

// allLeases lists this provider's live leases.
func (d *Daemon) allLeases(ctx context.Context) ([]markettypes.Lease, error) {
	var out []markettypes.Lease
	err := eachPage(ctx, func(ctx context.Context, page *query.PageRequest) ([]markettypes.Lease, *query.PageResponse, error) {
		res, err := d.chain.LeasesByProvider(ctx, &markettypes.QueryByProviderRequest{Provider: d.provider, Pagination: page})
		if err != nil {
			return nil, nil, err
		}
		return res.Leases, res.Pagination, nil
	}, func(l markettypes.Lease) error { out = append(out, l); return nil })
	return out, err
}
