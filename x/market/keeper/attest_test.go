package keeper_test

import (
	"errors"
	"testing"
	"time"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// startWon wins a lease for provider p (faultPrice per hour) and starts it.
func (w *world) startWon(p int) uint64 {
	w.t.Helper()
	dseq := w.win(p)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.StartLease(ctx, &types.MsgStartLease{Provider: w.provs[p].String(), Lease: w.leaseID(dseq, p)}); err != nil {
			w.t.Fatal(err)
		}
	})
	return dseq
}

func (w *world) attest(p int, leases uint32, down ...types.OrderID) (*types.MsgAttestResponse, time.Time, error) {
	var res *types.MsgAttestResponse
	var err error
	var at time.Time
	w.c.Do(time.Second, func(ctx sdk.Context) {
		at = ctx.BlockTime()
		res, err = w.market.Attest(ctx, &types.MsgAttest{Provider: w.provs[p].String(), Leases: leases, Down: down})
	})
	return res, at, err
}

func (w *world) payment(dseq uint64, p int) escrowtypes.Payment {
	w.t.Helper()
	k := w.c.App.EscrowKeeper
	key := collections.Join4(dseq, w.tenant, types.OrderID{Gseq: 1, Oseq: 1}.GroupOrder(), w.provs[p])
	pay, err := k.Payments.Get(w.c.Query(), key)
	if err != nil {
		w.t.Fatal(err)
	}
	return pay
}

func (w *world) blocks(n int) {
	for range n {
		w.c.NextBlock(time.Second)
	}
}

// grossFor is what faultPrice per hour earns over seconds, whole ugpn.
func grossFor(seconds int64) int64 { return faultPrice * seconds / 3600 }

// TestSilentProviderIsPaidOnlyToItsLastAttestation: a provider that
// attests keeps its lease; one that goes silent past attest_grace has the
// lease closed as provider_unresponsive, is paid exactly up to its last
// attestation (the tenant gets the rest back to the ugpn) and is slashed
// silence_slash of its bond to the community pool, once.
func TestSilentProviderIsPaidOnlyToItsLastAttestation(t *testing.T) {
	w := newWorld(t)
	dseq := w.startWon(0)
	params, err := w.c.App.ProviderKeeper.Params.Get(w.c.Query())
	if err != nil {
		t.Fatal(err)
	}
	grace := int(params.AttestGrace)
	runFrom := w.payment(dseq, 0).RunFrom
	tenant0, prov0, pool0 := w.balance(w.tenant), w.balance(w.provs[0]), w.pool(w.c.Query())

	// Attesting within the grace keeps the lease: twice, grace-2 blocks apart.
	w.blocks(grace - 3)
	if _, _, err := w.attest(0, 1); err != nil {
		t.Fatal(err)
	}
	w.blocks(grace - 3)
	_, last, err := w.attest(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.blocks(grace - 3)
	if has, _ := w.c.App.MarketKeeper.Leases.Has(w.c.Query(), mustLeaseKey(t, w, dseq, 0)); !has {
		t.Fatal("a lease attested within the grace was closed")
	}
	// Then silence: past the grace, the lease closes.
	w.blocks(3)
	if has, _ := w.c.App.MarketKeeper.Leases.Has(w.c.Query(), mustLeaseKey(t, w, dseq, 0)); has {
		t.Fatal("the lease of a provider silent past attest_grace is still open")
	}
	gross := grossFor(int64(last.Sub(runFrom) / time.Second))
	take := gross * 2 / 100
	if got, want := w.balance(w.provs[0])-prov0, gross-take+1_000_000; got != want {
		t.Errorf("provider got %d, want %d: %d gross up to its last attestation less 2%% take, and its bid deposit back", got, want, gross)
	}
	if got, want := w.balance(w.tenant)-tenant0, int64(faultDeposit)-gross; got != want {
		t.Errorf("tenant got back %d, want %d (everything after the last attestation)", got, want)
	}
	// The pool also takes its share of block rewards every block: it grew
	// by the slash at least.
	if got, want := providerBond(t, w, 0), int64(600_000_000-600_000_000/100); got != want || w.pool(w.c.Query())-pool0 < 600_000_000/100 {
		t.Errorf("bond %d (pool +%d), want %d: the 1%% silence slash to the community pool", got, w.pool(w.c.Query())-pool0, want)
	}
	if w.moduleBalance(escrowtypes.ModuleName) != 0 {
		t.Errorf("escrow still holds %d", w.moduleBalance(escrowtypes.ModuleName))
	}
	p, err := w.c.App.ProviderKeeper.GetProvider(w.c.Query(), w.provs[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.LeasesUnresponsive != 1 || p.Stats.Silences != 1 {
		t.Errorf("stats %+v: want one unresponsive lease and one silence", p.Stats)
	}
	if u := p.Stats.Uptime(); !u.LT(sdkmath.LegacyOneDec()) {
		t.Errorf("uptime %s after a silence, want below 1", u)
	}
	if _, _, err := w.attest(0, 1); !errors.Is(err, types.ErrInvalidAttestation) {
		t.Errorf("attesting with no active lease: %v", err)
	}
}

// TestSilenceSlashesOncePerSilence: a silent provider with two leases is
// slashed once, and both leases close, one per block when the sweep bound
// is one.
func TestSilenceSlashesOncePerSilence(t *testing.T) {
	w := newWorld(t)
	a := w.startWon(0)
	b := w.startWon(0)
	params, _ := w.c.App.MarketKeeper.Params.Get(w.c.Query())
	params.MaxSweepsPerBlock = 1
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.UpdateParams(ctx, &types.MsgUpdateParams{Authority: w.c.App.MarketKeeper.Authority(), Params: params}); err != nil {
			t.Fatal(err)
		}
	})
	pool0 := w.pool(w.c.Query())
	bond0 := providerBond(t, w, 0)
	rec, err := w.c.App.MarketKeeper.Attestations.Get(w.c.Query(), w.provs[0])
	if err != nil {
		t.Fatal(err)
	}
	w.blocks(int(rec.Deadline - w.c.Height)) // through the block at the deadline
	open := 0
	for _, dseq := range []uint64{a, b} {
		if has, _ := w.c.App.MarketKeeper.Leases.Has(w.c.Query(), mustLeaseKey(t, w, dseq, 0)); has {
			open++
		}
	}
	if open != 1 {
		t.Fatalf("%d leases open in the first block of the silence, want 1 (one closed per block)", open)
	}
	w.blocks(1)
	for _, dseq := range []uint64{a, b} {
		if has, _ := w.c.App.MarketKeeper.Leases.Has(w.c.Query(), mustLeaseKey(t, w, dseq, 0)); has {
			t.Errorf("lease %d still open after the silence", dseq)
		}
	}
	slashed := bond0 - providerBond(t, w, 0)
	if slashed != bond0/100 || w.pool(w.c.Query())-pool0 < slashed {
		t.Errorf("slashed %d (pool +%d), want one 1%% slash of %d", slashed, w.pool(w.c.Query())-pool0, bond0)
	}
}

func providerBond(t *testing.T, w *world, p int) int64 {
	t.Helper()
	pr, err := w.c.App.ProviderKeeper.GetProvider(w.c.Query(), w.provs[p])
	if err != nil {
		t.Fatal(err)
	}
	return pr.Bond.Amount.Int64()
}

// TestDownLeaseStopsPaying: attested down, a lease accrues nothing until
// it is attested running again; down max_down_attestations times in a row
// it closes as workload_failed, paid for the time it ran.
func TestDownLeaseStopsPaying(t *testing.T) {
	w := newWorld(t)
	dseq := w.startWon(0)
	id := w.leaseID(dseq, 0).Order
	w.blocks(9)
	_, downAt, err := w.attest(0, 1, id)
	if err != nil {
		t.Fatal(err)
	}
	before := w.payment(dseq, 0)
	if !before.Paused {
		t.Fatal("payment not paused after a down attestation")
	}
	w.blocks(20)
	_, upAt, err := w.attest(0, 1) // running again
	if err != nil {
		t.Fatal(err)
	}
	resumed := w.payment(dseq, 0)
	if resumed.Paused || !resumed.RunFrom.Equal(upAt) {
		t.Fatalf("payment after a running attestation: paused %v, run from %s; want resumed from %s", resumed.Paused, resumed.RunFrom, upAt)
	}
	w.blocks(5)
	prov0 := w.balance(w.provs[0])
	var downAgain time.Time
	for i := range 3 {
		res, at, err := w.attest(0, 1, id)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			downAgain = at
		}
		want := uint32(0)
		if i == 2 {
			want = 1
		}
		if res.Closed != want {
			t.Errorf("down attestation %d closed %d leases, want %d", i+1, res.Closed, want)
		}
	}
	// Paid in one payout at the close: the two runs' accruals, each
	// rounded down on its own.
	gross := grossFor(int64(downAt.Sub(before.RunFrom)/time.Second)) + grossFor(int64(downAgain.Sub(upAt)/time.Second))
	paid := w.balance(w.provs[0]) - prov0 - 1_000_000
	if want := gross - gross*2/100; paid < want-1 || paid > want+1 {
		t.Errorf("provider paid %d net, want %d (±1): only the time attested running", paid, want)
	}
	if has, _ := w.c.App.MarketKeeper.Leases.Has(w.c.Query(), mustLeaseKey(t, w, dseq, 0)); has {
		t.Fatal("a lease attested down three times in a row is still open")
	}
}

// TestAttestRefusesWhatIsNotItsOwn: an attestation must count the
// provider's active leases exactly and name only its own active leases.
func TestAttestRefusesWhatIsNotItsOwn(t *testing.T) {
	w := newWorld(t)
	mine := w.startWon(0)
	theirs := w.startWon(1)
	cases := []struct {
		name   string
		leases uint32
		down   []types.OrderID
	}{
		{"more leases named than attested", 0, []types.OrderID{w.leaseID(mine, 0).Order}},
		{"another provider's lease", 1, []types.OrderID{w.leaseID(theirs, 1).Order}},
		{"a lease that does not exist", 1, []types.OrderID{{Owner: w.tenant.String(), Dseq: mine + 1000, Gseq: 1, Oseq: 1}}},
		{"named twice", 2, []types.OrderID{w.leaseID(mine, 0).Order, w.leaseID(mine, 0).Order}},
	}
	for _, c := range cases {
		if _, _, err := w.attest(0, c.leases, c.down...); !errors.Is(err, types.ErrInvalidAttestation) {
			t.Errorf("%s: %v, want ErrInvalidAttestation", c.name, err)
		}
	}
	if p := w.payment(theirs, 1); p.Paused {
		t.Error("another provider's attestation paused a lease")
	}
}

// TestMinReliabilityKeepsWeakProvidersOut: a group asking for a minimum
// reliability refuses bids from providers below it.
func TestMinReliabilityKeepsWeakProvidersOut(t *testing.T) {
	w := newWorld(t)
	g := group("h100")
	half := sdkmath.LegacyMustNewDecFromStr("0.5") // a new provider scores 0.25
	g.MinReliability = &half
	var dseq uint64
	w.c.Do(time.Second, func(ctx sdk.Context) { dseq = w.deploy(ctx, faultDeposit, g) })
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.bid(ctx, dseq, 0, faultPrice); !errors.Is(err, types.ErrBelowReliability) {
			t.Errorf("bid from a provider scoring 0.25 on a group asking 0.5: %v", err)
		}
	})
	tooHigh := sdkmath.LegacyMustNewDecFromStr("1.5")
	g.MinReliability = &tooHigh
	w.c.Do(time.Second, func(ctx sdk.Context) {
		_, err := w.market.CreateDeployment(ctx, &types.MsgCreateDeployment{Owner: w.tenant.String(), Groups: []types.GroupSpec{g},
			ManifestHash: make([]byte, 32), Deposit: sdk.NewInt64Coin(denom, faultDeposit), BidWindow: 2})
		if !errors.Is(err, types.ErrInvalidGroups) {
			t.Errorf("min_reliability 1.5: %v, want ErrInvalidGroups", err)
		}
	})
}

// TestMigrationStartsAttestations: state from before attestations (no
// params for them, no records) gets the default params and a record for
// every provider with active leases, due to attest within attest_grace.
func TestMigrationStartsAttestations(t *testing.T) {
	w := newWorld(t)
	w.startWon(0)
	w.startWon(0)
	k := w.c.App.MarketKeeper
	w.c.Do(time.Second, func(ctx sdk.Context) {
		// Back to a version-2 state.
		rec, err := k.Attestations.Get(ctx, w.provs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := k.SilenceQueue.Remove(ctx, collections.Join(rec.Deadline, w.provs[0])); err != nil {
			t.Fatal(err)
		}
		if err := k.Attestations.Remove(ctx, w.provs[0]); err != nil {
			t.Fatal(err)
		}
		pk := w.c.App.ProviderKeeper
		p, _ := pk.Params.Get(ctx)
		p.AttestInterval, p.AttestGrace, p.SilenceSlash, p.MaxDownAttestations, p.UptimeWindow = 0, 0, sdkmath.LegacyDec{}, 0, 0
		if err := pk.Params.Set(ctx, p); err != nil {
			t.Fatal(err)
		}

		// The upgrade runs x/market's migration before x/provider's.
		if err := k.MigrateToAttestations(ctx); err != nil {
			t.Fatal(err)
		}
		if err := pk.MigrateLivenessParams(ctx); err != nil {
			t.Fatal(err)
		}
		p, _ = pk.Params.Get(ctx)
		if d := providertypes.DefaultParams(); p.AttestInterval != d.AttestInterval || p.AttestGrace != d.AttestGrace || !p.SilenceSlash.Equal(d.SilenceSlash) ||
			p.MaxDownAttestations != d.MaxDownAttestations || p.UptimeWindow != d.UptimeWindow || !p.MinBond.Equal(d.MinBond) {
			t.Errorf("provider params after the migration %+v", p)
		}
		rec, err = k.Attestations.Get(ctx, w.provs[0])
		if err != nil {
			t.Fatal(err)
		}
		if rec.ActiveLeases != 2 || rec.Height != ctx.BlockHeight() || rec.Deadline != ctx.BlockHeight()+10*int64(p.AttestGrace) {
			t.Errorf("record after the migration %+v: want 2 active leases, due 10 × %d blocks from now", rec, p.AttestGrace)
		}
		if has, _ := k.SilenceQueue.Has(ctx, collections.Join(rec.Deadline, w.provs[0])); !has {
			t.Error("the provider is not queued for silence")
		}
	})
	if err := w.c.App.CheckInvariants(w.c.Query()); err != nil {
		t.Fatal(err)
	}
}

// TestStaleSilenceEntryIsIgnored: a silence entry that is not the
// provider's deadline (one put back on the queue after the provider
// attested again) neither slashes it nor closes its leases.
func TestStaleSilenceEntryIsIgnored(t *testing.T) {
	w := newWorld(t)
	dseq := w.startWon(0)
	if _, _, err := w.attest(0, 1); err != nil {
		t.Fatal(err)
	}
	bond := providerBond(t, w, 0)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if err := w.c.App.MarketKeeper.SilenceQueue.Set(ctx, collections.Join(ctx.BlockHeight()-1, w.provs[0])); err != nil {
			t.Fatal(err)
		}
	})
	w.blocks(1)
	if has, _ := w.c.App.MarketKeeper.Leases.Has(w.c.Query(), mustLeaseKey(t, w, dseq, 0)); !has {
		t.Fatal("a stale silence entry closed the lease of a provider that attests")
	}
	if b := providerBond(t, w, 0); b != bond {
		t.Errorf("bond %d, was %d: a stale silence entry slashed", b, bond)
	}
	if err := w.c.App.CheckInvariants(w.c.Query()); err != nil {
		t.Fatal(err)
	}
}

// TestAttestationCountingALeaseClosedSinceStillCounts: a tenant closing a
// lease just before the provider's attestation lands (the count the daemon
// saw is one too many) must not keep the provider from attesting, or it
// could be griefed into silence.
func TestAttestationCountingALeaseClosedSinceStillCounts(t *testing.T) {
	w := newWorld(t)
	w.startWon(0)
	gone := w.startWon(0)
	w.c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := w.market.CloseLease(ctx, &types.MsgCloseLease{Sender: w.tenant.String(), Lease: w.leaseID(gone, 0)}); err != nil {
			t.Fatal(err)
		}
	})
	_, at, err := w.attest(0, 2) // the daemon still saw two
	if err != nil {
		t.Fatalf("attestation counting a lease the tenant closed since: %v", err)
	}
	rec, err := w.c.App.MarketKeeper.Attestations.Get(w.c.Query(), w.provs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Time.Equal(at) || rec.ActiveLeases != 1 {
		t.Errorf("record %+v: want the attestation at %s recorded, one active lease", rec, at)
	}
}
