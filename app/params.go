// Package app wires the gpunet chain: the Cosmos SDK modules every validator
// expects plus gpunet's own marketplace modules, assembled through depinject.
package app

import (
	"github.com/gpunet/gpunet/app/params"
)

const (
	// Name is the application name reported over ABCI.
	Name = "gpunet"

	// BondDenom is the base denomination of GPN; it is the only denom the
	// chain uses for staking, fees, governance deposits, bonds and rent.
	BondDenom = params.BondDenom
	// DisplayDenom is the human unit: 1 GPN = 10^6 ugpn.
	DisplayDenom = "GPN"
	// DenomExponent is the number of decimals between ugpn and GPN.
	DenomExponent = 6

	// Bech32 prefixes.
	AccountAddressPrefix   = params.AccountAddressPrefix
	ValidatorAddressPrefix = params.ValidatorAddressPrefix
	ConsensusAddressPrefix = params.ConsensusAddressPrefix

	// DefaultMinGasPrice is the minimum gas price a fresh node accepts.
	DefaultMinGasPrice = "0.025" + BondDenom
)
