package keeper_test

import (
	"errors"

	"cosmossdk.io/collections"

	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"
	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/escrow/keeper"
	"github.com/gpunet/gpunet/x/escrow/types"
)

type keeperAccountKey = keeper.AccountKey

func addressBytes(s string) (sdk.AccAddress, error) {
	return addresscodec.NewBech32Codec("gpunet").StringToBytes(s)
}

func collectionsJoin(owner sdk.AccAddress, dseq uint64) keeper.AccountKey {
	return collections.Join(dseq, owner)
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func moduleAddr() sdk.AccAddress { return authtypes.NewModuleAddress(types.ModuleName) }
