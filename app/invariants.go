package app

import (
	"context"
	"fmt"

	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowkeeper "github.com/gpunet/gpunet/x/escrow/keeper"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// Invariant is a property of the whole state that every block must keep.
// Check describes the first violation, or returns "".
type Invariant struct {
	Name  string
	Check func(ctx context.Context) (string, error)
}

// Invariants are gpunet's: every ugpn held by escrow, the provider bonds and
// the market's bid deposits is accounted for, and the market, escrow and
// provider registries agree about every deployment and lease. They walk the
// whole state, so they are for simulations, tests and `gpunetd` debugging,
// never for blocks.
func (app *App) Invariants() []Invariant {
	return []Invariant{
		{"escrow/balances", app.EscrowKeeper.BalanceInvariant},
		{"escrow/topups", app.EscrowKeeper.TopUpInvariant},
		{"provider/bonds", app.ProviderKeeper.BondInvariant},
		{"market/deposits", app.MarketKeeper.DepositInvariant},
		{"market/order-queue", app.MarketKeeper.OrderQueueInvariant},
		{"market/leases", app.leaseInvariant},
		{"market/attestations", app.attestationInvariant},
		{"audit/index", app.AuditKeeper.IndexInvariant},
	}
}

// CheckInvariants runs every invariant and returns the first violation.
func (app *App) CheckInvariants(ctx context.Context) error {
	for _, inv := range app.Invariants() {
		msg, err := inv.Check(ctx)
		if err != nil {
			return fmt.Errorf("invariant %s: %w", inv.Name, err)
		}
		if msg != "" {
			return fmt.Errorf("invariant %s broken: %s", inv.Name, msg)
		}
	}
	return nil
}

// leaseInvariant: each deployment has its escrow account and each account a
// deployment; every lease's order is matched and its provider registered;
// an active lease has an open escrow payment at the lease's price and a
// pending one none; and every payment belongs to an active lease.
func (app *App) leaseInvariant(ctx context.Context) (string, error) {
	mk, ek, pk := app.MarketKeeper, app.EscrowKeeper, app.ProviderKeeper
	var broken string
	fail := func(format string, args ...any) (bool, error) {
		broken = fmt.Sprintf(format, args...)
		return true, nil
	}
	if err := mk.Deployments.Walk(ctx, nil, func(k marketkeeper.DeploymentKey, d markettypes.Deployment) (bool, error) {
		if has, err := ek.Accounts.Has(ctx, collections.Join(k.K2(), k.K1())); err != nil || !has {
			if err != nil {
				return true, err
			}
			return fail("deployment %s/%d has no escrow account", d.Owner, d.Dseq)
		}
		return false, nil
	}); err != nil || broken != "" {
		return broken, err
	}
	if err := ek.Accounts.Walk(ctx, nil, func(k escrowkeeper.AccountKey, a escrowtypes.Account) (bool, error) {
		if has, err := mk.Deployments.Has(ctx, collections.Join(k.K2(), k.K1())); err != nil || !has {
			if err != nil {
				return true, err
			}
			return fail("escrow account %s has no deployment", a.Id.Name())
		}
		return false, nil
	}); err != nil || broken != "" {
		return broken, err
	}
	if err := mk.Leases.Walk(ctx, nil, func(k marketkeeper.BidKey, l markettypes.Lease) (bool, error) {
		o, err := mk.Orders.Get(ctx, collections.Join3(k.K1(), k.K2(), l.Id.Order.GroupOrder()))
		if err != nil || o.State != markettypes.ORDER_STATE_MATCHED {
			return fail("lease %s: its order is missing or not matched (%v)", l.Id.Name(), err)
		}
		provider, err := app.AccountKeeper.AddressCodec().StringToBytes(l.Id.Provider)
		if err != nil {
			return fail("lease %s: provider address: %v", l.Id.Name(), err)
		}
		if _, err := pk.GetProvider(ctx, sdk.AccAddress(provider)); err != nil {
			return fail("lease %s: provider: %v", l.Id.Name(), err)
		}
		p, err := ek.Payments.Get(ctx, k)
		switch {
		case l.State == markettypes.LEASE_STATE_ACTIVE && err != nil:
			return fail("active lease %s has no escrow payment (%v)", l.Id.Name(), err)
		case l.State == markettypes.LEASE_STATE_ACTIVE && !p.Rate.Equal(l.Price.Amount):
			return fail("active lease %s pays %s/h, its payment streams %s/h", l.Id.Name(), l.Price.Amount, p.Rate)
		case l.State == markettypes.LEASE_STATE_PENDING && err == nil:
			return fail("pending lease %s already has an escrow payment", l.Id.Name())
		}
		return false, nil
	}); err != nil || broken != "" {
		return broken, err
	}
	err := ek.Payments.Walk(ctx, nil, func(k escrowkeeper.PaymentKey, p escrowtypes.Payment) (bool, error) {
		l, err := mk.Leases.Get(ctx, k)
		if err != nil || l.State != markettypes.LEASE_STATE_ACTIVE {
			return fail("escrow payment %s has no active lease (%v)", p.Id.Name(), err)
		}
		return false, nil
	})
	return broken, err
}

// attestationInvariant: each provider's attestation record counts exactly
// its active leases and is queued for silence exactly when it has some;
// every lease attested down is active with its payment paused, and every
// paused payment belongs to a lease attested down.
func (app *App) attestationInvariant(ctx context.Context) (string, error) {
	mk, ek := app.MarketKeeper, app.EscrowKeeper
	active := map[string]uint32{}
	var providers []string
	if err := mk.Leases.Walk(ctx, nil, func(_ marketkeeper.BidKey, l markettypes.Lease) (bool, error) {
		if l.State == markettypes.LEASE_STATE_ACTIVE {
			if active[l.Id.Provider] == 0 {
				providers = append(providers, l.Id.Provider)
			}
			active[l.Id.Provider]++
		}
		return false, nil
	}); err != nil {
		return "", err
	}
	var broken string
	seen := map[string]bool{}
	if err := mk.Attestations.Walk(ctx, nil, func(p sdk.AccAddress, a markettypes.Attestation) (bool, error) {
		seen[p.String()] = true
		if a.ActiveLeases != active[p.String()] {
			broken = fmt.Sprintf("provider %s: attestation record counts %d active leases, the market has %d", p, a.ActiveLeases, active[p.String()])
			return true, nil
		}
		queued := false
		if a.Deadline != 0 {
			var err error
			if queued, err = mk.SilenceQueue.Has(ctx, collections.Join(a.Deadline, p)); err != nil {
				return true, err
			}
		}
		if queued != (a.ActiveLeases > 0) {
			broken = fmt.Sprintf("provider %s: %d active leases, silence deadline %d queued %v", p, a.ActiveLeases, a.Deadline, queued)
			return true, nil
		}
		return false, nil
	}); err != nil || broken != "" {
		return broken, err
	}
	for _, p := range providers {
		if !seen[p] {
			return fmt.Sprintf("provider %s has %d active leases and no attestation record", p, active[p]), nil
		}
	}
	down := map[string]bool{}
	if err := mk.DownLeases.Walk(ctx, nil, func(k collections.Pair[sdk.AccAddress, marketkeeper.BidKey], _ markettypes.DownLease) (bool, error) {
		l, err := mk.Leases.Get(ctx, k.K2())
		if err != nil || l.State != markettypes.LEASE_STATE_ACTIVE {
			broken = fmt.Sprintf("lease %v is attested down but not active (%v)", k.K2(), err)
			return true, nil
		}
		down[l.Id.Name()] = true
		return false, nil
	}); err != nil || broken != "" {
		return broken, err
	}
	if err := ek.Payments.Walk(ctx, nil, func(_ escrowkeeper.PaymentKey, p escrowtypes.Payment) (bool, error) {
		id := markettypes.BidID{Order: markettypes.OrderID{Owner: p.Id.Account.Owner, Dseq: p.Id.Account.Dseq, Gseq: p.Id.Gseq, Oseq: p.Id.Oseq}, Provider: p.Id.Provider}
		if p.Paused != down[id.Name()] {
			broken = fmt.Sprintf("payment %s paused %v, its lease attested down %v", id.Name(), p.Paused, down[id.Name()])
			return true, nil
		}
		return false, nil
	}); err != nil {
		return "", err
	}
	return broken, nil
}
