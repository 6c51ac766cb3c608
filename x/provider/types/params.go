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
		AttestInterval:        10,
		AttestGrace:           60,
		SilenceSlash:          sdkmath.LegacyNewDecWithPrec(1, 2), // 1%
		MaxDownAttestations:   3,
		UptimeWindow:          7 * 24 * 3600, // a week of 1 s blocks
	}
}

// maxLivenessBlocks bounds the liveness params, so no height arithmetic
// with them can overflow.
const maxLivenessBlocks = 1_000_000_000

// WithLivenessDefaults gives the liveness params their defaults when they
// are unset (attest_interval 0, which Validate refuses): a chain from
// before attestations has none of them.
func (p Params) WithLivenessDefaults() Params {
	if p.AttestInterval != 0 {
		return p
	}
	d := DefaultParams()
	p.AttestInterval, p.AttestGrace, p.SilenceSlash = d.AttestInterval, d.AttestGrace, d.SilenceSlash
	p.MaxDownAttestations, p.UptimeWindow = d.MaxDownAttestations, d.UptimeWindow
	return p
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
	if p.AttestInterval > maxLivenessBlocks || p.AttestGrace > maxLivenessBlocks || p.UptimeWindow > maxLivenessBlocks {
		return fmt.Errorf("attest_interval, attest_grace and uptime_window must be at most %d blocks", uint64(maxLivenessBlocks))
	}
	if p.AttestInterval == 0 || p.AttestGrace < 2*p.AttestInterval {
		return fmt.Errorf("attest_interval must be positive and attest_grace (%d) at least twice it (%d)", p.AttestGrace, p.AttestInterval)
	}
	if p.SilenceSlash.IsNil() || p.SilenceSlash.IsNegative() || p.SilenceSlash.GT(sdkmath.LegacyOneDec()) {
		return fmt.Errorf("silence_slash must be within [0, 1], got %s", p.SilenceSlash)
	}
	if p.MaxDownAttestations == 0 {
		return fmt.Errorf("max_down_attestations must be positive")
	}
	if p.UptimeWindow == 0 {
		return fmt.Errorf("uptime_window must be positive")
	}
	return nil
}
