package main

import (
	"context"
	"fmt"
	cmttypes "github.com/cometbft/cometbft/types"
	"sync"
	"time"

	"github.com/cosmos/cosmos-sdk/client/tx"
	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/sdl"
	"github.com/gpunet/gpunet/tenant"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// throughput funds `accounts` fresh accounts, pre-signs perAccount bank
// sends and then as many create-deployments from each (so sequence numbers
// never serialise the load), broadcasts each kind as fast as the node takes
// them and reports committed transactions per second from block times.
func (b *bench) throughput(ctx context.Context, accounts, perAccount int) ([]Figure, error) {
	tc, err := b.tenantClient()
	if err != nil {
		return nil, err
	}
	enc, err := chain.NewEncoding()
	if err != nil {
		return nil, err
	}
	kr := keyring.NewInMemory(enc.Codec)
	addrs := make([]sdk.AccAddress, accounts)
	var fund []sdk.Msg
	for i := range addrs {
		rec, _, err := kr.NewMnemonic(fmt.Sprintf("load%d", i), keyring.English, sdk.FullFundraiserPath, keyring.DefaultBIP39Passphrase, hd.Secp256k1)
		if err != nil {
			return nil, err
		}
		addrs[i], _ = rec.GetAddress()
		fund = append(fund, banktypes.NewMsgSend(tc.Owner, addrs[i], sdk.NewCoins(sdk.NewInt64Coin("ugpn", loadFunding(perAccount)))))
	}
	if _, err := tc.SendTx(ctx, fund...); err != nil {
		return nil, fmt.Errorf("fund load accounts: %w", err)
	}
	d, err := sdl.Parse([]byte(jobSDL))
	if err != nil {
		return nil, err
	}
	hash, _ := d.Manifest.Hash()
	seqs := make([]uint64, accounts)
	nums := make([]uint64, accounts)
	for i, a := range addrs {
		if nums[i], seqs[i], err = tc.Ctx.AccountRetriever.GetAccountNumberSequence(tc.Ctx, a); err != nil {
			return nil, err
		}
	}
	kinds := []struct {
		name string
		gas  uint64
		msg  func(i int) sdk.Msg
	}{
		{"bank send", 120_000, func(i int) sdk.Msg {
			return banktypes.NewMsgSend(addrs[i], addrs[(i+1)%accounts], sdk.NewCoins(sdk.NewInt64Coin("ugpn", 1)))
		}},
		{"create-deployment", 180_000, func(i int) sdk.Msg {
			return &markettypes.MsgCreateDeployment{Owner: addrs[i].String(), Groups: d.Groups, ManifestHash: hash,
				Deposit: sdk.NewInt64Coin("ugpn", loadDeposit), BidWindow: 600}
		}},
	}
	var figs []Figure
	var tps []float64
	for _, k := range kinds {
		// Pre-sign every transaction first.
		txs := make([][][]byte, accounts)
		for i := range addrs {
			for j := 0; j < perAccount; j++ {
				f := tx.Factory{}.WithChainID(b.nw.Config.ChainID).WithKeybase(kr).WithTxConfig(enc.TxConfig).
					WithAccountNumber(nums[i]).WithSequence(seqs[i]).WithSignMode(signing.SignMode_SIGN_MODE_DIRECT).
					WithGas(k.gas).WithFees(fmt.Sprintf("%dugpn", loadFee(k.gas)))
				txb, err := f.BuildUnsignedTx(k.msg(i))
				if err != nil {
					return nil, err
				}
				if err := tx.Sign(ctx, f, fmt.Sprintf("load%d", i), txb, true); err != nil {
					return nil, err
				}
				bz, err := enc.TxConfig.TxEncoder()(txb.GetTx())
				if err != nil {
					return nil, err
				}
				txs[i] = append(txs[i], bz)
				seqs[i]++
			}
		}
		rpc, err := tc.Ctx.GetNode()
		if err != nil {
			return nil, err
		}
		st, err := rpc.Status(ctx)
		if err != nil {
			return nil, err
		}
		from := st.SyncInfo.LatestBlockHeight + 1
		var wg sync.WaitGroup
		errs := make(chan error, accounts)
		for i := range addrs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				for _, bz := range txs[i] {
					res, err := rpc.BroadcastTxSync(ctx, bz)
					if err != nil {
						errs <- err
						return
					}
					if res.Code != 0 {
						errs <- fmt.Errorf("%s refused: code %d: %s", k.name, res.Code, res.Log)
						return
					}
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		ours := map[string]bool{}
		for _, acc := range txs {
			for _, bz := range acc {
				ours[string(cmttypes.Tx(bz).Hash())] = true
			}
		}
		if err := <-errs; err != nil {
			return nil, err
		}
		// Count committed txs block by block until all are in.
		want, got := accounts*perAccount, 0
		var first, last time.Time
		deadline := time.Now().Add(3 * time.Minute)
		for h := from; got < want; {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s: %d of %d committed", k.name, got, want)
			}
			hh := h
			blk, err := rpc.Block(ctx, &hh)
			if err != nil {
				time.Sleep(300 * time.Millisecond)
				continue
			}
			n := 0 // the provider daemon's bids share these blocks: count only the load
			for _, t := range blk.Block.Txs {
				if ours[string(t.Hash())] {
					n++
				}
			}
			if n > 0 && got == 0 {
				prev := hh - 1
				pb, err := rpc.Block(ctx, &prev)
				if err != nil {
					return nil, err
				}
				first = pb.Block.Time
			}
			got += n
			last = blk.Block.Time
			h++
		}
		rate := float64(want) / last.Sub(first).Seconds()
		tps = append(tps, rate)
		figs = append(figs, Figure{Name: fmt.Sprintf("network: committed %s tx/s (%d accounts × %d pre-signed)", k.name, accounts, perAccount), Value: rate, Unit: "tx/s"})
	}
	figs = append(figs, Figure{Name: "network: committed create-deployment ÷ bank send tx/s", Value: tps[1] / tps[0], Unit: "×",
		Note: "one load client on the same 2 cores as the node; see the execution figure for the chain's own cost"})
	return figs, nil
}

// The throughput load's deposit per deployment and the fee per transaction
// (gas × the node's minimum price of 0.025ugpn, rounded up).
const loadDeposit = 5_000_000

func loadFee(gas uint64) int64 { return int64(gas/40 + 1) }

// loadFunding is what one load account needs for its bank sends (1 ugpn
// each) and create-deployments, with a fifth to spare: enough, and small
// enough that the tenant account can fund every load account.
func loadFunding(perAccount int) int64 {
	need := int64(perAccount) * (1 + loadFee(120_000) + loadDeposit + loadFee(180_000))
	return need + need/5
}

var _ = tenant.NewStore
