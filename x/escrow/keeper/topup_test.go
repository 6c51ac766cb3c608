package keeper_test

import (
	"errors"
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/escrow/types"
)

func (f *fixture) checkTopUps() {
	f.t.Helper()
	f.checkInvariant()
	msg, err := f.k.TopUpInvariant(f.ctx)
	if err != nil || msg != "" {
		f.t.Fatalf("top-up invariant: %v %s", err, msg)
	}
}

// withHorizon sets auto_topup_horizon (and the refills per block).
func (f *fixture) withHorizon(h time.Duration, perBlock uint32) {
	f.t.Helper()
	p := types.DefaultParams()
	p.AutoTopupHorizon, p.MaxTopupsPerBlock = h, perBlock
	if _, err := f.msgs.UpdateParams(f.ctx, &types.MsgUpdateParams{Authority: f.authority, Params: p}); err != nil {
		f.t.Fatal(err)
	}
}

// An owner's automatic refill keeps a lease paid past its first depletion:
// each refill lands a horizon before the account would run dry, the owner's
// balance falls a refill at a time, and at the limit the account runs dry
// and closes as without one. Nothing is lost or created on the way.
func TestAutoTopUpRefillsUntilItsLimit(t *testing.T) {
	f := newFixture(t)
	f.withHorizon(time.Minute, 10)
	owner := f.addrs[0]
	id := f.accountID(0, 1)
	if err := f.k.CreateAccount(f.ctx, id, owner, coin(100)); err != nil {
		t.Fatal(err)
	}
	if err := f.k.OpenPayment(f.ctx, f.paymentID(0, 1, 1), rate3600); err != nil { // 1 ugpn a second: dry at 100 s
		t.Fatal(err)
	}
	if _, err := f.msgs.SetAutoTopUp(f.ctx, &types.MsgSetAutoTopUp{Payer: f.addr(0), Account: id, Amount: coin(50), Limit: coin(120)}); err != nil {
		t.Fatal(err)
	}
	start := f.bank.of(owner)
	f.advance(39 * time.Second)
	if f.bank.of(owner) != start {
		t.Fatal("refilled more than a horizon before the account runs dry")
	}
	f.advance(2 * time.Second) // 41 s: dry at 101 s is within the minute
	if got := start - f.bank.of(owner); got != 50 {
		t.Fatalf("first refill took %d from the owner, want 50", got)
	}
	f.checkTopUps()
	for i := 0; i < 200 && len(f.market.depleted) == 0; i++ {
		f.advance(time.Second)
		f.checkTopUps()
	}
	// 100 + 50 + 50 + 20 (what was left of the limit): dry after 220 s.
	if got := start - f.bank.of(owner); got != 120 {
		t.Fatalf("refills took %d from the owner, want the limit 120", got)
	}
	if len(f.market.depleted) != 1 || f.ctx.HeaderInfo().Time.Sub(t0) < 220*time.Second {
		t.Fatalf("closed %v at %s, want once at 220 s or later", f.market.depleted, f.ctx.HeaderInfo().Time.Sub(t0))
	}
	if _, err := f.k.AutoTopUps.Get(f.ctx, collectionsJoin(owner, id.Dseq)); err == nil {
		t.Fatal("the refill outlived its account")
	}
	f.checkTopUps()
}

// A sponsor pays for someone else's deployment; a stranger can neither
// take that funding away nor cancel it; the owner and the sponsor can. A
// sponsor who cannot pay changes nothing: the account runs dry as without.
func TestAutoTopUpSponsorsAndStrangers(t *testing.T) {
	f := newFixture(t)
	f.withHorizon(time.Minute, 10)
	id := f.accountID(0, 1)
	if err := f.k.CreateAccount(f.ctx, id, f.addrs[0], coin(100)); err != nil {
		t.Fatal(err)
	}
	if err := f.k.OpenPayment(f.ctx, f.paymentID(0, 1, 1), rate3600); err != nil {
		t.Fatal(err)
	}
	sponsor, stranger := 2, 3
	set := func(payer int, amount, limit int64) error {
		_, err := f.msgs.SetAutoTopUp(f.ctx, &types.MsgSetAutoTopUp{Payer: f.addr(payer), Account: id, Amount: coin(amount), Limit: coin(limit)})
		return err
	}
	cancel := func(sender int) error {
		_, err := f.msgs.CancelAutoTopUp(f.ctx, &types.MsgCancelAutoTopUp{Sender: f.addr(sender), Account: id})
		return err
	}
	if err := set(sponsor, 50, 100); err != nil {
		t.Fatal(err)
	}
	if err := set(stranger, 1, 1); !errors.Is(err, types.ErrUnauthorized) {
		t.Fatalf("a stranger replaced the sponsor's refill: %v", err)
	}
	if err := cancel(stranger); !errors.Is(err, types.ErrUnauthorized) {
		t.Fatalf("a stranger cancelled the sponsor's refill: %v", err)
	}
	for _, bad := range []struct {
		amount, limit int64
		want          error
	}{{0, 10, types.ErrInvalidAmount}, {50, 10, types.ErrInvalidAmount}} {
		if err := set(sponsor, bad.amount, bad.limit); !errors.Is(err, bad.want) {
			t.Fatalf("refill %d limit %d: %v, want %v", bad.amount, bad.limit, err, bad.want)
		}
	}
	if _, err := f.msgs.SetAutoTopUp(f.ctx, &types.MsgSetAutoTopUp{Payer: f.addr(sponsor), Account: id, Amount: sdk.NewInt64Coin("uatom", 5), Limit: sdk.NewInt64Coin("uatom", 50)}); !errors.Is(err, types.ErrInvalidDenom) {
		t.Fatalf("a refill in another denom: %v", err)
	}
	sponsorStart, ownerStart := f.bank.of(f.addrs[sponsor]), f.bank.of(f.addrs[0])
	f.advance(41 * time.Second)
	if f.bank.of(f.addrs[sponsor]) != sponsorStart-50 || f.bank.of(f.addrs[0]) != ownerStart {
		t.Fatal("the sponsor's refill was not the sponsor's")
	}
	f.checkTopUps()
	if err := cancel(sponsor); err != nil {
		t.Fatal(err)
	}
	if err := set(0, 10, 10); err != nil { // the owner takes over
		t.Fatal(err)
	}
	if err := cancel(0); err != nil {
		t.Fatal(err)
	}

	// A sponsor without funds: the refill fails and the account runs dry.
	broke := sdk.AccAddress("escrow-test-broke-00")
	brokeAddr, _ := f.ac.BytesToString(broke)
	if _, err := f.msgs.SetAutoTopUp(f.ctx, &types.MsgSetAutoTopUp{Payer: brokeAddr, Account: id, Amount: coin(50), Limit: coin(100)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && len(f.market.depleted) == 0; i++ {
		f.advance(time.Second)
		f.checkTopUps()
	}
	if len(f.market.depleted) != 1 {
		t.Fatal("the account with a broke sponsor never ran dry")
	}
	f.checkTopUps()
}

// Refills per block are bounded; the rest carry over to the next blocks.
func TestAutoTopUpsBoundedPerBlock(t *testing.T) {
	f := newFixture(t)
	f.withHorizon(time.Minute, 2)
	for d := uint64(1); d <= 5; d++ {
		id := f.accountID(0, d)
		if err := f.k.CreateAccount(f.ctx, id, f.addrs[0], coin(100)); err != nil {
			t.Fatal(err)
		}
		if err := f.k.OpenPayment(f.ctx, f.paymentID(0, d, 1), rate3600); err != nil {
			t.Fatal(err)
		}
		if err := f.k.SetAutoTopUp(f.ctx, id, f.addrs[0], coin(10), coin(10)); err != nil {
			t.Fatal(err)
		}
	}
	start := f.bank.of(f.addrs[0])
	f.advance(41 * time.Second)
	for _, want := range []int64{20, 40, 50, 50} {
		if got := start - f.bank.of(f.addrs[0]); got != want {
			t.Fatalf("refilled %d so far, want %d", got, want)
		}
		f.checkTopUps()
		f.advance(time.Second)
	}
}
