package audit

import (
	autocliv1 "cosmossdk.io/api/cosmos/autocli/v1"

	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/x/audit/client/cli"
	"github.com/gpunet/gpunet/x/audit/types"
)

// GetTxCmd returns the hand-written tx commands (sign and revoke take
// key=value arguments).
func (AppModule) GetTxCmd() *cobra.Command { return cli.TxCmd() }

// AutoCLIOptions declares the generated CLI of x/audit.
func (AppModule) AutoCLIOptions() *autocliv1.ModuleOptions {
	return &autocliv1.ModuleOptions{
		Query: &autocliv1.ServiceCommandDescriptor{
			Service: types.Query_serviceDesc.ServiceName,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{
					RpcMethod: "ProviderAttributes", Use: "provider [owner]", Short: "What every auditor signed for a provider",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}},
				},
				{
					RpcMethod: "ProviderAuditorAttributes", Use: "signed [owner] [auditor]", Short: "What one auditor signed for a provider",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "owner"}, {ProtoField: "auditor"}},
				},
				{
					RpcMethod: "AuditorAttributes", Use: "auditor [auditor]", Short: "Every provider an auditor signed for",
					PositionalArgs: []*autocliv1.PositionalArgDescriptor{{ProtoField: "auditor"}},
				},
			},
		},
		Tx: &autocliv1.ServiceCommandDescriptor{
			Service:              types.Msg_serviceDesc.ServiceName,
			EnhanceCustomCommand: true,
			RpcCommandOptions: []*autocliv1.RpcCommandOptions{
				{RpcMethod: "SignProviderAttributes", Skip: true},   // cli.TxCmd: key=value arguments
				{RpcMethod: "DeleteProviderAttributes", Skip: true}, // cli.TxCmd
			},
		},
	}
}
