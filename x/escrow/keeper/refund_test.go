package keeper_test

import (
	"errors"
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/escrow/types"
)

func TestRefund(t *testing.T) {
	f := newFixture(t)
	id := f.accountID(0, 1)
	owner0 := f.bank.of(f.addrs[0])
	if err := f.k.CreateAccount(f.ctx, id, f.addrs[0], coin(1_000)); err != nil {
		t.Fatal(err)
	}
	if err := f.k.OpenPayment(f.ctx, f.paymentID(0, 1, 1), rate3600); err != nil {
		t.Fatal(err)
	}
	f.advance(100 * time.Second)
	if _, err := f.k.Refund(f.ctx, id, sdk.NewInt64Coin("uatom", 1)); !errors.Is(err, types.ErrInvalidDenom) {
		t.Errorf("foreign denom refund: %v", err)
	}
	got, err := f.k.Refund(f.ctx, id, coin(400))
	if err != nil || got.Amount.Int64() != 400 {
		t.Fatalf("refund 400: %v %v", got, err)
	}
	// Asking for more than is left refunds only what is left; earned rent stays.
	got, err = f.k.Refund(f.ctx, id, coin(10_000))
	if err != nil || got.Amount.Int64() != 500 {
		t.Fatalf("refund of the rest: %v %v, want 500 (1000 - 100 earned - 400)", got, err)
	}
	if f.bank.of(f.addrs[0]) != owner0-100 {
		t.Errorf("owner paid %d, want only the 100 earned", owner0-f.bank.of(f.addrs[0]))
	}
	f.checkInvariant()
	if _, err := f.k.Refund(f.ctx, f.accountID(0, 9), coin(1)); !errors.Is(err, types.ErrAccountNotFound) {
		t.Errorf("refund from an unknown account: %v", err)
	}
}

func TestPaymentQueries(t *testing.T) {
	f := newFixture(t)
	for d := uint64(1); d <= 2; d++ {
		if err := f.k.CreateAccount(f.ctx, f.accountID(0, d), f.addrs[0], coin(1_000_000)); err != nil {
			t.Fatal(err)
		}
		if err := f.k.OpenPayment(f.ctx, f.paymentID(0, d, 1), rate3600); err != nil {
			t.Fatal(err)
		}
	}
	f.advance(30 * time.Second)
	res, err := f.q.ProviderPayments(f.ctx, &types.QueryProviderPaymentsRequest{Provider: f.addr(1)})
	if err != nil || len(res.Payments) != 2 {
		t.Fatalf("provider payments: %v %v", res, err)
	}
	for _, p := range res.Payments {
		if p.Accrued.Int64() != 30 {
			t.Errorf("payment %s accrued %s on read, want 30", p.Id.Name(), p.Accrued)
		}
	}
	acc, err := f.q.AccountPayments(f.ctx, &types.QueryAccountRequest{Owner: f.addr(0), Dseq: 2})
	if err != nil || len(acc.Payments) != 1 || acc.Payments[0].Accrued.Int64() != 30 {
		t.Errorf("account payments: %v %v", acc, err)
	}
	if _, err := f.q.ProviderPayments(f.ctx, &types.QueryProviderPaymentsRequest{Provider: "nope"}); err == nil {
		t.Error("bad provider address accepted")
	}
}
