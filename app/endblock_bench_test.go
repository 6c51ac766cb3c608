package app_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"cosmossdk.io/collections"
	"cosmossdk.io/core/header"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	escrowkeeper "github.com/gpunet/gpunet/x/escrow/keeper"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// endBlockWorld is a chain with a number of running leases (each with its
// deployment, order, escrow account and open payment), built once per size
// and shared by the repeated runs of BenchmarkEndBlock.
type endBlockWorld struct {
	*benchMarket
	c *apptest.Chain
}

var endBlockWorlds = map[int]*endBlockWorld{}

// BenchmarkEndBlock measures, with 1k, 10k and 100k running leases in
// state, the block in which 5 auctions close and 5 escrow accounts run dry:
// x/market's EndBlock (market-ns/op), x/escrow's EndBlock (escrow-ns/op),
// each on a branch of the same state so every iteration does the same work,
// and then 20 whole blocks through the app (FinalizeBlock with every
// module's Begin/EndBlock, and Commit), each with 5 new orders and bids, 5
// auctions closing and 5 accounts running dry (ns/block). The running
// leases are opened 1,000 per block through the real message servers.
func BenchmarkEndBlock(b *testing.B) {
	sizes := []int{1_000, 10_000, 100_000}
	if os.Getenv("ENDBLOCK_BENCH_QUICK") != "" {
		sizes = []int{200, 1_000}
	}
	for _, live := range sizes {
		b.Run(fmt.Sprintf("leases=%d", live), func(b *testing.B) {
			w := endBlockWorlds[live]
			if w == nil {
				w = newEndBlockWorld(b, live)
				endBlockWorlds[live] = w
			}
			w.c.Rebind(b)
			w.t = b
			w.measure(b)
		})
	}
}

func newEndBlockWorld(b *testing.B, live int) *endBlockWorld {
	c := apptest.New(b, 3)
	w := &endBlockWorld{benchMarket: newBenchMarket(b, c), c: c}
	c.Do(time.Second, func(ctx sdk.Context) {
		p := markettypes.DefaultParams()
		p.StartTimeout = 1_000_000
		p.MaxSweepsPerBlock = 2_000
		if _, err := w.market.UpdateParams(ctx, &markettypes.MsgUpdateParams{Authority: c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			b.Fatal(err)
		}
		// The bench's provider never attests: its leases must not close for silence.
		setLiveness(b, ctx, c, func(p *providertypes.Params) { p.AttestGrace = 1_000_000 })
	})
	// Pipelined: a batch is created in one block, its auctions close in
	// the next, and it is started in the one after. 5 GPN of deposit
	// at 1,000 ugpn/h keeps these leases running for 200 days.
	const batch = 1_000
	type pending struct {
		height int64
		dseqs  []uint64
	}
	var created []pending
	for done := 0; done < live || len(created) > 0; {
		var starting []uint64
		if len(created) > 0 && created[0].height <= c.Height-1 { // created two blocks before this one
			starting, created = created[0].dseqs, created[1:]
		}
		var dseqs []uint64
		c.Do(time.Second, func(ctx sdk.Context) {
			for range min(batch, live-done) {
				dseqs = append(dseqs, w.open(ctx, sdk.NewInt64Coin("ugpn", 5_000_000), 1_000))
			}
			w.start(ctx, starting)
		})
		done += len(dseqs)
		if len(dseqs) > 0 {
			created = append(created, pending{c.Height, dseqs})
		}
	}
	n := 0
	if err := c.App.MarketKeeper.Leases.Walk(c.Query(), nil, func(_ marketkeeper.BidKey, l markettypes.Lease) (bool, error) {
		if l.State == markettypes.LEASE_STATE_ACTIVE {
			n++
		}
		return false, nil
	}); err != nil {
		b.Fatal(err)
	}
	if n != live {
		b.Fatalf("%d running leases, want %d", n, live)
	}
	return w
}

// measure sets up the run's 5 closing auctions and 20 × 5 accounts that run
// dry one block after another, times both EndBlocks on branches of the
// first such block, then 20 whole blocks, and closes what it opened so the
// next run finds the same number of running leases.
func (w *endBlockWorld) measure(b *testing.B) {
	c := w.c
	const blocks, perBlock = 20, 5
	// At 1,000,000 ugpn/s (3.6e9/h) a deposit of 5+k GPN pays for 5+k
	// seconds; the account is due at its first unpaid second, 6+k s after
	// the start: the measured block comes 6 s after the start.
	var dry []uint64
	c.Do(time.Second, func(ctx sdk.Context) {
		for k := range blocks {
			for range perBlock {
				dry = append(dry, w.open(ctx, sdk.NewInt64Coin("ugpn", int64(5+k)*1_000_000), 3_600_000_000))
			}
		}
	})
	c.NextBlock(time.Second)
	c.Do(time.Second, func(ctx sdk.Context) { w.start(ctx, dry) })
	for range 4 {
		c.NextBlock(time.Second)
	}
	var auctions []uint64
	c.Do(time.Second, func(ctx sdk.Context) {
		for range perBlock {
			auctions = append(auctions, w.open(ctx, sdk.NewInt64Coin("ugpn", 5_000_000), 1_000))
		}
	})

	h, tm := c.Height+1, c.Time.Add(time.Second)
	ctx := c.Query().WithHeaderInfo(header.Info{Height: h, Time: tm, ChainID: apptest.ChainID}).WithBlockHeight(h).WithBlockTime(tm)
	// The block does what it says: 5 auctions close, 5 accounts run dry.
	{
		cache, _ := ctx.CacheContext()
		if got := w.dueAuctions(cache, h); got != perBlock {
			b.Fatalf("%d auctions due, want %d", got, perBlock)
		}
		if got := w.dueAccounts(cache, tm); got != perBlock {
			b.Fatalf("%d accounts due, want %d", got, perBlock)
		}
		if err := c.App.MarketKeeper.EndBlocker(cache); err != nil {
			b.Fatal(err)
		}
		if err := c.App.EscrowKeeper.EndBlocker(cache); err != nil {
			b.Fatal(err)
		}
		if a, d := w.dueAuctions(cache, h), w.dueAccounts(cache, tm); a != 0 || d != 0 {
			b.Fatalf("after EndBlock %d auctions and %d accounts still due", a, d)
		}
	}
	var market, escrow time.Duration
	b.ResetTimer()
	for range b.N {
		cache, _ := ctx.CacheContext()
		t0 := time.Now()
		if err := c.App.MarketKeeper.EndBlocker(cache); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.App.EscrowKeeper.EndBlocker(cache); err != nil {
			b.Fatal(err)
		}
		market += t1.Sub(t0)
		escrow += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(market.Nanoseconds())/float64(b.N), "market-ns/op")
	b.ReportMetric(float64(escrow.Nanoseconds())/float64(b.N), "escrow-ns/op")

	var whole time.Duration
	for range blocks {
		t0 := time.Now()
		c.Do(time.Second, func(ctx sdk.Context) {
			for range perBlock {
				auctions = append(auctions, w.open(ctx, sdk.NewInt64Coin("ugpn", 5_000_000), 1_000))
			}
		})
		whole += time.Since(t0)
	}
	b.ReportMetric(float64(whole.Nanoseconds())/blocks, "ns/block")
	if left := w.dueAccounts(c.Query(), c.Time.Add(time.Hour)); left != 0 {
		b.Fatalf("%d of the run's accounts did not run dry", left)
	}
	w.closeAll(auctions)
}

// dueAuctions counts the order-queue entries due at or before height h:
// auctions, in this world (its orders expire long after).
func (w *endBlockWorld) dueAuctions(ctx sdk.Context, h int64) int {
	n := 0
	rng := new(collections.Range[collections.Pair[int64, marketkeeper.OrderKey]]).
		EndExclusive(collections.PairPrefix[int64, marketkeeper.OrderKey](h + 1))
	if err := w.c.App.MarketKeeper.OrderQueue.Walk(ctx, rng, func(collections.Pair[int64, marketkeeper.OrderKey]) (bool, error) {
		n++
		return false, nil
	}); err != nil {
		panic(err)
	}
	return n
}

// dueAccounts counts the escrow accounts that run dry at or before t.
func (w *endBlockWorld) dueAccounts(ctx sdk.Context, t time.Time) int {
	n := 0
	rng := new(collections.Range[collections.Pair[time.Time, escrowkeeper.AccountKey]]).
		EndExclusive(collections.PairPrefix[time.Time, escrowkeeper.AccountKey](t.Add(time.Nanosecond)))
	if err := w.c.App.EscrowKeeper.DepletionQueue.Walk(ctx, rng, func(collections.Pair[time.Time, escrowkeeper.AccountKey]) (bool, error) {
		n++
		return false, nil
	}); err != nil {
		panic(err)
	}
	return n
}
