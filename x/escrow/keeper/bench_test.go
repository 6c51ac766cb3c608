package keeper_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// BenchmarkEndBlock measures x/escrow's EndBlock with 1k and 100k live
// accounts of which 5 run dry in the measured block. The cost must follow
// the 5, not the live count (ARCHITECTURE §6: 100k/1k ≤ 1.1).
func BenchmarkEndBlock(b *testing.B) {
	for _, live := range benchSizes() {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			f := newFixture(b)
			// Long-lived accounts: a year of runway.
			for i := range live {
				id := types.AccountID{Owner: f.addr(i % 3), Dseq: uint64(i + 1)}
				if err := f.k.CreateAccount(f.ctx, id, f.addrs[i%3], coin(400_000)); err != nil {
					b.Fatal(err)
				}
				if err := f.k.OpenPayment(f.ctx, types.PaymentID{Account: id, Gseq: 1, Oseq: 1, Provider: f.addr(3 + i%3)}, sdkmath.LegacyNewDecWithPrec(45, 3)); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					f.commit() // keep the working tree small, as blocks do
				}
			}
			// Five that run dry within the next minute.
			for i := range 5 {
				id := types.AccountID{Owner: f.addr(0), Dseq: uint64(live + 1 + i)}
				if err := f.k.CreateAccount(f.ctx, id, f.addrs[0], coin(30)); err != nil {
					b.Fatal(err)
				}
				if err := f.k.OpenPayment(f.ctx, types.PaymentID{Account: id, Gseq: 1, Oseq: 1, Provider: f.addr(4)}, rate3600); err != nil {
					b.Fatal(err)
				}
			}
			f.commit()
			info := f.ctx.HeaderInfo()
			info.Time = info.Time.Add(time.Minute)
			info.Height++
			ctx := f.ctx.WithHeaderInfo(info).WithBlockTime(info.Time)
			b.ResetTimer()
			for range b.N {
				cache, _ := ctx.CacheContext()
				if err := f.k.EndBlocker(cache); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			f.market.depleted = nil
			cache, _ := ctx.CacheContext()
			f.ctx = cache
			if err := f.k.EndBlocker(cache); err != nil {
				b.Fatal(err)
			}
			if len(f.market.depleted) != 5 {
				b.Fatalf("closed %d accounts, want 5", len(f.market.depleted))
			}
		})
	}
}

// benchSizes are the live-account counts; ESCROW_BENCH_QUICK=1 uses a small
// second size for a fast check of the harness.
func benchSizes() []int {
	if os.Getenv("ESCROW_BENCH_QUICK") != "" {
		return []int{1_000, 10_000}
	}
	return []int{1_000, 10_000, 100_000}
}
