// Package cli holds x/provider's hand-written commands.
package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/client/tx"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/provider/client/providerfile"
	"github.com/gpunet/gpunet/x/provider/types"
)

const flagBond = "bond"

// TxCmd is the root of `gpunetd tx provider`.
func TxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:                        types.ModuleName,
		Short:                      "Provider registry transactions: register, update, bond, unbond, deregister",
		DisableFlagParsing:         true,
		SuggestionsMinimumDistance: 2,
		RunE:                       client.ValidateCmd,
	}
	cmd.AddCommand(registerCmd(), updateCmd())
	return cmd
}

func registerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "register [provider.yaml]",
		Short: "Register as a GPU provider from a provider.yaml, with a bond",
		Long: `Register the --from account as a provider. provider.yaml declares the API's https
host_uri and certificate hash, attributes, GPUs (NVML names or slugs), CPU, memory and
storage capacity and contact info. --bond must be at least the min_bond param.`,
		Example: "gpunetd tx provider register provider.yaml --bond 500000000ugpn --from provider",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			d, err := providerfile.LoadDescription(args[0])
			if err != nil {
				return err
			}
			bondStr, err := cmd.Flags().GetString(flagBond)
			if err != nil {
				return err
			}
			if bondStr == "" {
				return fmt.Errorf("--bond is required, e.g. --bond 500000000ugpn")
			}
			bond, err := sdk.ParseCoinNormalized(bondStr)
			if err != nil {
				return fmt.Errorf("--bond %q: %w", bondStr, err)
			}
			msg := &types.MsgRegisterProvider{
				Owner: clientCtx.GetFromAddress().String(), HostUri: d.HostURI, TlsCertSha256: d.TLSCertSHA256,
				Attributes: d.Attributes, Gpus: d.GPUs, Capacity: d.Capacity, Info: d.Info, Bond: bond,
			}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), msg)
		},
	}
	cmd.Flags().String(flagBond, "", "initial bond, e.g. 500000000ugpn (required)")
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

func updateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "update [provider.yaml]",
		Short:   "Replace your provider's description with a provider.yaml",
		Example: "gpunetd tx provider update provider.yaml --from provider",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			d, err := providerfile.LoadDescription(args[0])
			if err != nil {
				return err
			}
			msg := &types.MsgUpdateProvider{
				Owner: clientCtx.GetFromAddress().String(), HostUri: d.HostURI, TlsCertSha256: d.TLSCertSHA256,
				Attributes: d.Attributes, Gpus: d.GPUs, Capacity: d.Capacity, Info: d.Info,
			}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), msg)
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}
