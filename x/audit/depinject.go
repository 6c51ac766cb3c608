package audit

import (
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/appmodule"
	"cosmossdk.io/core/event"
	"cosmossdk.io/core/store"
	"cosmossdk.io/depinject"
	"cosmossdk.io/depinject/appconfig"

	"github.com/cosmos/cosmos-sdk/codec"

	"github.com/gpunet/gpunet/x/audit/keeper"
	modulev1 "github.com/gpunet/gpunet/x/audit/types/module"
)

func init() {
	appconfig.RegisterModule(&modulev1.Module{}, appconfig.Provide(ProvideModule))
}

// ModuleInputs are what x/audit needs from the app.
type ModuleInputs struct {
	depinject.In

	Config       *modulev1.Module
	Cdc          codec.Codec
	AddressCodec address.Codec
	StoreService store.KVStoreService
	Events       event.Service
}

// ModuleOutputs are what x/audit gives the app.
type ModuleOutputs struct {
	depinject.Out

	Keeper *keeper.Keeper
	Module appmodule.AppModule
}

// ProvideModule builds the keeper and module for depinject.
func ProvideModule(in ModuleInputs) (ModuleOutputs, error) {
	k, err := keeper.NewKeeper(in.Cdc, in.AddressCodec, in.StoreService, in.Events)
	if err != nil {
		return ModuleOutputs{}, err
	}
	return ModuleOutputs{Keeper: k, Module: NewAppModule(in.Cdc, k)}, nil
}
