package keeper_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"testing"
	"time"

	"cosmossdk.io/core/header"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	"github.com/gpunet/gpunet/x/market/types"
	providerkeeper "github.com/gpunet/gpunet/x/provider/keeper"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// BenchmarkMarketEndBlock measures x/market's EndBlock with many live
// (pending) leases while 5 auctions close in the measured block. Leases are
// built 200 per block through the real message servers.
func BenchmarkMarketEndBlock(b *testing.B) {
	sizes := []int{1_000, 10_000, 100_000}
	if os.Getenv("MARKET_BENCH_QUICK") != "" {
		sizes = []int{200, 1_000}
	}
	for _, live := range sizes {
		b.Run(fmt.Sprintf("leases=%d", live), func(b *testing.B) {
			c := apptest.New(b, 3)
			market := marketkeeper.NewMsgServerImpl(c.App.MarketKeeper)
			tenant, prov := c.Accounts[0], c.Accounts[1]
			c.Do(time.Second, func(ctx sdk.Context) {
				p := types.DefaultParams()
				p.StartTimeout = 1_000_000 // keep the leases pending and live
				p.MaxSweepsPerBlock = 1_000
				if _, err := market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: c.App.MarketKeeper.Authority(), Params: p}); err != nil {
					b.Fatal(err)
				}
				if _, err := providerkeeper.NewMsgServerImpl(c.App.ProviderKeeper).RegisterProvider(ctx, &providertypes.MsgRegisterProvider{
					Owner: prov.String(), HostUri: "https://p.example.com", TlsCertSha256: hex64(),
					Attributes: []providertypes.Attribute{{Key: "region", Value: "eu"}},
					Gpus:       []providertypes.GPU{{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Count: 8}},
					Capacity:   providertypes.Capacity{CpuMillis: 64_000, MemoryBytes: 256 << 30, StorageBytes: 1 << 40},
					Bond:       sdk.NewInt64Coin(denom, 600_000_000),
				}); err != nil {
					b.Fatal(err)
				}
			})
			hash := sha256.Sum256([]byte("m"))
			deploy := func(ctx sdk.Context) {
				res, err := market.CreateDeployment(ctx, &types.MsgCreateDeployment{
					Owner: tenant.String(), Groups: []types.GroupSpec{group()}, ManifestHash: hash[:],
					Deposit: sdk.NewInt64Coin(denom, 5_000_000), BidWindow: 1,
				})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := market.CreateBid(ctx, &types.MsgCreateBid{
					Provider: prov.String(), Order: types.OrderID{Owner: tenant.String(), Dseq: res.Dseq, Gseq: 1, Oseq: 1},
					Price: sdk.NewDecCoin(denom, sdkmath.NewInt(1_000)), Deposit: sdk.NewInt64Coin(denom, 1_000_000),
				}); err != nil {
					b.Fatal(err)
				}
			}
			for done := 0; done < live; done += 200 {
				c.Do(time.Second, func(ctx sdk.Context) {
					for range min(200, live-done) {
						deploy(ctx)
					}
				})
			}
			c.NextBlock(time.Second) // the last auctions close
			// Five auctions that close in the measured block.
			c.Do(time.Second, func(ctx sdk.Context) {
				for range 5 {
					deploy(ctx)
				}
			})
			h, tm := c.Height+1, c.Time.Add(time.Second)
			ctx := c.Query().WithHeaderInfo(header.Info{Height: h, Time: tm, ChainID: apptest.ChainID}).WithBlockHeight(h)
			b.ResetTimer()
			for range b.N {
				cache, _ := ctx.CacheContext()
				if err := c.App.MarketKeeper.EndBlocker(cache); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// A whole block through the app (FinalizeBlock with every module's
			// Begin/EndBlock, then Commit) with the live leases in state; the
			// first also closes the five auctions.
			const blocks = 20
			t0 := time.Now()
			for range blocks {
				c.NextBlock(time.Second)
			}
			b.ReportMetric(float64(time.Since(t0).Nanoseconds())/blocks, "ns/block")
		})
	}
}
