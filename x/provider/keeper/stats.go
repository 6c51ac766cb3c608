package keeper

import (
	"context"
	"errors"

	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"
)

// StatEvent is something x/market reports about a provider's lease.
type StatEvent int

// The lease outcomes x/market reports.
const (
	StatLeaseWon StatEvent = iota + 1
	StatStartedOnTime
	StatStartFailure
	StatClosedByProvider
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
