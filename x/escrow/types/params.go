package types

import (
	"fmt"

	sdkmath "cosmossdk.io/math"
)

// DefaultParams: 2% take, 200 depletions per block.
func DefaultParams() Params {
	return Params{TakeRate: sdkmath.LegacyNewDecWithPrec(2, 2), MaxDepletionsPerBlock: 200}
}

// Validate checks the params.
func (p Params) Validate() error {
	if p.TakeRate.IsNil() || p.TakeRate.IsNegative() || p.TakeRate.GTE(sdkmath.LegacyOneDec()) {
		return fmt.Errorf("take_rate must be within [0, 1), got %s", p.TakeRate)
	}
	if p.MaxDepletionsPerBlock == 0 {
		return fmt.Errorf("max_depletions_per_block must be positive")
	}
	return nil
}
