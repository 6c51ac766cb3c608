package keeper_test

import (
	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowkeeper "github.com/gpunet/gpunet/x/escrow/keeper"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	"github.com/gpunet/gpunet/x/market/types"
)

func escrowMsgServer(k *escrowkeeper.Keeper) escrowtypes.MsgServer {
	return escrowkeeper.NewMsgServerImpl(k)
}

func collectionsJoin3(owner sdk.AccAddress, dseq uint64, suffix string) marketkeeper.BidKey {
	return collections.Join3(owner, dseq, suffix)
}

func marketQuery(k *marketkeeper.Keeper) types.QueryServer { return marketkeeper.NewQueryServerImpl(k) }

func collectionsPair(owner sdk.AccAddress, dseq uint64) collections.Pair[sdk.AccAddress, uint64] {
	return collections.Join(owner, dseq)
}
