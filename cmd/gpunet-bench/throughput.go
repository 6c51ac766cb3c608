package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/tx"
	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/gpunet/gpunet/internal/clientcodec"
	"github.com/gpunet/gpunet/internal/coin"
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// loadAttr marks the load's orders and load providers: the bench's own
// provider daemon does not match them, so only the load bids on them.
var loadAttr = providertypes.Attribute{Key: "region", Value: "bench-load"}

// loadAcc is one account sending pre-signed transactions.
type loadAcc struct {
	name     string
	addr     sdk.AccAddress
	num, seq uint64
}

// loadRun is what one kind's load did on chain.
type loadRun struct {
	tps     float64
	gas     float64 // mean gas used per transaction
	created map[string][]uint64
}

// throughput measures committed transactions per second for bank sends,
// create-deployments and create-bids, each pre-signed from `accounts`
// accounts (perAccount each, so sequence numbers never serialise the load)
// and broadcast as fast as the node takes them; each round sends all three
// kinds and the figures are medians over the rounds. The bids come from
// `accounts` registered load providers, one per tenant account, bidding on
// that account's orders.
func (b *bench) throughput(ctx context.Context, accounts, perAccount, rounds int) ([]Figure, error) {
	enc, err := clientcodec.New()
	if err != nil {
		return nil, err
	}
	tc, err := b.client("tenant")
	if err != nil {
		return nil, err
	}
	vc, err := b.client("validator")
	if err != nil {
		return nil, err
	}
	kr := keyring.NewInMemory(enc.Codec)
	newAccs := func(prefix string) ([]*loadAcc, error) {
		out := make([]*loadAcc, accounts)
		for i := range out {
			name := fmt.Sprintf("%s%d", prefix, i)
			rec, _, err := kr.NewMnemonic(name, keyring.English, sdk.FullFundraiserPath, keyring.DefaultBIP39Passphrase, hd.Secp256k1)
			if err != nil {
				return nil, err
			}
			addr, _ := rec.GetAddress()
			out[i] = &loadAcc{name: name, addr: addr}
		}
		return out, nil
	}
	tenants, err := newAccs("load")
	if err != nil {
		return nil, err
	}
	provs, err := newAccs("loadprov")
	if err != nil {
		return nil, err
	}
	var fundT, fundP []sdk.Msg
	for i := range tenants {
		fundT = append(fundT, banktypes.NewMsgSend(tc.Owner, tenants[i].addr, sdk.NewCoins(sdk.NewInt64Coin(coin.Denom, tenantFunding(perAccount*rounds)))))
		fundP = append(fundP, banktypes.NewMsgSend(vc.Owner, provs[i].addr, sdk.NewCoins(sdk.NewInt64Coin(coin.Denom, providerFunding(perAccount*rounds)))))
	}
	if _, err := tc.SendTx(ctx, fundT...); err != nil {
		return nil, fmt.Errorf("fund load accounts: %w", err)
	}
	if _, err := vc.SendTx(ctx, fundP...); err != nil {
		return nil, fmt.Errorf("fund load providers: %w", err)
	}
	for _, a := range append(append([]*loadAcc{}, tenants...), provs...) {
		if a.num, a.seq, err = tc.Ctx.AccountRetriever.GetAccountNumberSequence(tc.Ctx, a.addr); err != nil {
			return nil, err
		}
	}
	rpc, err := tc.Ctx.GetNode()
	if err != nil {
		return nil, err
	}
	l := &loader{b: b, kr: kr, rpc: rpc, enc: enc}
	if _, err := l.push(ctx, "register-provider", provs, 1, 250_000, func(i, _ int) sdk.Msg {
		return &providertypes.MsgRegisterProvider{Owner: provs[i].addr.String(), HostUri: fmt.Sprintf("https://load%d.example.com", i),
			TlsCertSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Attributes:    []providertypes.Attribute{loadAttr},
			Gpus:          []providertypes.GPU{{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Count: 8}},
			Capacity:      providertypes.Capacity{CpuMillis: 64_000, MemoryBytes: 256 << 30, StorageBytes: 1 << 40},
			Bond:          sdk.NewInt64Coin(coin.Denom, loadBond)}
	}); err != nil {
		return nil, err
	}

	d, err := sdl.Parse([]byte(jobSDL))
	if err != nil {
		return nil, err
	}
	hash, _ := d.Manifest.Hash()
	groups := d.Groups
	groups[0].Requirements = append(groups[0].Requirements, loadAttr)
	var bank, deploy, bid []loadRun
	for range rounds {
		r, err := l.push(ctx, "bank send", tenants, perAccount, 120_000, func(i, _ int) sdk.Msg {
			return banktypes.NewMsgSend(tenants[i].addr, tenants[(i+1)%accounts].addr, sdk.NewCoins(sdk.NewInt64Coin(coin.Denom, 1)))
		})
		if err != nil {
			return nil, err
		}
		bank = append(bank, r)
		r, err = l.push(ctx, "create-deployment", tenants, perAccount, 180_000, func(i, _ int) sdk.Msg {
			return &markettypes.MsgCreateDeployment{Owner: tenants[i].addr.String(), Groups: groups, ManifestHash: hash,
				Deposit: sdk.NewInt64Coin(coin.Denom, loadDeposit), BidWindow: 600}
		})
		if err != nil {
			return nil, err
		}
		deploy = append(deploy, r)
		orders := r.created
		r, err = l.push(ctx, "create-bid", provs, perAccount, 180_000, func(i, j int) sdk.Msg {
			owner := tenants[i].addr.String()
			return &markettypes.MsgCreateBid{Provider: provs[i].addr.String(),
				Order: markettypes.OrderID{Owner: owner, Dseq: orders[owner][j], Gseq: 1, Oseq: 1},
				Price: sdk.NewDecCoin(coin.Denom, d.Groups[0].MaxPrice.Amount.TruncateInt()), Deposit: sdk.NewInt64Coin(coin.Denom, loadBidDeposit)}
		})
		if err != nil {
			return nil, err
		}
		bid = append(bid, r)
	}
	med := func(runs []loadRun, f func(loadRun) float64) float64 {
		var v []float64
		for _, r := range runs {
			v = append(v, f(r))
		}
		return percentile(v, .5)
	}
	tps := func(r loadRun) float64 { return r.tps }
	gas := func(r loadRun) float64 { return r.gas }
	note := fmt.Sprintf("median of %d rounds; each round %d accounts × %d pre-signed txs per kind, one load client on the node's machine", rounds, accounts, perAccount)
	var figs []Figure
	for _, k := range []struct {
		name string
		runs []loadRun
	}{{"bank send", bank}, {"create-deployment", deploy}, {"create-bid", bid}} {
		figs = append(figs,
			Figure{Name: "network: committed " + k.name + " tx/s", Value: med(k.runs, tps), Unit: "tx/s", Note: note},
			Figure{Name: "network: gas used per " + k.name + " tx", Value: med(k.runs, gas), Unit: "gas"})
	}
	figs = append(figs,
		Figure{Name: "network: committed create-deployment ÷ bank send tx/s", Value: med(deploy, tps) / med(bank, tps), Unit: "×", Target: "≥ 0.95",
			Note: "one load client on the same 2 cores as the node; the execution figure is the chain's own cost"},
		Figure{Name: "network: committed create-bid ÷ bank send tx/s", Value: med(bid, tps) / med(bank, tps), Unit: "×", Target: "≥ 0.95"})
	return figs, nil
}

type loader struct {
	b   *bench
	kr  keyring.Keyring
	rpc client.CometRPC
	enc clientcodec.Encoding
}

// push pre-signs perAccount transactions msg(i, j) from each account,
// broadcasts them from one goroutine per account, and follows the blocks
// until all are committed: committed tx/s from block times (the load's
// first block's parent to its last block), mean gas, and for
// create-deployments the new dseqs per owner. Any refused or failed
// transaction is an error.
func (l *loader) push(ctx context.Context, kind string, accs []*loadAcc, perAccount int, gas uint64, msg func(i, j int) sdk.Msg) (loadRun, error) {
	enc := l.enc
	txs := make([][][]byte, len(accs))
	ours := map[string]bool{}
	for i, a := range accs {
		for j := range perAccount {
			f := tx.Factory{}.WithChainID(l.b.nw.Config.ChainID).WithKeybase(l.kr).WithTxConfig(enc.TxConfig).
				WithAccountNumber(a.num).WithSequence(a.seq).WithSignMode(signing.SignMode_SIGN_MODE_DIRECT).
				WithGas(gas).WithFees(fmt.Sprintf("%dugpn", loadFee(gas)))
			txb, err := f.BuildUnsignedTx(msg(i, j))
			if err != nil {
				return loadRun{}, err
			}
			if err := tx.Sign(ctx, f, a.name, txb, true); err != nil {
				return loadRun{}, err
			}
			bz, err := enc.TxConfig.TxEncoder()(txb.GetTx())
			if err != nil {
				return loadRun{}, err
			}
			txs[i] = append(txs[i], bz)
			ours[string(cmttypes.Tx(bz).Hash())] = true
			a.seq++
		}
	}
	st, err := l.rpc.Status(ctx)
	if err != nil {
		return loadRun{}, err
	}
	from := st.SyncInfo.LatestBlockHeight + 1
	var wg sync.WaitGroup
	errs := make(chan error, len(accs))
	for i := range accs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for _, bz := range txs[i] {
				res, err := l.rpc.BroadcastTxSync(ctx, bz)
				if err != nil {
					errs <- err
					return
				}
				if res.Code != 0 {
					errs <- fmt.Errorf("%s refused: code %d: %s", kind, res.Code, res.Log)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return loadRun{}, err
	}
	// Follow the blocks until every transaction of the load is in.
	want, got := len(ours), 0
	run := loadRun{created: map[string][]uint64{}}
	var gasSum int64
	var first, last time.Time
	deadline := time.Now().Add(3 * time.Minute)
	for h := from; got < want; {
		if time.Now().After(deadline) {
			return loadRun{}, fmt.Errorf("%s: %d of %d committed after 3 minutes", kind, got, want)
		}
		hh := h
		blk, err := l.rpc.Block(ctx, &hh)
		if err != nil {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		res, err := l.rpc.BlockResults(ctx, &hh)
		if err != nil {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		n := 0 // the provider daemon's transactions share these blocks: count only the load
		for i, t := range blk.Block.Txs {
			if !ours[string(t.Hash())] {
				continue
			}
			r := res.TxsResults[i]
			if r.Code != 0 {
				return loadRun{}, fmt.Errorf("%s failed in block %d: code %d: %s", kind, hh, r.Code, r.Log)
			}
			gasSum += r.GasUsed
			for _, ev := range r.Events {
				if m, err := chain.ParseEvent(ev); err == nil {
					if e, ok := m.(*markettypes.EventDeploymentCreated); ok {
						run.created[e.Owner] = append(run.created[e.Owner], e.Dseq)
					}
				}
			}
			n++
		}
		if n > 0 && got == 0 {
			prev := hh - 1
			pb, err := l.rpc.Block(ctx, &prev)
			if err != nil {
				return loadRun{}, err
			}
			first = pb.Block.Time
		}
		got += n
		last = blk.Block.Time
		h++
	}
	run.tps = float64(want) / last.Sub(first).Seconds()
	run.gas = float64(gasSum) / float64(want)
	return run, nil
}

// The load's deposits, bond and fees (fee = gas × the node's minimum price
// of 0.025ugpn, rounded up).
const (
	loadDeposit    = 5_000_000
	loadBidDeposit = 1_000_000
	loadBond       = 500_000_000
)

func loadFee(gas uint64) int64 { return int64(gas/40 + 1) }

// tenantFunding is what one load account needs for n bank sends (1 ugpn
// each) and n create-deployments, with a fifth to spare.
func tenantFunding(n int) int64 {
	need := int64(n) * (1 + loadFee(120_000) + loadDeposit + loadFee(180_000))
	return need + need/5
}

// providerFunding is what one load provider needs for its bond, its
// registration and n bids, with a fifth to spare.
func providerFunding(n int) int64 {
	need := loadBond + loadFee(250_000) + int64(n)*(loadBidDeposit+loadFee(180_000))
	return need + need/5
}
