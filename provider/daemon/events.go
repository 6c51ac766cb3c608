package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/chain"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// handleBlock applies one block's events. It is idempotent: the watcher
// retries a block whose handling failed.
func (d *Daemon) handleBlock(ctx context.Context, b chain.Block) error {
	for _, ev := range b.Events {
		if !strings.HasPrefix(ev.Type, "gpunet.") {
			continue
		}
		msg, err := chain.ParseEvent(ev)
		if err != nil {
			// An event type this daemon does not know (a newer chain): not ours to act on.
			continue
		}
		if err := d.handleEvent(ctx, b.Height, msg); err != nil {
			return fmt.Errorf("%s: %w", ev.Type, err)
		}
	}
	return nil
}

func (d *Daemon) handleEvent(ctx context.Context, height int64, ev any) error {
	switch e := ev.(type) {
	case *markettypes.EventOrderCreated:
		res, err := d.chain.Market.Order(ctx, &markettypes.QueryOrderRequest{Owner: e.Id.Owner, Dseq: e.Id.Dseq, Gseq: e.Id.Gseq, Oseq: e.Id.Oseq})
		if err != nil {
			if isNotFound(err) {
				return nil // closed again before we looked
			}
			return err
		}
		return d.considerOrder(ctx, res.Order)

	case *markettypes.EventBidClosed:
		if e.Id.Provider != d.provider {
			return nil
		}
		key := orderKey(e.Id.Order)
		d.log.Info("bid closed", "order", key, "reason", e.Reason, "height", height)
		d.metrics.bids.WithLabelValues("closed_" + e.Reason).Inc()
		d.mu.Lock()
		delete(d.bids, key)
		_, won := d.leases[key]
		d.mu.Unlock()
		if !won && d.engine.Release(key) {
			d.persistReservations()
		}

	case *markettypes.EventOrderClosed:
		key := orderKey(e.Id)
		d.mu.Lock()
		_, won := d.leases[key]
		delete(d.bids, key)
		delete(d.skipped, key)
		d.mu.Unlock()
		if !won && d.engine.Release(key) {
			d.log.Info("released reservation", "order", key, "why", "order closed: "+e.Reason)
			d.persistReservations()
		}

	case *markettypes.EventLeaseCreated:
		if e.Id.Provider != d.provider {
			return nil
		}
		d.log.Info("lease won", "lease", orderKey(e.Id.Order), "price", api.FormatDecCoin(e.Price.Amount.String(), e.Price.Denom)+"/h", "start_deadline", e.StartDeadline, "height", height)
		d.metrics.leasesWon.Inc()
		l := markettypes.Lease{Id: e.Id, Price: e.Price, State: markettypes.LEASE_STATE_PENDING, StartDeadline: e.StartDeadline}
		return d.trackLease(ctx, l, false)

	case *markettypes.EventLeaseStarted:
		if e.Id.Provider != d.provider {
			return nil
		}
		d.mu.Lock()
		if l, ok := d.leases[orderKey(e.Id.Order)]; ok {
			l.state = markettypes.LEASE_STATE_ACTIVE
		}
		d.mu.Unlock()

	case *markettypes.EventLeaseClosed:
		if e.Id.Provider != d.provider {
			return nil
		}
		d.leaseClosed(ctx, orderKey(e.Id.Order), e.Reason.ReasonString())

	case *escrowtypes.EventPaymentWithdrawn:
		if e.Id.Provider != d.provider {
			return nil
		}
		d.metrics.earnings.Add(float64(e.Net.Amount.Int64()))
	}
	return nil
}
