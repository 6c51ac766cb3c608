// Package cli holds x/audit's hand-written transaction commands.
package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/client/tx"

	"github.com/gpunet/gpunet/x/audit/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// TxCmd is the root of `gpunetd tx audit`.
func TxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:                        types.ModuleName,
		Short:                      "Audit transactions: vouch for providers' attributes, or withdraw",
		DisableFlagParsing:         true,
		SuggestionsMinimumDistance: 2,
		RunE:                       client.ValidateCmd,
	}
	cmd.AddCommand(signCmd(), revokeCmd())
	return cmd
}

// ParseAttributes reads key=value arguments.
func ParseAttributes(args []string) ([]providertypes.Attribute, error) {
	var out []providertypes.Attribute
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not key=value", a)
		}
		out = append(out, providertypes.Attribute{Key: k, Value: v})
	}
	if err := providertypes.ValidateAttributes(out); err != nil {
		return nil, err
	}
	return out, nil
}

func signCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sign [provider] [key=value]...",
		Short: "Vouch, as the --from account, for attributes of a provider",
		Long: `Sign attributes of a provider as an auditor. Tenants whose SDL names you under
signedBy (allOf or anyOf) are served only by providers whose placement attributes
you signed. Signing a key again replaces its value; other keys you signed stay.`,
		Example: "gpunetd tx audit sign gpunet1prov... region=eu tier=datacenter --from auditor",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			attrs, err := ParseAttributes(args[1:])
			if err != nil {
				return err
			}
			msg := &types.MsgSignProviderAttributes{Auditor: clientCtx.GetFromAddress().String(), Owner: args[0], Attributes: attrs}
			if err := msg.ValidateBasic(); err != nil {
				return err
			}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), msg)
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

func revokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "revoke [provider] [key]...",
		Short:   "Withdraw your signature from a provider's attributes (all of them when no key is given)",
		Example: "gpunetd tx audit revoke gpunet1prov... region --from auditor",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			msg := &types.MsgDeleteProviderAttributes{Auditor: clientCtx.GetFromAddress().String(), Owner: args[0], Keys: args[1:]}
			if err := msg.ValidateBasic(); err != nil {
				return err
			}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), msg)
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}
