// Package keeper holds x/provider's state and the logic over it: the
// registry, bonds, the unbonding queue, slashing and stats.
package keeper

import (
	"context"
	"errors"
	"fmt"
	"github.com/gpunet/gpunet/x/internal/sweep"
	"time"

	"google.golang.org/protobuf/runtime/protoiface"

	"cosmossdk.io/collections"
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/event"
	"cosmossdk.io/core/header"
	"cosmossdk.io/core/store"
	errorsmod "cosmossdk.io/errors"

	"github.com/cosmos/cosmos-sdk/codec"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/provider/types"
)

// Keeper owns x/provider's state.
type Keeper struct {
	cdc          codec.BinaryCodec
	addressCodec address.Codec
	events       event.Service
	headers      header.Service
	authority    string
	bank         types.BankKeeper
	pool         types.CommunityPool
	market       types.MarketKeeper

	Schema collections.Schema
	Params collections.Item[types.Params]
	// Providers by owner.
	Providers collections.Map[sdk.AccAddress, types.Provider]
	// ProvidersByModel indexes providers by each GPU model slug they declare.
	ProvidersByModel collections.KeySet[collections.Pair[string, sdk.AccAddress]]
	// Unbondings by entry id.
	Unbondings collections.Map[uint64, types.UnbondingEntry]
	// UnbondingQueue orders entries by completion time for EndBlock.
	// Parked holds the due entries EndBlock could not process.
	Parked         sweep.Parked
	UnbondingQueue collections.KeySet[collections.Pair[time.Time, uint64]]
	// UnbondingsByOwner lists each owner's entries.
	UnbondingsByOwner collections.KeySet[collections.Pair[sdk.AccAddress, uint64]]
	NextUnbondingID   collections.Sequence
}

// NewKeeper builds the keeper and its schema.
func NewKeeper(
	cdc codec.BinaryCodec,
	addressCodec address.Codec,
	storeService store.KVStoreService,
	events event.Service,
	headers header.Service,
	bank types.BankKeeper,
	pool types.CommunityPool,
	authority string,
) (*Keeper, error) {
	if _, err := addressCodec.StringToBytes(authority); err != nil {
		return nil, fmt.Errorf("invalid authority address %q: %w", authority, err)
	}
	sb := collections.NewSchemaBuilder(storeService)
	k := &Keeper{
		cdc:          cdc,
		addressCodec: addressCodec,
		events:       events,
		headers:      headers,
		authority:    authority,
		bank:         bank,
		pool:         pool,

		Params:            collections.NewItem(sb, types.ParamsKey, "params", codec.CollValue[types.Params](cdc)),
		Parked:            sweep.NewParked(sb, types.ParkedKey, cdc),
		Providers:         collections.NewMap(sb, types.ProvidersKey, "providers", sdk.AccAddressKey, codec.CollValue[types.Provider](cdc)),
		ProvidersByModel:  collections.NewKeySet(sb, types.ProvidersByModelKey, "providers_by_model", collections.PairKeyCodec(collections.StringKey, sdk.AccAddressKey)),
		Unbondings:        collections.NewMap(sb, types.UnbondingsKey, "unbondings", collections.Uint64Key, codec.CollValue[types.UnbondingEntry](cdc)),
		UnbondingQueue:    collections.NewKeySet(sb, types.UnbondingQueueKey, "unbonding_queue", collections.PairKeyCodec(sdk.TimeKey, collections.Uint64Key)),
		UnbondingsByOwner: collections.NewKeySet(sb, types.UnbondingsByOwnerKey, "unbondings_by_owner", collections.PairKeyCodec(sdk.AccAddressKey, collections.Uint64Key)),
		NextUnbondingID:   collections.NewSequence(sb, types.NextUnbondingIDKey, "next_unbonding_id"),
	}
	schema, err := sb.Build()
	if err != nil {
		return nil, err
	}
	k.Schema = schema
	return k, nil
}

// SetMarketKeeper connects x/market, which tells x/provider whether a
// provider still has open bids or live leases. Without it no provider has any.
func (k *Keeper) SetMarketKeeper(m types.MarketKeeper) { k.market = m }

// Authority is the address allowed to update params.
func (k *Keeper) Authority() string { return k.authority }

// GetProvider returns the provider owned by owner, or ErrProviderNotFound.
func (k *Keeper) GetProvider(ctx context.Context, owner sdk.AccAddress) (types.Provider, error) {
	p, err := k.Providers.Get(ctx, owner)
	if errors.Is(err, collections.ErrNotFound) {
		return types.Provider{}, errorsmod.Wrapf(types.ErrProviderNotFound, "%s", k.mustString(owner))
	}
	return p, err
}

// HasMinBond reports whether a provider record (already read) is bonded at
// least min_bond. It is compared with the current min_bond, so a params
// change takes effect at once.
func (k *Keeper) HasMinBond(ctx context.Context, p types.Provider) (bool, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return false, err
	}
	return p.Bond.Amount.GTE(params.MinBond.Amount), nil
}

// setProvider stores p, keeps the model index in step with old (nil for a
// new provider) and recomputes its status, emitting an event on change.
func (k *Keeper) setProvider(ctx context.Context, owner sdk.AccAddress, old *types.Provider, p types.Provider) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	p.Status = types.PROVIDER_STATUS_ACTIVE
	if p.Bond.Amount.LT(params.MinBond.Amount) {
		p.Status = types.PROVIDER_STATUS_UNDERBONDED
	}
	if old != nil {
		for _, m := range old.GPUModels() {
			if err := k.ProvidersByModel.Remove(ctx, collections.Join(m, owner)); err != nil {
				return err
			}
		}
		if old.Status != p.Status {
			if err := k.emit(ctx, &types.EventProviderStatusChanged{Owner: p.Owner, Status: p.Status.String()}); err != nil {
				return err
			}
		}
	}
	for _, m := range p.GPUModels() {
		if err := k.ProvidersByModel.Set(ctx, collections.Join(m, owner)); err != nil {
			return err
		}
	}
	return k.Providers.Set(ctx, owner, p)
}

func (k *Keeper) removeProvider(ctx context.Context, owner sdk.AccAddress, p types.Provider) error {
	for _, m := range p.GPUModels() {
		if err := k.ProvidersByModel.Remove(ctx, collections.Join(m, owner)); err != nil {
			return err
		}
	}
	return k.Providers.Remove(ctx, owner)
}

func (k *Keeper) emit(ctx context.Context, ev protoiface.MessageV1) error {
	return k.events.EventManager(ctx).Emit(ctx, ev)
}

func (k *Keeper) blockTime(ctx context.Context) time.Time {
	return k.headers.GetHeaderInfo(ctx).Time
}

func (k *Keeper) parseAddress(field, s string) (sdk.AccAddress, error) {
	bz, err := k.addressCodec.StringToBytes(s)
	if err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidAddress, "%s %q: %v", field, s, err)
	}
	return bz, nil
}

func (k *Keeper) mustString(addr sdk.AccAddress) string {
	s, err := k.addressCodec.BytesToString(addr)
	if err != nil {
		return fmt.Sprintf("%X", []byte(addr))
	}
	return s
}
