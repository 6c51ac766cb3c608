package app_test

import (
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/testutil/apptest"
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
	m := newBenchMarket(b, c)
	// open opens n running leases: deployments with a bid each, the
	// auctions closing in the next block, started in the one after.
	open := func(n int) []uint64 {
		var dseqs []uint64
		c.Do(time.Second, func(ctx sdk.Context) {
			for range n {
				dseqs = append(dseqs, m.open(ctx, sdk.NewInt64Coin("ugpn", 5_000_000), 1_000))
			}
		})
		c.NextBlock(time.Second)
		c.Do(time.Second, func(ctx sdk.Context) { m.start(ctx, dseqs) })
		return dseqs
	}
	closeAll := m.closeAll

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
