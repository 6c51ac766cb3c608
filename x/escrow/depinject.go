package escrow

import (
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/appmodule"
	"cosmossdk.io/core/event"
	"cosmossdk.io/core/header"
	"cosmossdk.io/core/store"
	"cosmossdk.io/depinject"
	"cosmossdk.io/depinject/appconfig"

	"github.com/cosmos/cosmos-sdk/codec"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/internal/wiring"
	"github.com/gpunet/gpunet/x/escrow/keeper"
	"github.com/gpunet/gpunet/x/escrow/types"
	modulev1 "github.com/gpunet/gpunet/x/escrow/types/module"
)

func init() {
	appconfig.RegisterModule(&modulev1.Module{}, appconfig.Provide(ProvideModule))
}

// ModuleInputs are what x/escrow needs from the app.
type ModuleInputs struct {
	depinject.In

	Config        *modulev1.Module
	Cdc           codec.Codec
	AddressCodec  address.Codec
	StoreService  store.KVStoreService
	Events        event.Service
	Headers       header.Service
	BankKeeper    types.BankKeeper
	AccountKeeper types.AccountKeeper
}

// ModuleOutputs are what x/escrow gives the app.
type ModuleOutputs struct {
	depinject.Out

	Keeper *keeper.Keeper
	Module appmodule.AppModule
}

// ProvideModule builds the keeper and module for depinject.
func ProvideModule(in ModuleInputs) (ModuleOutputs, error) {
	authority, err := wiring.Authority(in.AddressCodec, in.Config.Authority)
	if err != nil {
		return ModuleOutputs{}, err
	}
	k, err := keeper.NewKeeper(in.Cdc, in.AddressCodec, in.StoreService, in.Events, in.Headers, in.BankKeeper, in.AccountKeeper, authtypes.FeeCollectorName, authority)
	if err != nil {
		return ModuleOutputs{}, err
	}
	return ModuleOutputs{Keeper: k, Module: NewAppModule(in.Cdc, k)}, nil
}
