package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/bidengine"
	"github.com/gpunet/gpunet/provider/chain"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// pageSize is how many objects one paginated query asks for.
const pageSize = 500

// eachPage runs a paginated query page after page, handing every item to
// each, until the chain says there is no next page.
func eachPage[T any](ctx context.Context, fetch func(ctx context.Context, page *query.PageRequest) ([]T, *query.PageResponse, error), each func(T) error) error {
	var next []byte
	for {
		items, res, err := fetch(ctx, &query.PageRequest{Key: next, Limit: pageSize})
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return err
			}
		}
		if res == nil || len(res.NextKey) == 0 {
			return nil
		}
		next = res.NextKey
	}
}

// allBids lists this provider's open bids.
func (d *Daemon) allBids(ctx context.Context) ([]markettypes.Bid, error) {
	var out []markettypes.Bid
	err := eachPage(ctx, func(ctx context.Context, page *query.PageRequest) ([]markettypes.Bid, *query.PageResponse, error) {
		res, err := d.chain.BidsByProvider(ctx, &markettypes.QueryByProviderRequest{Provider: d.provider, Pagination: page})
		if err != nil {
			return nil, nil, err
		}
		return res.Bids, res.Pagination, nil
	}, func(b markettypes.Bid) error { out = append(out, b); return nil })
	return out, err
}

// considerOpenOrders considers every open order on the chain.
func (d *Daemon) considerOpenOrders(ctx context.Context) error {
	return eachPage(ctx, func(ctx context.Context, page *query.PageRequest) ([]markettypes.Order, *query.PageResponse, error) {
		res, err := d.chain.OpenOrders(ctx, &markettypes.QueryOpenOrdersRequest{Pagination: page})
		if err != nil {
			return nil, nil, fmt.Errorf("open orders: %w", err)
		}
		return res.Orders, res.Pagination, nil
	}, func(o markettypes.Order) error { return d.considerOrder(ctx, o) })
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
	dec := bidengine.Decision{}
	if reason, err := d.auditShortfall(ctx, o.Spec); err != nil {
		unclaim()
		return fmt.Errorf("auditor signatures: %w", err)
	} else if reason != "" {
		dec.Reason = reason
	} else if reason, err := d.reliabilityShortfall(ctx, o.Spec); err != nil {
		unclaim()
		return fmt.Errorf("reliability: %w", err)
	} else if reason != "" {
		dec.Reason = reason
	} else {
		dec = d.engine.EvaluateAndReserve(key, o.Spec)
	}
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
	result := d.tx.Submit(msg)
	d.log.Info("bid placed", "order", key, "price", api.FormatDecCoin(dec.Price.Amount.String(), dec.Price.Denom)+"/h", "gpus", dec.Reservation.GPUs, "max_price", api.FormatDecCoin(o.Spec.MaxPrice.Amount.String(), o.Spec.MaxPrice.Denom)+"/h")
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		var r chain.Result
		select {
		case r = <-result:
		case <-ctx.Done():
			return // shutting down: the next start's reconcile finds the bid, or not
		}
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
			_, won := d.managers[key]
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
	res, err := d.chain.BidsByOrder(ctx, &markettypes.QueryOrderRequest{Owner: id.Owner, Dseq: id.Dseq, Gseq: id.Gseq, Oseq: id.Oseq})
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

// auditShortfall says why this provider may not bid on a group that names
// auditors (signed_by): the chain would refuse the bid, and the fee with
// it. "" when the group names none or the signatures are there.
func (d *Daemon) auditShortfall(ctx context.Context, spec markettypes.GroupSpec) (string, error) {
	sb := spec.SignedBy
	if len(sb.AllOf) == 0 && len(sb.AnyOf) == 0 {
		return "", nil
	}
	signed, err := d.signedAttributes(ctx)
	if err != nil {
		return "", err
	}
	if audittypes.Satisfies(signed, spec.Requirements, sb.AllOf, sb.AnyOf) {
		return "", nil
	}
	return fmt.Sprintf("the group needs the attributes signed by auditors (all of %v, any of %v) and this provider's are not", sb.AllOf, sb.AnyOf), nil
}

// reliabilityShortfall says why this provider may not bid on a group
// asking for a higher reliability score than it has: the chain would
// refuse the bid. "" when the group asks none or the score is enough.
func (d *Daemon) reliabilityShortfall(ctx context.Context, spec markettypes.GroupSpec) (string, error) {
	least, ok := spec.LeastReliability()
	if !ok {
		return "", nil
	}
	d.mu.Lock()
	score, fresh := d.reliability, !d.reliabilityAt.IsZero() && time.Since(d.reliabilityAt) < signedTTL
	d.mu.Unlock()
	if !fresh {
		var err error
		if score, err = d.chain.Reliability(ctx, d.provider); err != nil {
			return "", err
		}
		d.mu.Lock()
		d.reliability, d.reliabilityAt = score, time.Now()
		d.mu.Unlock()
	}
	if score.LT(least) {
		return fmt.Sprintf("the group asks a reliability of at least %s and this provider scores %s", least, score), nil
	}
	return "", nil
}

// signedTTL is how long what auditors signed for this provider is reused:
// every reconcile considers the same open orders again, and each naming
// auditors would otherwise cost a query.
const signedTTL = 10 * time.Second

// signedAttributes are what auditors signed for this provider, read at
// most once per signedTTL.
func (d *Daemon) signedAttributes(ctx context.Context) ([]audittypes.AuditedAttributes, error) {
	d.mu.Lock()
	if !d.signedAt.IsZero() && time.Since(d.signedAt) < signedTTL {
		s := d.signed
		d.mu.Unlock()
		return s, nil
	}
	d.mu.Unlock()
	signed, err := d.chain.SignedAttributes(ctx, d.provider)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.signed, d.signedAt = signed, time.Now()
	d.mu.Unlock()
	return signed, nil
}
