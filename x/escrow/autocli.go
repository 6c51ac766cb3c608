package escrow

import (
	autocliv1 "cosmossdk.io/api/cosmos/autocli/v1"

	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/x/escrow/client/cli"
	"github.com/gpunet/gpunet/x/escrow/types"
)

// GetTxCmd returns the hand-written tx commands; autocli adds the rest.
func (AppModule) GetTxCmd() *cobra.Command { return cli.TxCmd() }

// AutoCLIOptions declares the generated CLI of x/escrow.
func (AppModule) AutoCLIOptions() *autocliv1.ModuleOptions {
	return &autocliv1.ModuleOptions{
		Query: &autocliv1.ServiceCommandDescriptor{
			Service: types.Query_serviceDesc.ServiceName,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "Params", Use: "params", Short: "Show x/escrow params (take rate, depletion bound)"},
				{
					RpcMethod: "Account", Use: "account [owner] [dseq]", Short: "Show a deployment's escrow account, settled to now",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}, {ProtoField: "dseq"}},
				},
				{
					RpcMethod: "AccountPayments", Use: "payments [owner] [dseq]", Short: "List the payments of a deployment's account",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}, {ProtoField: "dseq"}},
				},
				{
					RpcMethod: "AutoTopUp", Use: "auto-topup [owner] [dseq]", Short: "Show a deployment's automatic refill: payer, amount, limit, spent, when due",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}, {ProtoField: "dseq"}},
				},
				{
					RpcMethod: "ProviderPayments", Use: "provider-payments [provider]", Short: "List a provider's payments",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "provider"}},
				},
			},
		},
		Tx: &autocliv1.ServiceCommandDescriptor{
			Service:              types.Msg_serviceDesc.ServiceName,
			EnhanceCustomCommand: true,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "Deposit", Skip: true},         // cli.TxCmd
				{RpcMethod: "SetAutoTopUp", Skip: true},    // cli.TxCmd
				{RpcMethod: "CancelAutoTopUp", Skip: true}, // cli.TxCmd
				{RpcMethod: "WithdrawPayment", Skip: true}, // x/market's withdraw-lease names leases, not payments
				{RpcMethod: "UpdateParams", Skip: true},    // governance only
				{RpcMethod: "RetryParked", Skip: true},     // governance only
			},
		},
	}
}
