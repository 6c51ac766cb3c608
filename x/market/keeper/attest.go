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
	params, err := k.providers.LivenessParams(ctx)
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
	// Every named lease must be one of the provider's active leases, named
	// once (by its key: an address may be spelled more than one way).
	seen := make(map[string]bool, len(msg.Down)+len(msg.Degraded))
	check := func(id types.OrderID) (BidKey, types.Lease, error) {
		key, lease, err := k.getLease(ctx, types.BidID{Order: id, Provider: msg.Provider})
		if errors.Is(err, types.ErrLeaseNotFound) || (err == nil && lease.State != types.LEASE_STATE_ACTIVE) {
			return key, lease, errorsmod.Wrapf(types.ErrInvalidAttestation, "%s is not an active lease of %s", id.Name(), msg.Provider)
		}
		if err != nil {
			return key, lease, err
		}
		name := bidName(key)
		if seen[name] {
			return key, lease, errorsmod.Wrapf(types.ErrInvalidAttestation, "lease %s is named twice", id.Name())
		}
		seen[name] = true
		return key, lease, nil
	}
	down := make([]collections.KeyValue[BidKey, types.Lease], len(msg.Down))
	isDown := make(map[string]bool, len(msg.Down))
	for i, id := range msg.Down {
		key, lease, err := check(id)
		if err != nil {
			return nil, err
		}
		down[i] = collections.KeyValue[BidKey, types.Lease]{Key: key, Value: lease}
		isDown[bidName(key)] = true
	}
	degraded := make([]types.BidID, len(msg.Degraded))
	for i, id := range msg.Degraded {
		_, lease, err := check(id)
		if err != nil {
			return nil, err
		}
		degraded[i] = lease.Id
	}

	// The provider's record first: the leases below are billed as of now.
	h, now := k.height(ctx), k.headers.GetHeaderInfo(ctx).Time
	if err := k.countUptime(ctx, provider, &rec, params, h, uint32(len(down))); err != nil {
		return nil, err
	}
	if rec.Deadline != 0 {
		if err := k.SilenceQueue.Remove(ctx, collections.Join(rec.Deadline, provider)); err != nil {
			return nil, err
		}
	}
	rec.Height, rec.Time, rec.Silenced, rec.Down = h, now, false, uint32(len(down))
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
	for _, id := range degraded {
		if err := k.emit(ctx, &types.EventLeaseHealth{Lease: id, Health: types.LEASE_HEALTH_DEGRADED}); err != nil {
			return nil, err
		}
	}
	// Leases down now stop paying; down too long, they close.
	res := &types.MsgAttestResponse{}
	for i, kv := range down {
		key, lease := kv.Key, kv.Value
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
		params, err := k.providers.LivenessParams(ctx)
		if err != nil {
			return err
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
// leases closed as provider_unresponsive. budget is what the block's
// silence sweep may still spend, in leases visited: one provider's leases
// past it, or providers past it, wait for the next block.
func (k *Keeper) silent(ctx context.Context, provider sdk.AccAddress, budget *int) error {
	rec, err := k.Attestations.Get(ctx, provider)
	if err != nil {
		return err
	}
	h := k.height(ctx)
	// An entry that is not the provider's deadline (one put back from the
	// parked list after the provider attested again) is stale.
	if rec.Deadline == 0 || rec.Deadline > h {
		return nil
	}
	rec.Deadline = 0
	if rec.ActiveLeases == 0 {
		return k.Attestations.Set(ctx, provider, rec)
	}
	if *budget <= 0 {
		return k.requeueSilent(ctx, provider, rec, h)
	}
	params, err := k.providers.LivenessParams(ctx)
	if err != nil {
		return err
	}
	if !rec.Silenced {
		rec.Silenced = true
		slashed, err := k.providers.Slash(ctx, provider, params.SilenceSlash, types.CLOSE_REASON_PROVIDER_UNRESPONSIVE.ReasonString(), "")
		if err != nil {
			return err
		}
		if err := k.countUptime(ctx, provider, &rec, params, h, rec.Down); err != nil {
			return err
		}
		if err := k.providers.RecordSilence(ctx, provider); err != nil {
			return err
		}
		if err := k.emit(ctx, &types.EventProviderSilent{Provider: provider.String(), LastAttested: rec.Height, ActiveLeases: rec.ActiveLeases, Slashed: slashed}); err != nil {
			return err
		}
	}
	if err := k.Attestations.Set(ctx, provider, rec); err != nil {
		return err
	}
	// Close its active leases while the budget lasts; every lease the walk
	// passes, pending ones too, spends it.
	var due []collections.KeyValue[BidKey, types.Lease]
	it, err := k.Leases.Indexes.Provider.MatchExact(ctx, provider)
	if err != nil {
		return err
	}
	more := false
	for ; it.Valid(); it.Next() {
		if *budget <= 0 {
			more = true
			break
		}
		*budget--
		key, err := it.PrimaryKey()
		if err != nil {
			return errors.Join(err, it.Close())
		}
		lease, err := k.Leases.Get(ctx, key)
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if lease.State == types.LEASE_STATE_ACTIVE {
			due = append(due, collections.KeyValue[BidKey, types.Lease]{Key: key, Value: lease})
		}
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
	if !more {
		return nil
	}
	if rec, err = k.Attestations.Get(ctx, provider); err != nil {
		return err
	}
	return k.requeueSilent(ctx, provider, rec, h)
}

// requeueSilent puts a silent provider with leases left back on the silence
// queue for the next block.
func (k *Keeper) requeueSilent(ctx context.Context, provider sdk.AccAddress, rec types.Attestation, h int64) error {
	if rec.ActiveLeases == 0 {
		rec.Deadline = 0
		return k.Attestations.Set(ctx, provider, rec)
	}
	rec.Deadline = h + 1
	if err := k.SilenceQueue.Set(ctx, collections.Join(rec.Deadline, provider)); err != nil {
		return err
	}
	return k.Attestations.Set(ctx, provider, rec)
}

// countUptime adds the lease-blocks since they were last counted to the
// provider's uptime: all its active leases in total; as up, those not
// attested down, for at most two attest intervals after its last
// attestation (past that it was overdue).
func (k *Keeper) countUptime(ctx context.Context, provider sdk.AccAddress, rec *types.Attestation, params providertypes.Params, h int64, down uint32) error {
	from := max(rec.Height, rec.UptimeCounted)
	elapsed := uint64(max(h-from, 0))
	upBlocks := uint64(max(min(h, overdueAfter(*rec, params))-from, 0))
	running := uint64(0)
	if rec.ActiveLeases > down {
		running = uint64(rec.ActiveLeases - down)
	}
	rec.UptimeCounted = h
	return k.providers.RecordUptime(ctx, provider, upBlocks*running, elapsed*uint64(rec.ActiveLeases), h, params.UptimeWindow)
}

// overdueAfter is the last height at which a provider that attested at
// rec.Height is on time: two attest intervals later. Past it, a close pays
// only up to its last attestation, and its leases count as down.
func overdueAfter(rec types.Attestation, params providertypes.Params) int64 {
	return rec.Height + 2*int64(params.AttestInterval)
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
	params, err := h.k.providers.LivenessParams(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	if rec.Silenced || h.k.height(ctx) > overdueAfter(rec, params) {
		return rec.Time, true, nil
	}
	return time.Time{}, false, nil
}

// reliable refuses a provider whose reliability score is below the
// group's min_reliability.
func reliable(spec types.GroupSpec, p providertypes.Provider) error {
	least, ok := spec.LeastReliability()
	if !ok {
		return nil
	}
	if score := p.Stats.Reliability(); score.LT(least) {
		return errorsmod.Wrapf(types.ErrBelowReliability, "%s scores %s; the group asks at least %s", p.Owner, score, least)
	}
	return nil
}
