package app_test

import (
	"crypto/sha256"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// storeBytes sums key and value bytes of gpunet's module stores and bank
// (balances of the module accounts move), i.e. the state a deployment adds.
func storeBytes(c *apptest.Chain, modules ...string) int64 {
	var n int64
	ctx := c.Query()
	for _, name := range modules {
		key := c.App.UnsafeFindStoreKey(name)
		it := ctx.KVStore(key).Iterator(nil, nil)
		for ; it.Valid(); it.Next() {
			n += int64(len(it.Key()) + len(it.Value()))
		}
		it.Close()
	}
	return n
}

var stateModules = []string{"market", "escrow", "provider", "bank"}

// BenchmarkStatePerLease reports the store bytes one live lease adds (its
// deployment with one group, the order, the lease, the escrow account and
// payment, and the index entries), and the store size after 10,000
// deployments were opened, leased and closed again compared with before.
func BenchmarkStatePerLease(b *testing.B) {
	c := apptest.New(b, 3)
	tenant, prov := c.Accounts[0], c.Accounts[1]
	market := marketkeeper.NewMsgServerImpl(c.App.MarketKeeper)
	c.Do(time.Second, func(ctx sdk.Context) { registerBenchProvider(b, ctx, c, prov) })
	hash := sha256.Sum256([]byte("manifest"))
	// open creates n deployments with a bid each (the auction closes in the next block).
	open := func(n int) []uint64 {
		var dseqs []uint64
		c.Do(time.Second, func(ctx sdk.Context) {
			for range n {
				res, err := market.CreateDeployment(ctx, &markettypes.MsgCreateDeployment{Owner: tenant.String(),
					Groups: []markettypes.GroupSpec{benchGroup()}, ManifestHash: hash[:], Deposit: sdk.NewInt64Coin("ugpn", 5_000_000), BidWindow: 1})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := market.CreateBid(ctx, &markettypes.MsgCreateBid{Provider: prov.String(),
					Order: markettypes.OrderID{Owner: tenant.String(), Dseq: res.Dseq, Gseq: 1, Oseq: 1},
					Price: sdk.NewDecCoin("ugpn", sdkmath.NewInt(1_000)), Deposit: sdk.NewInt64Coin("ugpn", 1_000_000)}); err != nil {
					b.Fatal(err)
				}
				dseqs = append(dseqs, res.Dseq)
			}
		})
		c.NextBlock(time.Second) // auctions close: pending leases
		c.Do(time.Second, func(ctx sdk.Context) {
			for _, d := range dseqs {
				id := markettypes.BidID{Order: markettypes.OrderID{Owner: tenant.String(), Dseq: d, Gseq: 1, Oseq: 1}, Provider: prov.String()}
				if _, err := market.StartLease(ctx, &markettypes.MsgStartLease{Provider: prov.String(), Lease: id}); err != nil {
					b.Fatal(err)
				}
			}
		})
		return dseqs
	}
	closeAll := func(dseqs []uint64) {
		c.Do(time.Second, func(ctx sdk.Context) {
			for _, d := range dseqs {
				if _, err := market.CloseDeployment(ctx, &markettypes.MsgCloseDeployment{Owner: tenant.String(), Dseq: d}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}

	// Warm up: the first deployment also creates module accounts' balances.
	closeAll(open(1))
	base := storeBytes(c, stateModules...)
	one := open(1)
	perLease := storeBytes(c, stateModules...) - base
	closeAll(one)
	before := storeBytes(c, stateModules...)
	for range 20 {
		closeAll(open(500))
	}
	after := storeBytes(c, stateModules...)
	for range b.N { // the figures are measured once; b.N only satisfies the harness
	}
	b.ReportMetric(float64(perLease), "bytes/lease")
	b.ReportMetric(float64(after-before), "bytes-left-after-10k")
}
