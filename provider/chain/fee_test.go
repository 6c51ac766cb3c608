package chain

import (
	"errors"
	"testing"

	sdkmath "cosmossdk.io/math"
)

// A node (or a chain) that asks the daemon to pay more gas than it allows
// is refused, not paid.
func TestCheckFee(t *testing.T) {
	if err := CheckFee(sdkmath.NewInt(5_000_001), sdkmath.NewInt(5_000_000)); !errors.Is(err, ErrFeeTooHigh) {
		t.Errorf("over the cap: %v", err)
	}
	if err := CheckFee(sdkmath.NewInt(5_000_000), sdkmath.NewInt(5_000_000)); err != nil {
		t.Errorf("at the cap: %v", err)
	}
	if err := CheckFee(sdkmath.NewInt(1<<40), sdkmath.Int{}); err != nil {
		t.Errorf("no cap: %v", err)
	}
}
