package types

import (
	"fmt"
	"time"

	sdkmath "cosmossdk.io/math"
)

// Bounds of auto_topup_horizon: refilling earlier than a week ahead would
// lock up payers' funds for nothing; later than a minute ahead could miss
// the account's last block.
const (
	MinAutoTopUpHorizon = time.Minute
	MaxAutoTopUpHorizon = 7 * 24 * time.Hour
)

// DefaultParams: 2% take, 200 depletions per block, refills an hour ahead,
// 50 refills per block.
func DefaultParams() Params {
	return Params{TakeRate: sdkmath.LegacyNewDecWithPrec(2, 2), MaxDepletionsPerBlock: 200, AutoTopupHorizon: time.Hour, MaxTopupsPerBlock: 50}
}

// Validate checks the params.
func (p Params) Validate() error {
	if p.TakeRate.IsNil() || p.TakeRate.IsNegative() || p.TakeRate.GTE(sdkmath.LegacyOneDec()) {
		return fmt.Errorf("take_rate must be within [0, 1), got %s", p.TakeRate)
	}
	if p.MaxDepletionsPerBlock == 0 {
		return fmt.Errorf("max_depletions_per_block must be positive")
	}
	if p.AutoTopupHorizon < MinAutoTopUpHorizon || p.AutoTopupHorizon > MaxAutoTopUpHorizon {
		return fmt.Errorf("auto_topup_horizon must be within [%s, %s], got %s", MinAutoTopUpHorizon, MaxAutoTopUpHorizon, p.AutoTopupHorizon)
	}
	if p.MaxTopupsPerBlock == 0 {
		return fmt.Errorf("max_topups_per_block must be positive")
	}
	return nil
}
