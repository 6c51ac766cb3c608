package keeper_test

import (
	"errors"
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

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

// TestLeasesByOwnerPagesByDeployment: a tenant's leases come a page of
// deployments at a time; following next_key reads every lease once, and a
// tenant with many deployments cannot make one query read them all.
func TestLeasesByOwnerPagesByDeployment(t *testing.T) {
	w := newWorld(t)
	const n = 5
	var dseqs []uint64
	w.c.Do(time.Second, func(ctx sdk.Context) {
		for range n {
			dseqs = append(dseqs, w.deploy(ctx, 5_000_000, group()))
		}
	})
	w.c.Do(time.Second, func(ctx sdk.Context) {
		for i, d := range dseqs {
			if err := w.bid(ctx, d, i%2, 1_000); err != nil {
				t.Fatal(err)
			}
		}
	})
	w.c.NextBlock(time.Second) // the windows close

	q, ctx := marketQuery(w.c.App.MarketKeeper), w.c.Query()
	all, err := q.LeasesByOwner(ctx, &types.QueryByOwnerRequest{Owner: w.tenant.String()})
	if err != nil || len(all.Leases) != n {
		t.Fatalf("all leases: %d (%v), want %d", len(all.Leases), err, n)
	}
	seen := map[uint64]int{}
	var next []byte
	pages := 0
	for {
		res, err := q.LeasesByOwner(ctx, &types.QueryByOwnerRequest{Owner: w.tenant.String(), Pagination: &query.PageRequest{Key: next, Limit: 2}})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(res.Leases) > 2 {
			t.Fatalf("page %d holds %d leases, want at most 2 (one per deployment)", pages, len(res.Leases))
		}
		for _, l := range res.Leases {
			seen[l.Id.Order.Dseq]++
			if l.Id.Order.Owner != w.tenant.String() {
				t.Errorf("page %d: a lease of %s", pages, l.Id.Order.Owner)
			}
		}
		if next = res.Pagination.GetNextKey(); len(next) == 0 {
			break
		}
	}
	if pages != 3 || len(seen) != n {
		t.Fatalf("%d pages covered %d deployments, want 3 pages covering %d", pages, len(seen), n)
	}
	for d, k := range seen {
		if k != 1 {
			t.Errorf("deployment %d's lease came %d times", d, k)
		}
	}
	if _, err := q.LeasesByOwner(ctx, &types.QueryByOwnerRequest{Owner: "not-an-address"}); err == nil {
		t.Error("a malformed owner was accepted")
	}
}
