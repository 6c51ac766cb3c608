package types

import (
	"context"

	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// BankKeeper moves bid deposits.
type BankKeeper interface {
	SendCoins(ctx context.Context, from, to sdk.AccAddress, amt sdk.Coins) error
	SendCoinsFromAccountToModule(ctx context.Context, from sdk.AccAddress, module string, amt sdk.Coins) error
	SendCoinsFromModuleToAccount(ctx context.Context, module string, to sdk.AccAddress, amt sdk.Coins) error
	GetBalance(ctx context.Context, addr sdk.AccAddress, denom string) sdk.Coin
	SpendableCoin(ctx context.Context, addr sdk.AccAddress, denom string) sdk.Coin
}

// ProviderKeeper is what x/market needs from x/provider.
type ProviderKeeper interface {
	GetProvider(ctx context.Context, owner sdk.AccAddress) (providertypes.Provider, error)
	HasMinBond(ctx context.Context, p providertypes.Provider) (bool, error)
	Slash(ctx context.Context, owner sdk.AccAddress, fraction sdkmath.LegacyDec, reason, lease string) (sdk.Coin, error)
	StartFailureSlash(ctx context.Context) (sdkmath.LegacyDec, error)
	// LivenessParams are x/provider's params: attest_interval,
	// attest_grace, silence_slash, max_down_attestations, uptime_window.
	LivenessParams(ctx context.Context) (providertypes.Params, error)
	RecordLeaseWon(ctx context.Context, owner sdk.AccAddress) error
	RecordStartedOnTime(ctx context.Context, owner sdk.AccAddress) error
	RecordStartFailure(ctx context.Context, owner sdk.AccAddress) error
	RecordClosedByProvider(ctx context.Context, owner sdk.AccAddress) error
	RecordUnresponsive(ctx context.Context, owner sdk.AccAddress) error
	RecordSilence(ctx context.Context, owner sdk.AccAddress) error
	RecordUptime(ctx context.Context, owner sdk.AccAddress, up, total uint64, height int64, window uint64) error
}

// AuditKeeper is what x/market needs from x/audit: whether a provider's
// attributes carry the signatures a group's signed_by names.
type AuditKeeper interface {
	Satisfies(ctx context.Context, owner sdk.AccAddress, requirements []providertypes.Attribute, allOf, anyOf []string) (bool, error)
}

// EscrowKeeper is what x/market needs from x/escrow.
type EscrowKeeper interface {
	CreateAccount(ctx context.Context, id escrowtypes.AccountID, depositor sdk.AccAddress, deposit sdk.Coin) error
	OpenPayment(ctx context.Context, id escrowtypes.PaymentID, rate sdkmath.LegacyDec) error
	WithdrawPayment(ctx context.Context, id escrowtypes.PaymentID) (sdk.Coin, error)
	ClosePayment(ctx context.Context, id escrowtypes.PaymentID, reason string) error
	CloseAccount(ctx context.Context, id escrowtypes.AccountID, reason string) (sdk.Coin, error)
	Refund(ctx context.Context, id escrowtypes.AccountID, amount sdk.Coin) (sdk.Coin, error)
	Charge(ctx context.Context, id escrowtypes.AccountID, amount sdk.Coin, module string) (sdk.Coin, error)
	PausePayment(ctx context.Context, id escrowtypes.PaymentID) error
	ResumePayment(ctx context.Context, id escrowtypes.PaymentID) error
}

// CommunityPool is x/distribution's community pool: slashes, forfeited bid
// deposits and reservation fees go there, never to a counterparty.
type CommunityPool interface {
	FundCommunityPool(ctx context.Context, amount sdk.Coins, sender sdk.AccAddress) error
}

// AccountKeeper gives the public key a provider signs its receipts with,
// and creates the market module account at genesis (bid deposits are sent
// to its address directly).
type AccountKeeper interface {
	GetAccount(ctx context.Context, addr sdk.AccAddress) sdk.AccountI
	GetModuleAccount(ctx context.Context, name string) sdk.ModuleAccountI
}
