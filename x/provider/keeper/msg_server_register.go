package keeper

import (
	"context"
	"errors"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/provider/types"
)

// RegisterProvider registers the sender as a provider and moves its bond
// into the module account.
func (k msgServer) RegisterProvider(ctx context.Context, msg *types.MsgRegisterProvider) (*types.MsgRegisterProviderResponse, error) {
	// 1. Who.
	owner, err := k.parseAddress("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	// 2. Not registered yet.
	if _, err := k.Providers.Get(ctx, owner); err == nil {
		return nil, errorsmod.Wrapf(types.ErrProviderExists, "%s; use update-provider to change it", msg.Owner)
	} else if !errors.Is(err, collections.ErrNotFound) {
		return nil, err
	}
	// 3. What it declares.
	if err := msg.Description().Validate(); err != nil {
		return nil, err
	}
	// 4. The bond: right denom, at least min_bond.
	params, err := k.checkBondCoin(ctx, "bond", msg.Bond)
	if err != nil {
		return nil, err
	}
	if msg.Bond.Amount.LT(params.MinBond.Amount) {
		return nil, errorsmod.Wrapf(types.ErrBondBelowMinimum, "bond %s is below the minimum %s", msg.Bond, params.MinBond)
	}
	// 5. Move the bond and store the record.
	if err := k.bank.SendCoinsFromAccountToModule(ctx, owner, types.ModuleName, sdk.NewCoins(msg.Bond)); err != nil {
		return nil, errorsmod.Wrap(err, "bond")
	}
	p := types.Provider{
		Owner:         msg.Owner,
		HostUri:       msg.HostUri,
		TlsCertSha256: msg.TlsCertSha256,
		Attributes:    msg.Attributes,
		Gpus:          msg.Gpus,
		Capacity:      msg.Capacity,
		Info:          msg.Info,
		Bond:          msg.Bond,
	}
	if err := k.setProvider(ctx, owner, nil, p); err != nil {
		return nil, err
	}
	return &types.MsgRegisterProviderResponse{}, k.emit(ctx, &types.EventProviderRegistered{Owner: msg.Owner, HostUri: msg.HostUri, Bond: msg.Bond})
}

// UpdateProvider replaces the provider's description; owner, bond and stats
// stay.
func (k msgServer) UpdateProvider(ctx context.Context, msg *types.MsgUpdateProvider) (*types.MsgUpdateProviderResponse, error) {
	owner, err := k.parseAddress("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	old, err := k.GetProvider(ctx, owner)
	if err != nil {
		return nil, err
	}
	if err := msg.Description().Validate(); err != nil {
		return nil, err
	}
	p := old
	p.HostUri = msg.HostUri
	p.TlsCertSha256 = msg.TlsCertSha256
	p.Attributes = msg.Attributes
	p.Gpus = msg.Gpus
	p.Capacity = msg.Capacity
	p.Info = msg.Info
	if err := k.setProvider(ctx, owner, &old, p); err != nil {
		return nil, err
	}
	return &types.MsgUpdateProviderResponse{}, k.emit(ctx, &types.EventProviderUpdated{Owner: msg.Owner})
}
