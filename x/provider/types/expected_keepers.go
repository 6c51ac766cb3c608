package types

import (
	"context"

	sdk "github.com/cosmos/cosmos-sdk/types"
)

// BankKeeper is what x/provider needs from x/bank: moving bonds in and out of
// its module account.
type BankKeeper interface {
	SendCoinsFromAccountToModule(ctx context.Context, from sdk.AccAddress, module string, amt sdk.Coins) error
	SendCoinsFromModuleToAccount(ctx context.Context, module string, to sdk.AccAddress, amt sdk.Coins) error
	GetBalance(ctx context.Context, addr sdk.AccAddress, denom string) sdk.Coin
}

// MarketKeeper is the narrow view x/provider has of x/market: whether a
// provider still has work that its bond must stand behind.
type MarketKeeper interface {
	ProviderHasLiveWork(ctx context.Context, owner sdk.AccAddress) (bool, error)
}

// CommunityPool is x/distribution's community pool: where slashed bonds go,
// never to a counterparty.
type CommunityPool interface {
	FundCommunityPool(ctx context.Context, amount sdk.Coins, sender sdk.AccAddress) error
}
