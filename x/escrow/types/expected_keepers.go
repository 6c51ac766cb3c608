package types

import (
	"context"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"
)

// BankKeeper moves coins in and out of the escrow module account.
type BankKeeper interface {
	SendCoins(ctx context.Context, from, to sdk.AccAddress, amt sdk.Coins) error
	SendCoinsFromAccountToModule(ctx context.Context, from sdk.AccAddress, module string, amt sdk.Coins) error
	SendCoinsFromModuleToAccount(ctx context.Context, module string, to sdk.AccAddress, amt sdk.Coins) error
	SendCoinsFromModuleToModule(ctx context.Context, from, to string, amt sdk.Coins) error
	GetBalance(ctx context.Context, addr sdk.AccAddress, denom string) sdk.Coin
	GetAllBalances(ctx context.Context, addr sdk.AccAddress) sdk.Coins
}

// Hooks let x/market react to what escrow decides on its own.
type Hooks interface {
	// OnAccountDepleted runs when EndBlock closes an account that ran dry.
	// The account is settled and every payment paid out already; the hook
	// closes the leases behind the payments and must not call back into
	// escrow for them.
	OnAccountDepleted(ctx context.Context, id AccountID, payments []PaymentID) error
	// BillableUntil is the time up to which provider's payments may be paid
	// out: its last attestation. A withdrawal (closing false) never pays
	// past it; a close pays past it only while the provider is not
	// overdue, and otherwise gives what accrued after it back to the
	// account. ok false: no limit.
	BillableUntil(ctx context.Context, provider string, closing bool) (until time.Time, ok bool, err error)
}

// AccountKeeper creates the escrow module account at genesis, so that
// deposits can be sent to its address without looking it up each time.
type AccountKeeper interface {
	GetModuleAccount(ctx context.Context, name string) sdk.ModuleAccountI
}
