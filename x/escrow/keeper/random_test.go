package keeper_test

import (
	"math/rand/v2"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// TestRandomOperationsConserveFunds runs thousands of random deposits,
// payments at random rates, withdrawals, payment and account closes over
// blocks with random time jumps. After every block the module account must
// hold exactly what the books say, and at the end every ugpn deposited must
// be accounted for as paid to providers, taken for stakers or refunded.
func TestRandomOperationsConserveFunds(t *testing.T) {
	f := newFixture(t)
	r := rand.New(rand.NewPCG(42, 4242))
	const owners, providers = 3, 3 // addrs 0-2 tenants, 3-5 providers
	start := map[int]int64{}
	for i := range f.addrs {
		start[i] = f.bank.of(f.addrs[i])
	}
	var deposited int64
	type open struct {
		id       types.AccountID
		payments []types.PaymentID
	}
	var live []*open
	nextDseq := uint64(1)

	for step := 0; step < 3000; step++ {
		switch op := r.IntN(10); {
		case op < 2 || len(live) == 0: // new account
			owner := r.IntN(owners)
			id := f.accountID(owner, nextDseq)
			nextDseq++
			amt := 1 + r.Int64N(2_000_000)
			if err := f.k.CreateAccount(f.ctx, id, f.addrs[owner], coin(amt)); err != nil {
				t.Fatal(err)
			}
			deposited += amt
			live = append(live, &open{id: id})
		case op < 4: // open a payment
			a := live[r.IntN(len(live))]
			pid := types.PaymentID{Account: a.id, Gseq: uint32(len(a.payments) + 1), Oseq: 1, Provider: f.addr(owners + r.IntN(providers))}
			rate := sdkmath.LegacyNewDecWithPrec(1+r.Int64N(50_000_000_000), int64(r.IntN(7)))
			err := f.k.OpenPayment(f.ctx, pid, rate)
			if err == nil {
				a.payments = append(a.payments, pid)
			} else if !isGone(err) {
				t.Fatal(err)
			}
		case op < 5: // top up
			a := live[r.IntN(len(live))]
			amt := 1 + r.Int64N(500_000)
			err := f.k.Deposit(f.ctx, a.id, f.addrs[r.IntN(len(f.addrs))], coin(amt))
			if err == nil {
				deposited += amt
			} else if !isGone(err) {
				t.Fatal(err)
			}
		case op < 7: // withdraw
			a := live[r.IntN(len(live))]
			if len(a.payments) > 0 {
				if _, err := f.k.WithdrawPayment(f.ctx, a.payments[r.IntN(len(a.payments))]); err != nil && !isGone(err) {
					t.Fatal(err)
				}
			}
		case op < 8: // close a payment
			a := live[r.IntN(len(live))]
			if len(a.payments) > 0 {
				i := r.IntN(len(a.payments))
				if err := f.k.ClosePayment(f.ctx, a.payments[i], "provider"); err != nil && !isGone(err) {
					t.Fatal(err)
				}
				a.payments = append(a.payments[:i], a.payments[i+1:]...)
			}
		case op < 9: // close an account
			i := r.IntN(len(live))
			if _, err := f.k.CloseAccount(f.ctx, live[i].id, "tenant"); err != nil && !isGone(err) {
				t.Fatal(err)
			}
			live = append(live[:i], live[i+1:]...)
		default: // next block, sometimes after a long pause
			dt := time.Duration(1+r.IntN(6)) * time.Second
			if r.IntN(20) == 0 {
				dt = time.Duration(r.IntN(48)) * time.Hour
			}
			f.advance(dt + time.Duration(r.IntN(1000))*time.Millisecond)
			f.checkInvariant()
		}
	}
	for _, a := range live {
		if _, err := f.k.CloseAccount(f.ctx, a.id, "tenant"); err != nil && !isGone(err) {
			t.Fatal(err)
		}
	}
	f.checkInvariant()

	var tenantsNet, providersNet int64
	for i := range f.addrs {
		delta := f.bank.of(f.addrs[i]) - start[i]
		if i < owners {
			tenantsNet += delta
		} else {
			providersNet += delta
		}
	}
	take := feeCollector(f)
	// Deposits by providers (random top-ups) show up in their own delta, so
	// compare flows: what left tenants and providers = what came back + take.
	if module := f.bank.of(moduleAddr()); module != 0 {
		t.Fatalf("escrow module still holds %d after every account closed", module)
	}
	if tenantsNet+providersNet+take != 0 {
		t.Fatalf("funds not conserved: tenants %+d, providers %+d, take %d (deposited %d)", tenantsNet, providersNet, take, deposited)
	}
	if take == 0 || providersNet <= 0 {
		t.Fatalf("run exercised nothing: take %d, providers %+d", take, providersNet)
	}
	t.Logf("deposited %d: providers net %+d, take %d, tenants net %+d", deposited, providersNet, take, tenantsNet)
}

func isGone(err error) bool {
	return errorsIs(err, types.ErrAccountNotFound) || errorsIs(err, types.ErrPaymentNotFound)
}
