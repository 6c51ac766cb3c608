package app_test

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	simtestutil "github.com/cosmos/cosmos-sdk/testutil/sims"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/testutil/apptest"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providerkeeper "github.com/gpunet/gpunet/x/provider/keeper"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// txsPerBlock is the block size of the execution benchmarks.
const txsPerBlock = 100

// BenchmarkTxExecution measures the execution cost of full signed
// transactions delivered through FinalizeBlock (ante handler, signature
// check, fees, message, events) in blocks of 100: bank send, create-
// deployment (one GPU group) and create-bid. ns/tx is per transaction;
// gas/tx is the gas each used. The create-deployment ÷ bank-send ratio of
// execution throughput is the inverse ratio of their ns/tx.
//
// The interleaved sub-benchmark runs the three kinds on three chains in
// turn, one block of each per round (the first kind rotating), and reports
// the throughput ratios of its own rounds: on a shared machine whose speed
// drifts over seconds, blocks run side by side see the same drift, where
// separate sub-benchmarks a minute apart do not.
func BenchmarkTxExecution(b *testing.B) {
	kinds := []string{"bank-send", "create-deployment", "create-bid"}
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			r := newTxRunner(b, kind)
			for done := 0; done < b.N; done += txsPerBlock {
				b.StopTimer()
				r.block(b)
				b.StartTimer()
			}
			b.ReportMetric(float64(r.elapsed.Nanoseconds())/float64(r.n), "ns/tx")
			b.ReportMetric(float64(r.gas)/float64(r.n), "gas/tx")
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		var rs []*txRunner
		for _, kind := range kinds {
			rs = append(rs, newTxRunner(b, kind))
		}
		b.ResetTimer()
		for round := 0; round*txsPerBlock < b.N; round++ {
			for i := range rs {
				rs[(round+i)%len(rs)].block(b)
			}
		}
		perTx := func(r *txRunner) float64 { return float64(r.elapsed.Nanoseconds()) / float64(r.n) }
		b.ReportMetric(perTx(rs[0])/perTx(rs[1]), "deployment-ratio")
		b.ReportMetric(perTx(rs[0])/perTx(rs[2]), "bid-ratio")
	})
}

// txRunner delivers blocks of one kind of signed transaction to its own
// chain, timing only FinalizeBlock and Commit.
type txRunner struct {
	kind    string
	c       *apptest.Chain
	seqs    []uint64
	r       *rand.Rand
	elapsed time.Duration
	gas, n  int64
}

// benchBidder is the account of the provider that sends the bids; the
// first txsPerBlock accounts send everything else.
const benchBidder = txsPerBlock + 1

func newTxRunner(b *testing.B, kind string) *txRunner {
	c := apptest.New(b, benchBidder+1)
	if kind == "create-bid" {
		c.Do(time.Second, func(ctx sdk.Context) { registerBenchProvider(b, ctx, c, c.Accounts[benchBidder]) })
	}
	return &txRunner{kind: kind, c: c, seqs: make([]uint64, len(c.Accounts)), r: rand.New(rand.NewSource(1))}
}

func (t *txRunner) sign(b *testing.B, i int, msg sdk.Msg) []byte {
	c := t.c
	acc := c.App.AccountKeeper.GetAccount(c.Query(), c.Accounts[i])
	tx, err := simtestutil.GenSignedMockTx(t.r, c.App.TxConfig(), []sdk.Msg{msg},
		sdk.NewCoins(sdk.NewInt64Coin("ugpn", 10_000)), 400_000, apptest.ChainID,
		[]uint64{acc.GetAccountNumber()}, []uint64{t.seqs[i]}, []cryptotypes.PrivKey{c.Keys[i]}...)
	if err != nil {
		b.Fatal(err)
	}
	t.seqs[i]++
	bz, err := c.App.TxConfig().TxEncoder()(tx)
	if err != nil {
		b.Fatal(err)
	}
	return bz
}

// benchDeployment has the longest bid window: no auction closes while the
// benchmark runs, so a block's time is its transactions' (auctions
// closing are BenchmarkEndBlock's figure).
func benchDeployment(owner sdk.AccAddress) *markettypes.MsgCreateDeployment {
	hash := sha256.Sum256([]byte("manifest"))
	return &markettypes.MsgCreateDeployment{Owner: owner.String(), Groups: []markettypes.GroupSpec{benchGroup()},
		ManifestHash: hash[:], Deposit: sdk.NewInt64Coin("ugpn", 5_000_000), BidWindow: markettypes.DefaultParams().MaxBidWindow}
}

// block builds and signs one block of txsPerBlock transactions (the bids'
// orders come from a block before, untimed), then delivers it, timed.
func (t *txRunner) block(b *testing.B) {
	c := t.c
	var txs [][]byte
	switch t.kind {
	case "bank-send":
		for i := range txsPerBlock {
			txs = append(txs, t.sign(b, i, banktypes.NewMsgSend(c.Accounts[i], c.Accounts[(i+1)%txsPerBlock], sdk.NewCoins(sdk.NewInt64Coin("ugpn", 1_000)))))
		}
	case "create-deployment":
		for i := range txsPerBlock {
			txs = append(txs, t.sign(b, i, benchDeployment(c.Accounts[i])))
		}
	case "create-bid":
		var orders [][]byte
		for i := range txsPerBlock {
			orders = append(orders, t.sign(b, i, benchDeployment(c.Accounts[i])))
		}
		res := c.DeliverTxs(time.Second, orders)
		for i, r := range res {
			if r.Code != 0 {
				b.Fatalf("deployment %d: %s", i, r.Log)
			}
			dseq := uint64(0)
			for _, ev := range r.Events {
				if msg, err := chain.ParseEvent(ev); err == nil {
					if e, ok := msg.(*markettypes.EventDeploymentCreated); ok {
						dseq = e.Dseq
					}
				}
			}
			txs = append(txs, t.sign(b, benchBidder, &markettypes.MsgCreateBid{
				Provider: c.Accounts[benchBidder].String(),
				Order:    markettypes.OrderID{Owner: c.Accounts[i].String(), Dseq: dseq, Gseq: 1, Oseq: 1},
				Price:    sdk.NewDecCoin("ugpn", sdkmath.NewInt(1_000)), Deposit: sdk.NewInt64Coin("ugpn", 1_000_000),
			}))
		}
	}
	b.StartTimer()
	t0 := time.Now()
	res := c.DeliverTxs(time.Second, txs)
	t.elapsed += time.Since(t0)
	b.StopTimer()
	for i, r := range res {
		if r.Code != 0 {
			b.Fatalf("%s tx %d: code %d: %s", t.kind, i, r.Code, r.Log)
		}
		t.gas += r.GasUsed
		t.n++
	}
}

// registerBenchProvider registers addr as an eu provider of eight H100s
// that matches benchGroup, through the message server.
func registerBenchProvider(t testing.TB, ctx sdk.Context, c *apptest.Chain, addr sdk.AccAddress) {
	if _, err := providerkeeper.NewMsgServerImpl(c.App.ProviderKeeper).RegisterProvider(ctx, benchProvider(addr)); err != nil {
		t.Fatal(err)
	}
}

func benchProvider(addr sdk.AccAddress) *providertypes.MsgRegisterProvider {
	return &providertypes.MsgRegisterProvider{
		Owner: addr.String(), HostUri: "https://p.example.com", TlsCertSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Attributes: []providertypes.Attribute{{Key: "region", Value: "eu"}},
		Gpus:       []providertypes.GPU{{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Count: 8}},
		Capacity:   providertypes.Capacity{CpuMillis: 64_000, MemoryBytes: 256 << 30, StorageBytes: 1 << 40},
		Bond:       sdk.NewInt64Coin("ugpn", 600_000_000),
	}
}

// benchMarket drives x/market through its message server for the
// benchmarks: one tenant, one registered provider (benchProvider) bidding
// on every order.
type benchMarket struct {
	t            testing.TB
	chain        *apptest.Chain
	market       markettypes.MsgServer
	tenant, prov sdk.AccAddress
	hash         [32]byte
}

// newBenchMarket registers the chain's second account as the provider, in
// a block of its own.
func newBenchMarket(t testing.TB, c *apptest.Chain) *benchMarket {
	m := &benchMarket{t: t, chain: c, market: marketkeeper.NewMsgServerImpl(c.App.MarketKeeper),
		tenant: c.Accounts[0], prov: c.Accounts[1], hash: sha256.Sum256([]byte("manifest"))}
	c.Do(time.Second, func(ctx sdk.Context) { registerBenchProvider(t, ctx, c, m.prov) })
	return m
}

// open creates a one-group deployment with deposit and the provider's bid at
// price ugpn/h; the auction closes in the next block.
func (m *benchMarket) open(ctx sdk.Context, deposit sdk.Coin, price int64) uint64 {
	res, err := m.market.CreateDeployment(ctx, &markettypes.MsgCreateDeployment{Owner: m.tenant.String(),
		Groups: []markettypes.GroupSpec{benchGroup()}, ManifestHash: m.hash[:], Deposit: deposit, BidWindow: 1})
	if err != nil {
		m.t.Fatal(err)
	}
	if _, err := m.market.CreateBid(ctx, &markettypes.MsgCreateBid{Provider: m.prov.String(),
		Order: markettypes.OrderID{Owner: m.tenant.String(), Dseq: res.Dseq, Gseq: 1, Oseq: 1},
		Price: sdk.NewDecCoin("ugpn", sdkmath.NewInt(price)), Deposit: sdk.NewInt64Coin("ugpn", 1_000_000)}); err != nil {
		m.t.Fatal(err)
	}
	return res.Dseq
}

// start starts the provider's pending leases of dseqs.
func (m *benchMarket) start(ctx sdk.Context, dseqs []uint64) {
	for _, d := range dseqs {
		id := markettypes.BidID{Order: markettypes.OrderID{Owner: m.tenant.String(), Dseq: d, Gseq: 1, Oseq: 1}, Provider: m.prov.String()}
		if _, err := m.market.StartLease(ctx, &markettypes.MsgStartLease{Provider: m.prov.String(), Lease: id}); err != nil {
			m.t.Fatal(err)
		}
	}
}

// closeAll closes the tenant's deployments dseqs in one block.
func (m *benchMarket) closeAll(dseqs []uint64) {
	m.chain.Do(time.Second, func(ctx sdk.Context) {
		for _, d := range dseqs {
			if _, err := m.market.CloseDeployment(ctx, &markettypes.MsgCloseDeployment{Owner: m.tenant.String(), Dseq: d}); err != nil {
				m.t.Fatal(err)
			}
		}
	})
}

func benchGroup() markettypes.GroupSpec {
	return markettypes.GroupSpec{
		Name:         "train",
		Requirements: []providertypes.Attribute{{Key: "region", Value: "eu"}},
		Resources: []markettypes.ResourceUnit{{
			Count: 1, CpuMillis: 8_000, MemoryBytes: 32 << 30, StorageBytes: 100 << 30,
			Gpu: markettypes.GPUSpec{Units: 1, Models: []string{"h100"}, MinMemoryMib: 40_000},
		}},
		MaxPrice: sdk.NewDecCoin("ugpn", sdkmath.NewInt(5_000_000_000)),
	}
}

// BenchmarkAttestGas measures the gas of one provider's attestation
// (MsgAttest, a full signed transaction through FinalizeBlock) with 1, 300
// and 1,000 active leases, all running, and with 1,000 of which 10 are
// down (their payments pause the first time). Flat in the leases that run:
// gas/tx is what the transaction used.
func BenchmarkAttestGas(b *testing.B) {
	for _, c := range []struct {
		leases, down int
	}{{1, 0}, {300, 0}, {1_000, 0}, {1_000, 10}} {
		b.Run(fmt.Sprintf("leases=%d/down=%d", c.leases, c.down), func(b *testing.B) {
			chain := apptest.New(b, 3)
			m := newBenchMarket(b, chain)
			chain.Do(time.Second, func(ctx sdk.Context) {
				p := markettypes.DefaultParams()
				p.MaxSweepsPerBlock = 2_000
				if _, err := m.market.UpdateParams(ctx, &markettypes.MsgUpdateParams{Authority: chain.App.MarketKeeper.Authority(), Params: p}); err != nil {
					b.Fatal(err)
				}
				setLiveness(b, ctx, chain, func(p *providertypes.Params) {
					p.AttestGrace = 1_000_000
					p.MaxDownAttestations = 1_000_000 // the down leases stay down, paused, every run alike
				})
			})
			var dseqs []uint64
			chain.Do(time.Second, func(ctx sdk.Context) {
				for range c.leases {
					dseqs = append(dseqs, m.open(ctx, sdk.NewInt64Coin("ugpn", 5_000_000), 1_000))
				}
			})
			chain.NextBlock(time.Second) // the auctions close
			chain.Do(time.Second, func(ctx sdk.Context) { m.start(ctx, dseqs) })
			msg := &markettypes.MsgAttest{Provider: m.prov.String(), Leases: uint32(c.leases)}
			for _, d := range dseqs[:c.down] {
				msg.Down = append(msg.Down, markettypes.OrderID{Owner: m.tenant.String(), Dseq: d, Gseq: 1, Oseq: 1})
			}
			r := rand.New(rand.NewSource(1))
			var gas, n int64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				acc := chain.App.AccountKeeper.GetAccount(chain.Query(), m.prov)
				tx, err := simtestutil.GenSignedMockTx(r, chain.App.TxConfig(), []sdk.Msg{msg},
					sdk.NewCoins(sdk.NewInt64Coin("ugpn", 10_000)), 2_000_000, apptest.ChainID,
					[]uint64{acc.GetAccountNumber()}, []uint64{acc.GetSequence()}, []cryptotypes.PrivKey{chain.Keys[1]}...)
				if err != nil {
					b.Fatal(err)
				}
				bz, err := chain.App.TxConfig().TxEncoder()(tx)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res := chain.DeliverTxs(time.Second, [][]byte{bz})
				b.StopTimer()
				if res[0].Code != 0 {
					b.Fatalf("attest: code %d: %s", res[0].Code, res[0].Log)
				}
				gas += res[0].GasUsed
				n++
				b.StartTimer()
			}
			b.ReportMetric(float64(gas)/float64(n), "gas/tx")
		})
	}
}

// setLiveness sets x/provider's liveness params through its message server.
func setLiveness(t testing.TB, ctx sdk.Context, c *apptest.Chain, edit func(*providertypes.Params)) {
	p, err := c.App.ProviderKeeper.Params.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	edit(&p)
	if _, err := providerkeeper.NewMsgServerImpl(c.App.ProviderKeeper).UpdateParams(ctx, &providertypes.MsgUpdateParams{Authority: c.App.ProviderKeeper.Authority(), Params: p}); err != nil {
		t.Fatal(err)
	}
}
