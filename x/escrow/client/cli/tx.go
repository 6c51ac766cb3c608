// Package cli holds x/escrow's hand-written commands.
package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/client/tx"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// TxCmd is the root of `gpunetd tx escrow`.
func TxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:                        types.ModuleName,
		Short:                      "Escrow transactions: top up a deployment",
		DisableFlagParsing:         true,
		SuggestionsMinimumDistance: 2,
		RunE:                       client.ValidateCmd,
	}
	cmd.AddCommand(depositCmd())
	return cmd
}

func depositCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deposit [owner] [dseq] [amount]",
		Short:   "Top up a deployment's escrow account (anyone may)",
		Example: "gpunetd tx escrow deposit gpunet1... 12 5000000ugpn --from tenant",
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			dseq, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("dseq %q is not a deployment sequence number: %w", args[1], err)
			}
			amount, err := sdk.ParseCoinNormalized(args[2])
			if err != nil {
				return fmt.Errorf("amount %q: %w", args[2], err)
			}
			msg := &types.MsgDeposit{
				Depositor: clientCtx.GetFromAddress().String(),
				Account:   types.AccountID{Owner: args[0], Dseq: dseq},
				Amount:    amount,
			}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), msg)
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}
