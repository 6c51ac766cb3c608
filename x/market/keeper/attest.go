package keeper

// Attestation: every attest_interval blocks a provider says, in one
// MsgAttest, how all its active leases are doing. Its cost follows the
// leases it names down or degraded, never the leases that run: running is
// what a lease not named is. A lease attested down stops paying from that
// attestation on and closes as workload_failed after max_down_attestations
// in a row. A provider silent for attest_grace blocks is slashed
// silence_slash (once per silence) and its active leases close as
// provider_unresponsive, paid only up to its last attestation.

import (
	"context"
	"errors"
	"time"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Attest records a provider's attestation of all its active leases.
func (k msgServer) Attest(ctx context.Context, msg *types.MsgAttest) (*types.MsgAttestResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	provider, err := k.addr("provider", msg.Provider)
	if err != nil {
		return nil, err
	}
	params, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := k.Attestations.Get(ctx, provider)
	if errors.Is(err, collections.ErrNotFound) || (err == nil && rec.ActiveLeases == 0) {
		return nil, errorsmod.Wrapf(types.ErrInvalidAttestation, "%s has no active lease to attest", msg.Provider)
	}
	if err != nil {
		return nil, err
	}
	if msg.Leases != rec.ActiveLeases {
		return nil, errorsmod.Wrapf(types.ErrInvalidAttestation, "attests %d leases; %s has %d active (one started or closed since it looked: attest again)", msg.Leases, msg.Provider, rec.ActiveLeases)
	}
	// Every named lease must be one of the provider's active leases.
	check := func(id types.OrderID) (BidKey, error) {
		key, lease, err := k.getLease(ctx, types.BidID{Order: id, Provider: msg.Provider})
		if errors.Is(err, types.ErrLeaseNotFound) || (err == nil && lease.State != types.LEASE_STATE_ACTIVE) {
			return key, errorsmod.Wrapf(types.ErrInvalidAttestation, "%s is not an active lease of %s", id.Name(), msg.Provider)
		}
		return key, err
	}
	down := make([]BidKey, len(msg.Down))
	isDown := make(map[string]bool, len(msg.Down))
	for i, id := range msg.Down {
		if down[i], err = check(id); err != nil {
			return nil, err
		}
		isDown[bidName(down[i])] = true
	}
	for _, id := range msg.Degraded {
		if _, err := check(id); err != nil {
			return nil, err
		}
	}

	// The provider's record first: the leases below are billed as of now.
	h, now := k.height(ctx), k.headers.GetHeaderInfo(ctx).Time
	elapsed := uint64(max(h-rec.Height, 0))
	upBlocks := min(elapsed, 2*params.AttestInterval) // beyond that it was overdue
	if err := k.providers.RecordUptime(ctx, provider, upBlocks*uint64(rec.ActiveLeases-uint32(len(down))), elapsed*uint64(rec.ActiveLeases),
		h, params.UptimeWindow, false, 0); err != nil {
		return nil, err
	}
	if rec.Deadline != 0 {
		if err := k.SilenceQueue.Remove(ctx, collections.Join(rec.Deadline, provider)); err != nil {
			return nil, err
		}
	}
	rec.Height, rec.Time, rec.Silenced = h, now, false
	rec.Deadline = h + int64(params.AttestGrace)
	rec.Attestations++
	if err := k.SilenceQueue.Set(ctx, collections.Join(rec.Deadline, provider)); err != nil {
		return nil, err
	}
	if err := k.Attestations.Set(ctx, provider, rec); err != nil {
		return nil, err
	}
	if err := k.emit(ctx, &types.EventProviderAttested{Provider: msg.Provider, Leases: msg.Leases, Down: uint32(len(msg.Down)), Degraded: uint32(len(msg.Degraded))}); err != nil {
		return nil, err
	}

	// Leases down before and not now run again.
	var back []collections.Pair[sdk.AccAddress, BidKey]
	err = k.DownLeases.Walk(ctx, collections.NewPrefixedPairRange[sdk.AccAddress, BidKey](provider), func(key collections.Pair[sdk.AccAddress, BidKey], _ types.DownLease) (bool, error) {
		if !isDown[bidName(key.K2())] {
			back = append(back, key)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	for _, key := range back {
		lease, err := k.Leases.Get(ctx, key.K2())
		if err != nil {
			return nil, err
		}
		if err := k.escrow.ResumePayment(ctx, paymentID(lease.Id)); err != nil {
			return nil, err
		}
		if err := k.DownLeases.Remove(ctx, key); err != nil {
			return nil, err
		}
		if err := k.emit(ctx, &types.EventLeaseHealth{Lease: lease.Id, Health: types.LEASE_HEALTH_RUNNING}); err != nil {
			return nil, err
		}
	}
	for _, id := range msg.Degraded {
		if err := k.emit(ctx, &types.EventLeaseHealth{Lease: types.BidID{Order: id, Provider: msg.Provider}, Health: types.LEASE_HEALTH_DEGRADED}); err != nil {
			return nil, err
		}
	}
	// Leases down now stop paying; down too long, they close.
	res := &types.MsgAttestResponse{}
	for i, key := range down {
		lease, err := k.Leases.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		dk := collections.Join(sdk.AccAddress(provider), key)
		d, err := k.DownLeases.Get(ctx, dk)
		if errors.Is(err, collections.ErrNotFound) {
			d = types.DownLease{Since: h}
			if err := k.escrow.PausePayment(ctx, paymentID(lease.Id)); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		d.Count++
		if err := k.DownLeases.Set(ctx, dk, d); err != nil {
			return nil, err
		}
		if err := k.emit(ctx, &types.EventLeaseHealth{Lease: lease.Id, Health: types.LEASE_HEALTH_DOWN, DownCount: d.Count}); err != nil {
			return nil, err
		}
		if d.Count >= params.MaxDownAttestations {
			if err := k.closeLease(ctx, key, lease, types.CLOSE_REASON_WORKLOAD_FAILED, true); err != nil {
				return nil, errorsmod.Wrapf(err, "close %s", msg.Down[i].Name())
			}
			res.Closed++
		}
	}
	return res, nil
}

// leaseStarted counts a provider's new active lease. A provider with none
// before starts answering for its leases now: its silence deadline is
// attest_grace blocks away, and nothing before now is billable.
func (k *Keeper) leaseStarted(ctx context.Context, provider sdk.AccAddress) error {
	rec, err := k.Attestations.Get(ctx, provider)
	if err != nil && !errors.Is(err, collections.ErrNotFound) {
		return err
	}
	if rec.ActiveLeases == 0 {
		params, err := k.Params.Get(ctx)
		if err != nil {
			return err
		}
		if rec.Deadline != 0 { // a sweep entry left from before (cannot happen with no lease, but never leak one)
			if err := k.SilenceQueue.Remove(ctx, collections.Join(rec.Deadline, provider)); err != nil {
				return err
			}
		}
		h := k.height(ctx)
		rec.Height, rec.Time, rec.Silenced = h, k.headers.GetHeaderInfo(ctx).Time, false
		rec.Deadline = h + int64(params.AttestGrace)
		if err := k.SilenceQueue.Set(ctx, collections.Join(rec.Deadline, provider)); err != nil {
			return err
		}
	}
	rec.ActiveLeases++
	return k.Attestations.Set(ctx, provider, rec)
}

// leaseEnded forgets an active lease that closed: it no longer counts, and
// a provider left with none has nothing to attest.
func (k *Keeper) leaseEnded(ctx context.Context, provider sdk.AccAddress, key BidKey) error {
	if err := k.DownLeases.Remove(ctx, collections.Join(provider, key)); err != nil {
		return err
	}
	rec, err := k.Attestations.Get(ctx, provider)
	if errors.Is(err, collections.ErrNotFound) {
		return nil // a lease from before attestations were kept
	}
	if err != nil {
		return err
	}
	if rec.ActiveLeases > 0 {
		rec.ActiveLeases--
	}
	if rec.ActiveLeases == 0 && rec.Deadline != 0 {
		if err := k.SilenceQueue.Remove(ctx, collections.Join(rec.Deadline, provider)); err != nil {
			return err
		}
		rec.Deadline = 0
	}
	return k.Attestations.Set(ctx, provider, rec)
}

// silences is the sweep over providers whose silence deadline came.
func (k *Keeper) silences() sweep.Queue[int64, sdk.AccAddress] {
	return sweep.Queue[int64, sdk.AccAddress]{Module: types.ModuleName, Name: "silences", Set: k.SilenceQueue, Parked: k.Parked,
		Describe: func(p sdk.AccAddress) string { return "silence of provider " + p.String() }}
}

// silent handles a provider that has not attested for attest_grace blocks:
// slashed silence_slash to the community pool once per silence, its active
// leases closed as provider_unresponsive, at most max_sweeps_per_block of
// them per block (the rest in the next block).
func (k *Keeper) silent(ctx context.Context, provider sdk.AccAddress) error {
	rec, err := k.Attestations.Get(ctx, provider)
	if err != nil {
		return err
	}
	rec.Deadline = 0
	if rec.ActiveLeases == 0 {
		return k.Attestations.Set(ctx, provider, rec)
	}
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	h := k.height(ctx)
	if !rec.Silenced {
		rec.Silenced = true
		slashed, err := k.providers.Slash(ctx, provider, params.SilenceSlash, types.CLOSE_REASON_PROVIDER_UNRESPONSIVE.ReasonString(), "")
		if err != nil {
			return err
		}
		elapsed := uint64(max(h-rec.Height, 0))
		upBlocks := min(elapsed, 2*params.AttestInterval)
		if err := k.providers.RecordUptime(ctx, provider, upBlocks*uint64(rec.ActiveLeases), elapsed*uint64(rec.ActiveLeases), h, params.UptimeWindow, true, 0); err != nil {
			return err
		}
		if err := k.emit(ctx, &types.EventProviderSilent{Provider: provider.String(), LastAttested: rec.Height, ActiveLeases: rec.ActiveLeases, Slashed: slashed}); err != nil {
			return err
		}
	}
	if err := k.Attestations.Set(ctx, provider, rec); err != nil {
		return err
	}
	// Close its active leases, a bounded number per block: the walk stops
	// at the first active lease past the bound.
	var due []collections.KeyValue[BidKey, types.Lease]
	it, err := k.Leases.Indexes.Provider.MatchExact(ctx, provider)
	if err != nil {
		return err
	}
	more := false
	for ; it.Valid(); it.Next() {
		key, err := it.PrimaryKey()
		if err != nil {
			it.Close()
			return err
		}
		lease, err := k.Leases.Get(ctx, key)
		if err != nil {
			it.Close()
			return err
		}
		if lease.State != types.LEASE_STATE_ACTIVE {
			continue
		}
		if len(due) == int(params.MaxSweepsPerBlock) {
			more = true
			break
		}
		due = append(due, collections.KeyValue[BidKey, types.Lease]{Key: key, Value: lease})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, kv := range due {
		// Another close in this loop may have closed the deployment, and
		// this lease with it.
		if has, err := k.Leases.Has(ctx, kv.Key); err != nil {
			return err
		} else if !has {
			continue
		}
		if err := k.closeLease(ctx, kv.Key, kv.Value, types.CLOSE_REASON_PROVIDER_UNRESPONSIVE, true); err != nil {
			return err
		}
	}
	if err := k.providers.RecordUptime(ctx, provider, 0, 0, h, params.UptimeWindow, false, uint64(len(due))); err != nil {
		return err
	}
	if !more {
		return nil
	}
	rec, err = k.Attestations.Get(ctx, provider)
	if err != nil {
		return err
	}
	if rec.ActiveLeases == 0 {
		return nil
	}
	rec.Deadline = h + 1
	if err := k.SilenceQueue.Set(ctx, collections.Join(rec.Deadline, provider)); err != nil {
		return err
	}
	return k.Attestations.Set(ctx, provider, rec)
}

// BillableUntil implements escrow's hook: a provider is paid up to its last
// attestation. A close pays past it only while the provider is within two
// attest intervals of it (it is attesting as it should); once it is
// overdue or was found silent, what accrued after it is refunded.
func (h escrowHooks) BillableUntil(ctx context.Context, provider string, closing bool) (time.Time, bool, error) {
	addr, err := h.k.addr("provider", provider)
	if err != nil {
		return time.Time{}, false, err
	}
	rec, err := h.k.Attestations.Get(ctx, addr)
	if errors.Is(err, collections.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	if !closing {
		return rec.Time, true, nil
	}
	params, err := h.k.Params.Get(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	if rec.Silenced || h.k.height(ctx) > rec.Height+2*int64(params.AttestInterval) {
		return rec.Time, true, nil
	}
	return time.Time{}, false, nil
}

// reliable refuses a provider whose reliability score is below the
// group's min_reliability.
func reliable(spec types.GroupSpec, p providertypes.Provider) error {
	least := spec.MinReliability
	if least.IsNil() || !least.IsPositive() {
		return nil
	}
	if score := p.Stats.Reliability(); score.LT(least) {
		return errorsmod.Wrapf(types.ErrBelowReliability, "%s scores %s; the group asks at least %s", p.Owner, score, least)
	}
	return nil
}
