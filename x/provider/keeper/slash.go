package keeper

import (
	"context"

	errorsmod "cosmossdk.io/errors"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/provider/types"
)

// CommunityPoolRecipient is the recipient EventProviderSlashed names: slashed
// bonds go to x/distribution's community pool.
const CommunityPoolRecipient = "community_pool"

// SlashAmounts splits a slash of fraction × (bond + Σ unbonding) between the
// active bond and the unbonding entries: the bond pays first, then entries
// oldest first. The total is truncated to whole ugpn, so rounding favours the
// provider by less than 1ugpn and never creates coins. It returns the total
// and what each source pays (fromBond, then one amount per entry).
func SlashAmounts(fraction sdkmath.LegacyDec, bond sdkmath.Int, unbonding []sdkmath.Int) (total, fromBond sdkmath.Int, fromEntries []sdkmath.Int) {
	stake := bond
	for _, u := range unbonding {
		stake = stake.Add(u)
	}
	total = fraction.MulInt(stake).TruncateInt()
	left := total
	fromBond = sdkmath.MinInt(left, bond)
	left = left.Sub(fromBond)
	fromEntries = make([]sdkmath.Int, len(unbonding))
	for i, u := range unbonding {
		fromEntries[i] = sdkmath.MinInt(left, u)
		left = left.Sub(fromEntries[i])
	}
	return total, fromBond, fromEntries
}

// Slash takes fraction of owner's stake (active bond and unbonding entries)
// and pays it to the community pool (never to a counterparty: nobody gains
// from a provider's failure), recording reason and the lease that caused it.
// It returns what was taken; zero when the provider has nothing left.
func (k *Keeper) Slash(ctx context.Context, owner sdk.AccAddress, fraction sdkmath.LegacyDec, reason, lease string) (sdk.Coin, error) {
	if fraction.IsNil() || fraction.IsNegative() || fraction.GT(sdkmath.LegacyOneDec()) {
		return sdk.Coin{}, errorsmod.Wrapf(types.ErrInvalidSlash, "fraction %s outside [0, 1]", fraction)
	}
	params, err := k.Params.Get(ctx)
	if err != nil {
		return sdk.Coin{}, err
	}
	denom := params.MinBond.Denom
	ownerStr := k.mustString(owner)

	bond := sdkmath.ZeroInt()
	p, err := k.Providers.Get(ctx, owner)
	registered := err == nil
	if registered {
		bond = p.Bond.Amount
	} else if err := ignoreNotFound(err); err != nil {
		return sdk.Coin{}, err
	}
	entries, err := k.OwnerUnbondings(ctx, owner)
	if err != nil {
		return sdk.Coin{}, err
	}
	amounts := make([]sdkmath.Int, len(entries))
	for i, e := range entries {
		amounts[i] = e.Amount.Amount
	}
	total, fromBond, fromEntries := SlashAmounts(fraction, bond, amounts)
	if total.IsZero() {
		return sdk.NewCoin(denom, total), nil
	}

	if registered && fromBond.IsPositive() {
		old := p
		p.Bond = sdk.NewCoin(denom, p.Bond.Amount.Sub(fromBond))
		if err := k.setProvider(ctx, owner, &old, p); err != nil {
			return sdk.Coin{}, err
		}
	}
	for i, e := range entries {
		take := fromEntries[i]
		if !take.IsPositive() {
			continue
		}
		if take.Equal(e.Amount.Amount) {
			if err := k.removeUnbonding(ctx, owner, e); err != nil {
				return sdk.Coin{}, err
			}
			continue
		}
		e.Amount = sdk.NewCoin(denom, e.Amount.Amount.Sub(take))
		if err := k.Unbondings.Set(ctx, e.Id, e); err != nil {
			return sdk.Coin{}, err
		}
	}
	slashed := sdk.NewCoin(denom, total)
	if err := k.pool.FundCommunityPool(ctx, sdk.NewCoins(slashed), authtypes.NewModuleAddress(types.ModuleName)); err != nil {
		return sdk.Coin{}, err
	}
	return slashed, k.emit(ctx, &types.EventProviderSlashed{
		Owner: ownerStr, Reason: reason, Lease: lease, Amount: slashed, Recipient: CommunityPoolRecipient,
	})
}
