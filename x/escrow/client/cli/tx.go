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
		Short:                      "Escrow transactions: top up a deployment, once or automatically",
		DisableFlagParsing:         true,
		SuggestionsMinimumDistance: 2,
		RunE:                       client.ValidateCmd,
	}
	cmd.AddCommand(depositCmd(), autoTopUpCmd(), cancelAutoTopUpCmd())
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

// accountArgs reads [owner] [dseq].
func accountArgs(args []string) (types.AccountID, error) {
	dseq, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return types.AccountID{}, fmt.Errorf("dseq %q is not a deployment sequence number: %w", args[1], err)
	}
	return types.AccountID{Owner: args[0], Dseq: dseq}, nil
}

func autoTopUpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auto-topup [owner] [dseq] [amount] [limit]",
		Short: "Refill a deployment's escrow account automatically, paid by you (its owner, or a sponsor)",
		Long: `Whenever the account would run dry within the chain's auto_topup_horizon (an hour by
default), EndBlock moves amount from your balance into it, until limit has been paid in all;
each refill is an EventAutoTopUp. Without funds the refill fails (EventAutoTopUpFailed) and the
deployment runs dry as without a top-up. The owner, or the payer, may replace or cancel it.`,
		Example: "gpunetd tx escrow auto-topup gpunet1... 12 5000000ugpn 50000000ugpn --from tenant",
		Args:    cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			id, err := accountArgs(args)
			if err != nil {
				return err
			}
			amount, err := sdk.ParseCoinNormalized(args[2])
			if err != nil {
				return fmt.Errorf("amount %q: %w", args[2], err)
			}
			limit, err := sdk.ParseCoinNormalized(args[3])
			if err != nil {
				return fmt.Errorf("limit %q: %w", args[3], err)
			}
			msg := &types.MsgSetAutoTopUp{Payer: clientCtx.GetFromAddress().String(), Account: id, Amount: amount, Limit: limit}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), msg)
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

func cancelAutoTopUpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "cancel-auto-topup [owner] [dseq]",
		Short:   "Stop a deployment's automatic refills (its owner or its payer)",
		Example: "gpunetd tx escrow cancel-auto-topup gpunet1... 12 --from tenant",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			id, err := accountArgs(args)
			if err != nil {
				return err
			}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), &types.MsgCancelAutoTopUp{Sender: clientCtx.GetFromAddress().String(), Account: id})
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}
