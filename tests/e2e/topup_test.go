package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// TestAutoTopUpKeepsALeasePaidToItsLimit: two GPU jobs whose 5 GPN
// deposits last about 9 s at their price. One refills itself from its
// owner (deploy --auto-topup 5 GPN --topup-limit 15 GPN), the other from a
// sponsor who signed a 10 GPN top-up for it. Each runs past its first
// depletion; each payer's balance falls a refill at a time and the
// tenant's not at all for the sponsored one; at the limit each closes as
// insufficient_funds, paid for exactly what was deposited and refilled.
func TestAutoTopUpKeepsALeasePaidToItsLimit(t *testing.T) {
	nw := startNetwork(t, 1)
	chain := newChainReader(t, nw.Nodes[0])
	prov := startProvider(t, nw, "2000000000")
	tenant, sponsor := nw.Keys["tenant"], nw.Keys["validator"]
	h0 := chain.height()
	const deposit, refill = 5_000_000, 5_000_000
	job := writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, prov.gpuModel))

	own, out, err := deploy(t, nw, job, "--deposit", fmt.Sprintf("%dugpn", deposit), "--auto-topup", fmt.Sprintf("%dugpn", refill), "--topup-limit", "15000000ugpn")
	if err != nil {
		t.Fatalf("deploy with --auto-topup: %v\n%s", err, out)
	}
	sponsored, out, err := deploy(t, nw, job, "--deposit", fmt.Sprintf("%dugpn", deposit))
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if out, err := nw.CLI(context.Background(), "tx", "escrow", "auto-topup", tenant, strconv.FormatUint(sponsored.DSeq, 10), "5000000ugpn", "10000000ugpn",
		"--from", "validator", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID, "--fees", "10000ugpn", "--yes"); err != nil {
		t.Fatalf("sponsor's auto-topup: %v\n%s", err, out)
	}

	// Both run to their limits and close as insufficient_funds.
	var bs []block
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		bs = chain.blocks(h0+1, chain.height())
		a, _ := leaseEventHeight(bs, isAccountClosed(tenant, own.DSeq))
		b, _ := leaseEventHeight(bs, isAccountClosed(tenant, sponsored.DSeq))
		if a > 0 && b > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("accounts not closed within 3 minutes (owner-funded at %d, sponsored at %d)", a, b)
		}
	}
	check := func(name string, dseq uint64, payer string, limit int64) {
		t.Helper()
		var refills []*escrowtypes.EventAutoTopUp
		var heights []int64
		for _, b := range bs {
			for _, ev := range b.Events {
				if e, ok := ev.(*escrowtypes.EventAutoTopUp); ok && e.Id.Owner == tenant && e.Id.Dseq == dseq {
					refills = append(refills, e)
					heights = append(heights, b.Height)
				}
			}
		}
		if int64(len(refills))*refill != limit {
			t.Fatalf("%s: %d refills, want %d", name, len(refills), limit/refill)
		}
		// The payer's balance falls by a refill in each refill's block (its
		// fees aside: it sends no transaction then).
		for i, e := range refills {
			if e.Payer != payer || e.Amount.Amount.Int64() != refill || e.Spent.Amount.Int64() != int64(i+1)*refill {
				t.Fatalf("%s: refill %d is %+v", name, i, e)
			}
			h := heights[i]
			var created int64 // deployments the payer opened in the block
			for _, ev := range blockAt(bs, h).Events {
				if c, ok := ev.(*escrowtypes.EventAccountCreated); ok && c.Id.Owner == payer {
					created += c.Deposit.Amount.Int64()
				}
			}
			if fell := chain.balanceAt(payer, h-1) - chain.balanceAt(payer, h) - blockAt(bs, h).FeesBy[payer] - created; fell != refill {
				t.Fatalf("%s: in block %d the payer's balance fell by %d, want %d", name, h, fell, refill)
			}
			if payer != tenant {
				if fell := chain.balanceAt(tenant, h-1) - chain.balanceAt(tenant, h) - blockAt(bs, h).FeesBy[tenant]; fell != 0 {
					t.Fatalf("%s: the sponsor's refill in block %d cost the tenant %d", name, h, fell)
				}
			}
		}
		startH, _ := leaseEventHeight(bs, isLeaseStarted(tenant, dseq))
		closeH, closed := leaseEventHeight(bs, isLeaseClosed(tenant, dseq))
		if r := closed.(*markettypes.EventLeaseClosed).Reason; r != markettypes.CLOSE_REASON_INSUFFICIENT_FUNDS {
			t.Fatalf("%s: closed as %s", name, r.ReasonString())
		}
		// It ran past what the deposit alone paid for, and paid what was
		// deposited and refilled, less the dust refunded.
		rate := int64(2_000_010_600)
		alone := time.Duration(deposit*3600/rate) * time.Second
		if ran := blockAt(bs, closeH).Time.Sub(blockAt(bs, startH).Time); ran <= alone+2*time.Second {
			t.Fatalf("%s: ran %s, no longer than the deposit alone pays for (%s)", name, ran, alone)
		}
		_, acc := leaseEventHeight(bs, isAccountClosed(tenant, dseq))
		paid := sumPayouts(bs, tenant, dseq, "").Gross
		if refund := acc.(*escrowtypes.EventAccountClosed).Refund.Amount.Int64(); paid+refund != deposit+limit || refund*3600 > rate {
			t.Fatalf("%s: paid %d and refunded %d of %d deposited and refilled", name, paid, refund, deposit+limit)
		}
		t.Logf("%s: %d refills in blocks %v; ran %s; paid %d", name, len(refills), heights, blockAt(bs, closeH).Time.Sub(blockAt(bs, startH).Time), paid)
	}
	check("owner-funded", own.DSeq, tenant, 15_000_000)
	check("sponsored", sponsored.DSeq, sponsor, 10_000_000)
	// The sponsored deployment cost its tenant the deposit and fees only.
	var ended int
	for _, b := range bs {
		for _, ev := range b.Events {
			if e, ok := ev.(*escrowtypes.EventAutoTopUpEnded); ok && e.Reason == escrowtypes.TopUpLimitReached {
				ended++
			}
		}
	}
	if ended != 2 {
		t.Fatalf("%d top-ups ended at their limit, want 2", ended)
	}
	for _, m := range []string{"escrow", "market"} {
		if b := moduleBalance(t, nw, m); b != 0 {
			t.Errorf("%s module holds %d ugpn after every deployment closed", m, b)
		}
	}
}
