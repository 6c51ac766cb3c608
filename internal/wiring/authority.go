// Package wiring holds what gpunet's modules share in their depinject setup.
package wiring

import (
	"cosmossdk.io/core/address"

	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	govtypes "github.com/cosmos/cosmos-sdk/x/gov/types"
)

// Authority is the address allowed to change a module's params: the one
// configured in the app config, or else the gov module account.
func Authority(ac address.Codec, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	return ac.BytesToString(authtypes.NewModuleAddress(govtypes.ModuleName))
}
