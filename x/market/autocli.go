package market

import (
	autocliv1 "cosmossdk.io/api/cosmos/autocli/v1"
	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/x/market/client/cli"
	"github.com/gpunet/gpunet/x/market/types"
)

// GetTxCmd returns the hand-written tx commands; autocli adds the rest.
func (AppModule) GetTxCmd() *cobra.Command { return cli.TxCmd() }

// AutoCLIOptions declares the generated CLI of x/market. Deployments are
// created from SDL files by `gpunetd deploy` (issue 7); the raw message is
// available here with --groups JSON for scripts.
func (AppModule) AutoCLIOptions() *autocliv1.ModuleOptions {
	order := []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}, {ProtoField: "dseq"}, {ProtoField: "gseq"}, {ProtoField: "oseq"}}
	return &autocliv1.ModuleOptions{
		Query: &autocliv1.ServiceCommandDescriptor{
			Service: types.Query_serviceDesc.ServiceName,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "Params", Use: "params", Short: "Show x/market params"},
				{RpcMethod: "Deployment", Use: "deployment [owner] [dseq]", Short: "Show a deployment with its orders and leases",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}, {ProtoField: "dseq"}}},
				{RpcMethod: "Deployments", Use: "deployments [owner]", Short: "List an owner's deployments",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}}},
				{RpcMethod: "OpenOrders", Use: "open-orders", Short: "List open orders"},
				{RpcMethod: "Order", Use: "order [owner] [dseq] [gseq] [oseq]", Short: "Show an order", PositionalArgs: order},
				{RpcMethod: "BidsByOrder", Use: "bids [owner] [dseq] [gseq] [oseq]", Short: "List an order's bids", PositionalArgs: order},
				{RpcMethod: "BidsByProvider", Use: "provider-bids [provider]", Short: "List a provider's bids",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "provider"}}},
				{RpcMethod: "LeasesByOwner", Use: "leases [owner]", Short: "List a tenant's leases",
					Long:           "List a tenant's leases, a page of its deployments at a time: --limit, --offset and --count-total count deployments, each listed with all its leases, so a page can hold fewer leases than its limit (none, when its deployments are still in their auctions) and still have a next key.",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}}},
				{RpcMethod: "LeasesByProvider", Use: "provider-leases [provider]", Short: "List a provider's leases",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "provider"}}},
				{RpcMethod: "Attestation", Use: "attestation [provider]", Short: "Show a provider's last attestation and the leases it attested down",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "provider"}}},
			},
		},
		Tx: &autocliv1.ServiceCommandDescriptor{
			Service:              types.Msg_serviceDesc.ServiceName,
			EnhanceCustomCommand: true,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "CloseDeployment", Use: "close-deployment [dseq]", Short: "Close a deployment and get the rest of its escrow back",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "dseq"}}},
				{RpcMethod: "UpdateParams", Skip: true},
				{RpcMethod: "RetryParked", Skip: true},  // governance only
				{RpcMethod: "CreateBid", Skip: true},    // cli.TxCmd: price as a plain decimal
				{RpcMethod: "DisputeLease", Skip: true}, // `gpunetd lease dispute`: the receipt comes from the local store
				{RpcMethod: "Attest", Skip: true},       // the provider daemon attests every attest_interval blocks
			},
		},
	}
}
