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

// leaseKey is the store key of a bid or lease.
func leaseKey(owner sdk.AccAddress, dseq uint64, gseq, oseq uint32, provider sdk.AccAddress) marketkeeper.BidKey {
	return collections.Join4(dseq, owner, types.OrderID{Gseq: gseq, Oseq: oseq}.GroupOrder(), provider)
}

func marketQuery(k *marketkeeper.Keeper) types.QueryServer { return marketkeeper.NewQueryServerImpl(k) }

// escrowAccountKey is the store key of a deployment's escrow account.
func escrowAccountKey(owner sdk.AccAddress, dseq uint64) collections.Pair[uint64, sdk.AccAddress] {
	return collections.Join(dseq, owner)
}
