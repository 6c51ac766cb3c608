package provider

import (
	autocliv1 "cosmossdk.io/api/cosmos/autocli/v1"

	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/x/provider/client/cli"
	"github.com/gpunet/gpunet/x/provider/types"
)

// GetTxCmd returns the hand-written tx commands (register and update from a
// YAML file); autocli adds the rest to it.
func (AppModule) GetTxCmd() *cobra.Command { return cli.TxCmd() }

// AutoCLIOptions declares the generated CLI of x/provider.
func (AppModule) AutoCLIOptions() *autocliv1.ModuleOptions {
	return &autocliv1.ModuleOptions{
		Query: &autocliv1.ServiceCommandDescriptor{
			Service: types.Query_serviceDesc.ServiceName,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "Params", Use: "params", Short: "Show x/provider params (min bond, unbonding period, slash fraction)"},
				{
					RpcMethod: "Provider", Use: "provider [owner]", Short: "Show one provider with its bond, inventory and reliability",
					Example:        "gpunetd query provider provider gpunet1...",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}},
				},
				{RpcMethod: "Providers", Use: "providers", Short: "List all providers", Example: "gpunetd query provider providers --limit 20"},
				{
					RpcMethod: "ProvidersByGPU", Use: "by-gpu [model]", Short: "List providers offering a GPU model (slug or NVML name)",
					Example:        "gpunetd query provider by-gpu h100",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "model"}},
				},
				{
					RpcMethod: "Unbondings", Use: "unbondings [owner]", Short: "List a provider owner's unbonding entries",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}},
				},
			},
		},
		Tx: &autocliv1.ServiceCommandDescriptor{
			Service:              types.Msg_serviceDesc.ServiceName,
			EnhanceCustomCommand: true,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "RegisterProvider", Skip: true}, // cli.TxCmd: from YAML
				{RpcMethod: "UpdateProvider", Skip: true},   // cli.TxCmd: from YAML
				{
					RpcMethod: "Bond", Use: "bond [amount]", Short: "Add to your provider bond",
					Example:        "gpunetd tx provider bond 100000000ugpn --from provider",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "amount"}},
				},
				{
					RpcMethod: "Unbond", Use: "unbond [amount]", Short: "Start unbonding part of your provider bond",
					Example:        "gpunetd tx provider unbond 100000000ugpn --from provider",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "amount"}},
				},
				{
					RpcMethod: "DeregisterProvider", Use: "deregister", Short: "Leave the registry; the whole bond starts unbonding",
					Example: "gpunetd tx provider deregister --from provider",
				},
				{RpcMethod: "UpdateParams", Skip: true}, // governance only
				{RpcMethod: "RetryParked", Skip: true},  // governance only
			},
		},
	}
}
