package types

import (
	"fmt"

	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/internal/coin"
)

// DefaultParams for a 1-second-block chain.
func DefaultParams() Params {
	return Params{
		MinDeposit:             sdk.NewCoin(coin.Denom, sdkmath.NewInt(5_000_000)), // 5 GPN
		BidMinDeposit:          sdk.NewCoin(coin.Denom, sdkmath.NewInt(1_000_000)), // 1 GPN
		MinBidWindow:           1,
		MaxBidWindow:           600,
		DefaultBidWindow:       2,
		OrderTtl:               3600,
		MaxBidsPerOrder:        20,
		StartTimeout:           120,
		MaxGroupsPerDeployment: 16,
		MaxSweepsPerBlock:      500,
		ManifestTimeout:        40,
		ReservationFeeSeconds:  600, // 10 minutes of the lease price
		DisputeWindow:          14_400,
		MaxReauctions:          3,
	}
}

// Validate checks the params.
func (p Params) Validate() error {
	if !p.MinDeposit.IsValid() || !p.MinDeposit.IsPositive() {
		return fmt.Errorf("min_deposit must be positive")
	}
	if !p.BidMinDeposit.IsValid() || p.BidMinDeposit.Denom != p.MinDeposit.Denom {
		return fmt.Errorf("bid_min_deposit must be a valid coin in %s", p.MinDeposit.Denom)
	}
	if p.MinBidWindow == 0 || p.MinBidWindow > p.MaxBidWindow || p.DefaultBidWindow < p.MinBidWindow || p.DefaultBidWindow > p.MaxBidWindow {
		return fmt.Errorf("bid windows must satisfy 0 < min ≤ default ≤ max")
	}
	if p.OrderTtl <= p.MaxBidWindow {
		return fmt.Errorf("order_ttl must exceed max_bid_window")
	}
	if p.MaxBidsPerOrder == 0 || p.StartTimeout == 0 || p.MaxGroupsPerDeployment == 0 || p.MaxSweepsPerBlock == 0 {
		return fmt.Errorf("max_bids_per_order, start_timeout, max_groups_per_deployment and max_sweeps_per_block must be positive")
	}
	if p.ManifestTimeout == 0 || p.ManifestTimeout >= p.StartTimeout {
		return fmt.Errorf("manifest_timeout must be positive and below start_timeout (%d)", p.StartTimeout)
	}
	if p.DisputeWindow == 0 {
		return fmt.Errorf("dispute_window must be positive")
	}
	if p.ReservationFeeSeconds > 7*24*3600 {
		return fmt.Errorf("reservation_fee_seconds must be at most a week")
	}
	if p.MaxReauctions > 16 {
		return fmt.Errorf("max_reauctions must be at most 16")
	}
	return nil
}

// ReservationFee is what a pending lease closed for a tenant fault costs
// the tenant: seconds (reservation_fee_seconds) of the lease price per
// hour, whole ugpn rounded down.
func ReservationFee(price sdk.DecCoin, seconds uint64) sdk.Coin {
	amt := price.Amount.MulInt(sdkmath.NewIntFromUint64(seconds)).QuoInt64(3600).TruncateInt()
	return sdk.NewCoin(price.Denom, amt)
}
