// Package app wires the gpunet chain: the Cosmos SDK modules every validator
// expects plus gpunet's own marketplace modules, assembled through depinject.
package app

import (
	sdk "github.com/cosmos/cosmos-sdk/types"
)

const (
	// Name is the application name reported over ABCI.
	Name = "gpunet"

	// BondDenom is the base denomination of GPN; it is the only denom the
	// chain uses for staking, fees, governance deposits, bonds and rent.
	BondDenom = "ugpn"
	// DisplayDenom is the human unit: 1 GPN = 10^6 ugpn.
	DisplayDenom = "GPN"
	// DenomExponent is the number of decimals between ugpn and GPN.
	DenomExponent = 6

	// Bech32 prefixes.
	AccountAddressPrefix   = "gpunet"
	ValidatorAddressPrefix = AccountAddressPrefix + "valoper"
	ConsensusAddressPrefix = AccountAddressPrefix + "valcons"

	// DefaultMinGasPrice is the minimum gas price a fresh node accepts.
	DefaultMinGasPrice = "0.025" + BondDenom
)

func init() {
	// Module default params (staking bond denom, mint denom, gov min deposit)
	// read sdk.DefaultBondDenom when a genesis file is first generated, so
	// setting it here makes every freshly initialised genesis speak ugpn.
	sdk.DefaultBondDenom = BondDenom
	cfg := sdk.GetConfig()
	cfg.SetBech32PrefixForAccount(AccountAddressPrefix, AccountAddressPrefix+"pub")
	cfg.SetBech32PrefixForValidator(ValidatorAddressPrefix, ValidatorAddressPrefix+"pub")
	cfg.SetBech32PrefixForConsensusNode(ConsensusAddressPrefix, ConsensusAddressPrefix+"pub")
}
