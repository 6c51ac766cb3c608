package tenant

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	sdkmath "cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/client/flags"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/spf13/pflag"
)

// What a tenant command pays when no fee flag is given.
const (
	DefaultGasPrice      = "0.025ugpn"
	DefaultGasAdjustment = 1.4
)

// FeeSettings are a command's --fees, --gas-prices, --gas and
// --gas-adjustment. The zero value pays DefaultGasPrice for the simulated
// gas times DefaultGasAdjustment.
type FeeSettings struct {
	Fees          sdk.Coins    // pay exactly this
	GasPrices     sdk.DecCoins // pay this per unit of gas
	Gas           uint64       // the gas limit; 0: simulate
	GasAdjustment float64      // multiplies simulated gas; 0: DefaultGasAdjustment
	// Granter pays the fees from a fee allowance it granted the tenant
	// (x/feegrant; --fee-granter); nil: the tenant pays.
	Granter sdk.AccAddress
}

// check refuses settings no transaction can pay with.
func (s FeeSettings) check() error {
	if !s.Fees.IsZero() && !s.GasPrices.IsZero() {
		return errors.New("give --fees or --gas-prices, not both")
	}
	if s.GasAdjustment < 0 || math.IsNaN(s.GasAdjustment) || math.IsInf(s.GasAdjustment, 0) {
		return fmt.Errorf("--gas-adjustment %v must be a positive number", s.GasAdjustment)
	}
	if s.Gas > math.MaxInt64 {
		return fmt.Errorf("--gas %d is too large", s.Gas)
	}
	return nil
}

// FeeTransferGas is about what moving the fee costs in gas: the simulation
// leaves it out (it runs without a fee), so a transaction gets at least
// that much more than it simulated, whatever the adjustment.
const FeeTransferGas = 20_000

// Choose returns the gas limit and fees of a transaction whose simulation
// used simulated gas.
func (s FeeSettings) Choose(simulated uint64) (uint64, sdk.Coins, error) {
	if err := s.check(); err != nil {
		return 0, nil, err
	}
	gas := s.Gas
	if gas == 0 {
		adj := s.GasAdjustment
		if adj == 0 {
			adj = DefaultGasAdjustment
		}
		// A simulation carries no fee, so it skips the fee's transfer,
		// which a small transaction's adjustment does not cover.
		g := max(math.Ceil(float64(simulated)*adj), float64(simulated+FeeTransferGas))
		if g >= math.MaxInt64 {
			return 0, nil, fmt.Errorf("gas %v is too large", g)
		}
		gas = uint64(g)
	}
	if !s.Fees.IsZero() {
		return gas, s.Fees, nil
	}
	prices := s.GasPrices
	if prices.IsZero() {
		var err error
		if prices, err = sdk.ParseDecCoins(DefaultGasPrice); err != nil {
			return 0, nil, err
		}
	}
	limit := sdkmath.LegacyNewDec(int64(gas))
	fees := sdk.Coins{}
	for _, p := range prices {
		fees = fees.Add(sdk.NewCoin(p.Denom, p.Amount.Mul(limit).Ceil().TruncateInt()))
	}
	return gas, fees, nil
}

// FeeSettingsFromFlags reads the fee flags that flags.AddTxFlagsToCmd
// registers. --gas unset or "auto" simulates; --gas-adjustment counts only
// when given, since its registered default (1) is not the tenant default.
func FeeSettingsFromFlags(fs *pflag.FlagSet) (FeeSettings, error) {
	var s FeeSettings
	var err error
	if v, _ := fs.GetString(flags.FlagFees); v != "" {
		if s.Fees, err = sdk.ParseCoinsNormalized(v); err != nil {
			return s, fmt.Errorf("--fees %q: %w", v, err)
		}
	}
	if v, _ := fs.GetString(flags.FlagGasPrices); v != "" {
		if s.GasPrices, err = sdk.ParseDecCoins(v); err != nil {
			return s, fmt.Errorf("--gas-prices %q: %w", v, err)
		}
	}
	if v, _ := fs.GetString(flags.FlagGas); v != "" && v != flags.GasFlagAuto {
		g, err := strconv.ParseUint(v, 10, 64)
		if err != nil || g == 0 {
			return s, fmt.Errorf("--gas %q must be a positive whole number or %s", v, flags.GasFlagAuto)
		}
		s.Gas = g
	}
	if v, _ := fs.GetString(flags.FlagFeeGranter); v != "" {
		if s.Granter, err = sdk.AccAddressFromBech32(v); err != nil {
			return s, fmt.Errorf("--fee-granter %q: %w", v, err)
		}
	}
	if fs.Changed(flags.FlagGasAdjustment) {
		adj, err := fs.GetFloat64(flags.FlagGasAdjustment)
		if err != nil || adj <= 0 {
			return s, fmt.Errorf("--gas-adjustment must be a positive number")
		}
		s.GasAdjustment = adj
	}
	return s, s.check()
}
