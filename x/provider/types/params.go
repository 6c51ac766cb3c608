package types

import (
	"fmt"
	"time"

	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/internal/coin"
)

// Default params.
var (
	DefaultMinBond               = sdk.NewCoin(coin.Denom, sdkmath.NewInt(500_000_000)) // 500 GPN
	DefaultUnbondingPeriod       = 7 * 24 * time.Hour
	DefaultMaxUnbondingsPerBlock = uint32(100)
	DefaultStartFailureSlash     = sdkmath.LegacyNewDecWithPrec(5, 2) // 5%
)

// DefaultParams returns the params a new chain starts with.
func DefaultParams() Params {
	return Params{
		MinBond:               DefaultMinBond,
		UnbondingPeriod:       DefaultUnbondingPeriod,
		MaxUnbondingsPerBlock: DefaultMaxUnbondingsPerBlock,
		StartFailureSlash:     DefaultStartFailureSlash,
	}
}

// Validate checks params for values that would break the module.
func (p Params) Validate() error {
	if err := p.MinBond.Validate(); err != nil {
		return fmt.Errorf("min_bond: %w", err)
	}
	if !p.MinBond.IsPositive() {
		return fmt.Errorf("min_bond must be positive, got %s", p.MinBond)
	}
	if p.UnbondingPeriod <= 0 {
		return fmt.Errorf("unbonding_period must be positive, got %s", p.UnbondingPeriod)
	}
	if p.MaxUnbondingsPerBlock == 0 {
		return fmt.Errorf("max_unbondings_per_block must be positive")
	}
	if p.StartFailureSlash.IsNil() || p.StartFailureSlash.IsNegative() || p.StartFailureSlash.GT(sdkmath.LegacyOneDec()) {
		return fmt.Errorf("start_failure_slash must be within [0, 1], got %s", p.StartFailureSlash)
	}
	return nil
}
