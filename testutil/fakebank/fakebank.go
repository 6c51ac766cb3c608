// Package fakebank is a small map-backed bank for keeper unit tests: it
// moves coins between accounts and module accounts and refuses overdrafts
// with the SDK's insufficient-funds error, which is all gpunet's keepers ask
// of x/bank.
package fakebank

import (
	"context"

	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
)

// Bank holds balances by bech32-independent address string.
type Bank struct{ Balances map[string]sdk.Coins }

// New returns an empty bank.
func New() *Bank { return &Bank{Balances: map[string]sdk.Coins{}} }

// Fund gives addr coins out of thin air (test setup only).
func (b *Bank) Fund(addr sdk.AccAddress, coins ...sdk.Coin) {
	b.Balances[string(addr)] = b.Balances[string(addr)].Add(sdk.NewCoins(coins...)...)
}

// Of is addr's balance of denom as an int64.
func (b *Bank) Of(addr sdk.AccAddress, denom string) int64 {
	return b.Balances[string(addr)].AmountOf(denom).Int64()
}

func (b *Bank) send(from, to sdk.AccAddress, amt sdk.Coins) error {
	have := b.Balances[string(from)]
	if !have.IsAllGTE(amt) {
		return errorsmod.Wrapf(sdkerrors.ErrInsufficientFunds, "%s is smaller than %s", have, amt)
	}
	b.Balances[string(from)] = have.Sub(amt...)
	b.Balances[string(to)] = b.Balances[string(to)].Add(amt...)
	return nil
}

// SendCoinsFromAccountToModule implements the keepers' BankKeeper.
func (b *Bank) SendCoinsFromAccountToModule(_ context.Context, from sdk.AccAddress, module string, amt sdk.Coins) error {
	return b.send(from, authtypes.NewModuleAddress(module), amt)
}

// SendCoins implements the keepers' BankKeeper.
func (b *Bank) SendCoins(_ context.Context, from, to sdk.AccAddress, amt sdk.Coins) error {
	return b.send(from, to, amt)
}

// GetModuleAccount implements the keepers' AccountKeeper: a module account
// is its address here.
func (b *Bank) GetModuleAccount(_ context.Context, name string) sdk.ModuleAccountI {
	return authtypes.NewEmptyModuleAccount(name)
}

// SendCoinsFromModuleToAccount implements the keepers' BankKeeper.
func (b *Bank) SendCoinsFromModuleToAccount(_ context.Context, module string, to sdk.AccAddress, amt sdk.Coins) error {
	return b.send(authtypes.NewModuleAddress(module), to, amt)
}

// SendCoinsFromModuleToModule implements the keepers' BankKeeper.
func (b *Bank) SendCoinsFromModuleToModule(_ context.Context, from, to string, amt sdk.Coins) error {
	return b.send(authtypes.NewModuleAddress(from), authtypes.NewModuleAddress(to), amt)
}

// SpendableCoin implements the keepers' BankKeeper: nothing is locked here.
func (b *Bank) SpendableCoin(ctx context.Context, addr sdk.AccAddress, denom string) sdk.Coin {
	return b.GetBalance(ctx, addr, denom)
}

// GetBalance implements the keepers' BankKeeper.
func (b *Bank) GetBalance(_ context.Context, addr sdk.AccAddress, denom string) sdk.Coin {
	return sdk.NewCoin(denom, b.Balances[string(addr)].AmountOf(denom))
}

// GetAllBalances implements the keepers' BankKeeper.
func (b *Bank) GetAllBalances(_ context.Context, addr sdk.AccAddress) sdk.Coins {
	return b.Balances[string(addr)]
}

// FundCommunityPool is x/distribution's: sender's coins go to the
// distribution module account (PoolAddress), which holds the pool.
func (b *Bank) FundCommunityPool(ctx context.Context, amount sdk.Coins, sender sdk.AccAddress) error {
	return b.send(sender, PoolAddress, amount)
}

// PoolAddress is where FundCommunityPool puts coins: the distribution
// module account.
var PoolAddress = authtypes.NewModuleAddress("distribution")
