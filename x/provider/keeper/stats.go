package keeper

import (
	"context"
	"errors"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/provider/types"
)

// StatEvent is something x/market reports about a provider's lease.
type StatEvent int

// The lease outcomes x/market reports.
const (
	StatLeaseWon StatEvent = iota + 1
	StatStartedOnTime
	StatStartFailure
	StatClosedByProvider
	// StatUnresponsive: a lease closed because its provider fell silent;
	// StatSilence: the provider was slashed for a silence.
	StatUnresponsive
	StatSilence
)

// RecordStat counts one lease outcome for owner. A provider that has since
// deregistered is skipped: there is no record left to score.
func (k *Keeper) RecordStat(ctx context.Context, owner sdk.AccAddress, ev StatEvent) error {
	p, err := k.Providers.Get(ctx, owner)
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch ev {
	case StatLeaseWon:
		p.Stats.LeasesWon++
	case StatStartedOnTime:
		p.Stats.LeasesStartedOnTime++
	case StatStartFailure:
		p.Stats.StartFailures++
	case StatClosedByProvider:
		p.Stats.LeasesClosedByProvider++
	case StatUnresponsive:
		p.Stats.LeasesUnresponsive++
	case StatSilence:
		p.Stats.Silences++
	default:
		return errors.New("unknown provider stat event")
	}
	return k.Providers.Set(ctx, owner, p)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	return err
}

// RecordLeaseWon counts a won lease (x/market).
func (k *Keeper) RecordLeaseWon(ctx context.Context, owner sdk.AccAddress) error {
	return k.RecordStat(ctx, owner, StatLeaseWon)
}

// RecordStartedOnTime counts a lease started before its deadline.
func (k *Keeper) RecordStartedOnTime(ctx context.Context, owner sdk.AccAddress) error {
	return k.RecordStat(ctx, owner, StatStartedOnTime)
}

// RecordStartFailure counts a lease not started in time.
func (k *Keeper) RecordStartFailure(ctx context.Context, owner sdk.AccAddress) error {
	return k.RecordStat(ctx, owner, StatStartFailure)
}

// RecordClosedByProvider counts a lease the provider walked away from.
func (k *Keeper) RecordClosedByProvider(ctx context.Context, owner sdk.AccAddress) error {
	return k.RecordStat(ctx, owner, StatClosedByProvider)
}

// RecordUnresponsive counts a lease closed because its provider was silent.
func (k *Keeper) RecordUnresponsive(ctx context.Context, owner sdk.AccAddress) error {
	return k.RecordStat(ctx, owner, StatUnresponsive)
}

// RecordSilence counts a silence the provider was slashed for.
func (k *Keeper) RecordSilence(ctx context.Context, owner sdk.AccAddress) error {
	return k.RecordStat(ctx, owner, StatSilence)
}

// RecordUptime counts lease-blocks, up of total, at height into the
// provider's uptime window of window blocks.
func (k *Keeper) RecordUptime(ctx context.Context, owner sdk.AccAddress, up, total uint64, height int64, window uint64) error {
	p, err := k.Providers.Get(ctx, owner)
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p.Stats.AddUptime(up, total, height, window)
	return k.Providers.Set(ctx, owner, p)
}

// LivenessParams are the params of attestation x/market applies.
func (k *Keeper) LivenessParams(ctx context.Context) (types.Params, error) {
	return k.Params.Get(ctx)
}

// MigrateLivenessParams is x/provider's state migration 1 → 2: the
// liveness params get their defaults.
func (k *Keeper) MigrateLivenessParams(ctx context.Context) error {
	p, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	p = p.WithLivenessDefaults()
	if err := p.Validate(); err != nil {
		return err
	}
	return k.Params.Set(ctx, p)
}

// StartFailureSlash is the fraction slashed for a lease not started in time.
func (k *Keeper) StartFailureSlash(ctx context.Context) (sdkmath.LegacyDec, error) {
	p, err := k.Params.Get(ctx)
	if err != nil {
		return sdkmath.LegacyDec{}, err
	}
	return p.StartFailureSlash, nil
}
