package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestProviderTransactionsLandWithLittleGasHeadroom: a provider that runs
// its daemon with gas_adjustment 1.1 still registers, bids, starts and
// closes a lease: the daemon's simulation counts the fee deduction the chain
// charges a paying transaction (about 16k gas; a simulation without a fee
// came out that much short, more than a tenth of a bid's gas, so such a
// provider's bids ran out of gas and paid their fees for nothing). Every
// transaction the provider's account sent succeeded and asked for no more
// gas than its simulation said, with the headroom it was given. (The job
// runs a few blocks: a lease closed in the block after it started is
// simulated with nothing owed yet, so without the payment the close then
// makes; gas_adjustment is that headroom.)
func TestProviderTransactionsLandWithLittleGasHeadroom(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000",
		Edits: map[string]string{"gas_adjustment: 1.4": "gas_adjustment: 1.1"}})
	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "3", "-interval", "2s"`, prov.gpuModel)), "--follow", "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if len(res.Leases) != 1 || len(res.Closed) != 1 || res.Closed[0].Reason != "workload_completed" {
		t.Fatalf("leases %+v, closed %+v: want one lease, closed as workload_completed", res.Leases, res.Closed)
	}
	prov.waitLog(10*time.Second, "lease closed", "reason=workload_completed")

	chain := newChainReader(t, nw.Nodes[0])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// By fee payer: a transaction that failed in its block (out of gas,
	// say) keeps only its ante handler's events, not the message's.
	found, err := chain.rpc.TxSearch(ctx, fmt.Sprintf("tx.fee_payer='%s'", prov.addr), false, nil, nil, "asc")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, tx := range found.Txs {
		r := tx.TxResult
		var actions []string
		for _, ev := range r.Events {
			for _, a := range ev.Attributes {
				if ev.Type == "message" && a.Key == "action" {
					kinds[a.Value] = true
					actions = append(actions, a.Value)
				}
			}
		}
		t.Logf("%v at height %d: code %d, gas wanted %d, used %d", actions, tx.Height, r.Code, r.GasWanted, r.GasUsed)
		if r.Code != 0 {
			t.Errorf("%v at height %d: code %d (%s): %s", actions, tx.Height, r.Code, r.Codespace, r.Log)
			continue
		}
		if r.GasUsed > r.GasWanted || float64(r.GasWanted) > 1.1*float64(r.GasUsed)+5_000 {
			t.Errorf("%v at height %d: gas wanted %d, used %d: want its simulation with a tenth more", actions, tx.Height, r.GasWanted, r.GasUsed)
		}
	}
	for _, want := range []string{"/gpunet.provider.v1.MsgRegisterProvider", "/gpunet.market.v1.MsgCreateBid", "/gpunet.market.v1.MsgStartLease", "/gpunet.market.v1.MsgCloseLease"} {
		if !kinds[want] {
			t.Errorf("no %s among the provider's transactions %v", want, kinds)
		}
	}
}
