package keeper_test

import (
	"testing"
	"time"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// The market's BillableUntil caps payouts: a withdrawal never pays past
// the provider's last attestation, a close while the provider is on time
// pays to now, and a close while it is overdue pays to the attestation and
// gives the rest back to the account, to the ugpn. A provider that
// withdrew more before its attestation moved back keeps what it was paid.
func TestPayoutsStopAtTheLastAttestation(t *testing.T) {
	for _, c := range []struct {
		name       string
		overdue    bool
		attestedAt time.Duration // after the start
		wantGross  int64
	}{
		{"on time: paid to the close", false, 40 * time.Second, 120},
		{"overdue: paid to the attestation", true, 40 * time.Second, 40},
		{"overdue, attestation before what was withdrawn", true, 30 * time.Second, 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			tenant, provider := f.addrs[0], f.addrs[1]
			id, pid := f.accountID(0, 1), f.paymentID(0, 1, 1)
			tenant0, prov0 := f.bank.of(tenant), f.bank.of(provider)
			if err := f.k.CreateAccount(f.ctx, id, tenant, coin(10_000)); err != nil {
				t.Fatal(err)
			}
			if err := f.k.OpenPayment(f.ctx, pid, rate3600); err != nil { // 1 ugpn a second
				t.Fatal(err)
			}
			f.market.billable = map[string]time.Time{pid.Provider: t0.Add(40 * time.Second)}
			f.advance(100 * time.Second)
			if _, err := f.k.WithdrawPayment(f.ctx, pid); err != nil {
				t.Fatal(err)
			}
			if got := f.bank.of(provider) - prov0 + feeCollector(f); got != 40 {
				t.Fatalf("withdrawal paid %d gross at 100 s, want 40: nothing past the attestation at 40 s", got)
			}
			f.checkInvariant()

			f.market.billable[pid.Provider] = t0.Add(c.attestedAt)
			f.market.overdue = map[string]bool{pid.Provider: c.overdue}
			f.advance(20 * time.Second)
			if _, err := f.k.CloseAccount(f.ctx, id, "test"); err != nil {
				t.Fatal(err)
			}
			if got := f.bank.of(provider) - prov0 + feeCollector(f); got != c.wantGross {
				t.Errorf("provider paid %d gross in all, want %d", got, c.wantGross)
			}
			if got := tenant0 - f.bank.of(tenant); got != c.wantGross {
				t.Errorf("tenant paid %d, want %d: the rest refunded", got, c.wantGross)
			}
			f.checkInvariant()
		})
	}
}

// A paused payment accrues nothing and does not draw the account down:
// with its only payment paused an account never runs dry, and resumed it
// pays from the second it resumed.
func TestPausedPaymentNeitherAccruesNorDepletes(t *testing.T) {
	f := newFixture(t)
	id, pid := f.accountID(0, 1), f.paymentID(0, 1, 1)
	if err := f.k.CreateAccount(f.ctx, id, f.addrs[0], coin(1_000)); err != nil {
		t.Fatal(err)
	}
	if err := f.k.OpenPayment(f.ctx, pid, rate3600); err != nil {
		t.Fatal(err)
	}
	f.advance(100 * time.Second)
	if err := f.k.PausePayment(f.ctx, pid); err != nil {
		t.Fatal(err)
	}
	f.advance(2_000 * time.Second) // past where it would have run dry
	res, err := f.q.Account(f.ctx, &types.QueryAccountRequest{Owner: id.Owner, Dseq: 1})
	if err != nil {
		t.Fatalf("account closed while its only payment was paused: %v", err)
	}
	if res.Account.Balance.Int64() != 900 || res.Account.DepletesAt != nil {
		t.Fatalf("paused: balance %s, depletes at %v; want 900 and never", res.Account.Balance, res.Account.DepletesAt)
	}
	if err := f.k.ResumePayment(f.ctx, pid); err != nil {
		t.Fatal(err)
	}
	f.advance(50 * time.Second)
	res, err = f.q.Account(f.ctx, &types.QueryAccountRequest{Owner: id.Owner, Dseq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Account.Balance.Int64() != 850 {
		t.Errorf("resumed 50 s: balance %s, want 850", res.Account.Balance)
	}
	f.checkInvariant()
}
