package keeper_test

import (
	"errors"
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/market/types"
)

func TestQueries(t *testing.T) {
	w := newWorld(t)
	var d1, d2 uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		d1 = w.deploy(ctx, 5_000_000, group())
		d2 = w.deploy(ctx, 5_000_000, group())
		if err := w.bid(ctx, d1, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		if err := w.bid(ctx, d2, 0, 1_000); err != nil {
			t.Fatal(err)
		}
		if err := w.bid(ctx, d2, 1, 2_000); err != nil {
			t.Fatal(err)
		}
	})
	q, ctx := marketQuery(w.c.App.MarketKeeper), w.c.Query()
	order := &types.QueryOrderRequest{Owner: w.tenant.String(), Dseq: d2, Gseq: 1, Oseq: 1}
	if bids, err := q.BidsByOrder(ctx, order); err != nil || len(bids.Bids) != 2 {
		t.Errorf("bids on d2: %v %v", bids, err)
	}
	if bids, err := q.BidsByProvider(ctx, &types.QueryByProviderRequest{Provider: w.provs[0].String()}); err != nil || len(bids.Bids) != 2 {
		t.Errorf("bids of provider 0: %v %v", bids, err)
	}
	if o, err := q.Order(ctx, order); err != nil || o.Order.State != types.ORDER_STATE_OPEN {
		t.Errorf("order: %v %v", o, err)
	}
	if _, err := q.Order(ctx, &types.QueryOrderRequest{Owner: w.tenant.String(), Dseq: 99, Gseq: 1, Oseq: 1}); !errors.Is(err, types.ErrOrderNotFound) {
		t.Errorf("unknown order: %v", err)
	}
	if open, err := q.OpenOrders(ctx, &types.QueryOpenOrdersRequest{}); err != nil || len(open.Orders) != 2 {
		t.Errorf("open orders: %v %v", open, err)
	}

	w.c.NextBlock(time.Second)
	w.c.NextBlock(time.Second) // both windows (2 blocks) close
	ctx = w.c.Query()
	if open, err := q.OpenOrders(ctx, &types.QueryOpenOrdersRequest{}); err != nil || len(open.Orders) != 0 {
		t.Errorf("open orders after the auctions: %v %v", open, err)
	}
	ds, err := q.Deployments(ctx, &types.QueryByOwnerRequest{Owner: w.tenant.String()})
	if err != nil || len(ds.Deployments) != 2 {
		t.Fatalf("deployments: %v %v", ds, err)
	}
	dep, err := q.Deployment(ctx, &types.QueryDeploymentRequest{Owner: w.tenant.String(), Dseq: d2})
	if err != nil || len(dep.Orders) != 1 || dep.Orders[0].State != types.ORDER_STATE_MATCHED || len(dep.Leases) != 1 || dep.Leases[0].Id.Provider != w.provs[0].String() {
		t.Errorf("deployment d2: %+v %v", dep, err)
	}
	if ls, err := q.LeasesByProvider(ctx, &types.QueryByProviderRequest{Provider: w.provs[0].String()}); err != nil || len(ls.Leases) != 2 {
		t.Errorf("leases of provider 0: %v %v", ls, err)
	}
	if ls, err := q.LeasesByProvider(ctx, &types.QueryByProviderRequest{Provider: w.provs[1].String()}); err != nil || len(ls.Leases) != 0 {
		t.Errorf("the losing provider has leases: %v %v", ls, err)
	}
	if bids, err := q.BidsByProvider(ctx, &types.QueryByProviderRequest{Provider: w.provs[1].String()}); err != nil || len(bids.Bids) != 0 {
		t.Errorf("lost bids still listed: %v %v", bids, err)
	}
	if _, err := q.Deployments(ctx, &types.QueryByOwnerRequest{Owner: "nope"}); !errors.Is(err, types.ErrInvalidAddress) {
		t.Errorf("bad owner: %v", err)
	}
}
