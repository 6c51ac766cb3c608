package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/cosmos/gogoproto/proto"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/chain"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// handledEvents are the event types the daemon acts on; others (a newer
// chain's included) are not its business.
var handledEvents = map[string]bool{}

func init() {
	for _, ev := range []proto.Message{
		&markettypes.EventOrderCreated{}, &markettypes.EventOrderClosed{}, &markettypes.EventBidClosed{},
		&markettypes.EventLeaseCreated{}, &markettypes.EventLeaseStarted{}, &markettypes.EventLeaseClosed{},
		&escrowtypes.EventPaymentWithdrawn{},
	} {
		handledEvents[proto.MessageName(ev)] = true
	}
}

// handleBlock applies one block's events. It is idempotent: the watcher
// retries a block whose handling failed, so earnings are counted only once
// the whole block went through.
func (d *Daemon) handleBlock(ctx context.Context, b chain.Block) error {
	earned := new(big.Int)
	for _, ev := range b.Events {
		if !handledEvents[ev.Type] {
			continue
		}
		msg, err := chain.ParseEvent(ev)
		if err != nil {
			// The chain and the daemon disagree on this event's schema:
			// retrying cannot help, reconcile from state covers what it
			// said. Loud, so the operator upgrades the daemon.
			d.log.Error("cannot decode a chain event; relying on reconcile", "type", ev.Type, "height", b.Height, "err", err)
			continue
		}
		if w, ok := msg.(*escrowtypes.EventPaymentWithdrawn); ok {
			if w.Id.Provider == d.provider {
				earned.Add(earned, w.Net.Amount.BigInt())
			}
			continue
		}
		if err := d.handleEvent(ctx, b.Height, msg); err != nil {
			return fmt.Errorf("%s: %w", ev.Type, err)
		}
	}
	d.sendDue(ctx, b.Height)
	if earned.Sign() > 0 {
		f, _ := new(big.Float).SetInt(earned).Float64()
		d.metrics.earnings.Add(f)
	}
	return nil
}

func (d *Daemon) handleEvent(ctx context.Context, height int64, ev any) error {
	switch e := ev.(type) {
	case *markettypes.EventOrderCreated:
		res, err := d.chain.Order(ctx, &markettypes.QueryOrderRequest{Owner: e.Id.Owner, Dseq: e.Id.Dseq, Gseq: e.Id.Gseq, Oseq: e.Id.Oseq})
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
		_, won := d.managers[key]
		d.mu.Unlock()
		if !won && d.engine.Release(key) {
			d.persistReservations()
		}

	case *markettypes.EventOrderClosed:
		key := orderKey(e.Id)
		d.mu.Lock()
		_, won := d.managers[key]
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
		l := markettypes.Lease{Id: e.Id, Price: e.Price, State: markettypes.LEASE_STATE_PENDING, StartDeadline: e.StartDeadline, CreatedAt: height}
		m, err := d.leaseManager(ctx, l)
		if errors.Is(err, errLeaseGone) {
			// Won and closed again before we looked (while the daemon was
			// down, say): nothing to run. Reconcile frees what it held.
			d.log.Info("lease already gone from the chain; skipping it", "lease", orderKey(e.Id.Order))
			return nil
		}
		if err != nil {
			return err
		}
		m.send(inChain{lease: l})

	case *markettypes.EventLeaseStarted:
		if e.Id.Provider != d.provider {
			return nil
		}
		if m, ok := d.managed(orderKey(e.Id.Order)); ok {
			m.send(inStarted{})
		}

	case *markettypes.EventLeaseClosed:
		if e.Id.Provider != d.provider {
			return nil
		}
		if m, ok := d.managed(orderKey(e.Id.Order)); ok {
			m.send(inClosed{reason: e.Reason.ReasonString()})
		}
	}
	return nil
}
