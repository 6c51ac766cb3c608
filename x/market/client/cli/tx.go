// Package cli holds x/market's hand-written tx commands: those whose
// arguments autocli would take in an unusable form.
package cli

import (
	"fmt"
	"strconv"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/client/tx"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/x/market/types"
)

// TxCmd is the root of the hand-written `gpunetd tx market` commands.
func TxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:                        types.ModuleName,
		Short:                      "Market transactions",
		DisableFlagParsing:         true,
		SuggestionsMinimumDistance: 2,
		RunE:                       client.ValidateCmd,
	}
	cmd.AddCommand(createBidCmd())
	return cmd
}

// createBidCmd takes the price as a decimal ("12.5ugpn"); autocli would
// read a DecCoin flag as raw 18-decimal units, so "50000ugpn" would bid
// 0.00000000000005ugpn.
func createBidCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create-bid [owner] [dseq] [gseq] [oseq] [price-per-hour]",
		Short: "Bid on an open order by hand (gpunet-provider bids automatically)",
		Long: `Bid on an order at a price per hour in ugpn, for example 10600ugpn or 12.5ugpn.
--deposit is locked until the bid closes (default: the chain's minimum bid deposit).`,
		Example: "gpunetd tx market create-bid gpunet1tenant... 7 1 1 10600ugpn --deposit 1000000ugpn --from provider",
		Args:    cobra.ExactArgs(5),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientTxContext(cmd)
			if err != nil {
				return err
			}
			id, err := parseOrderID(args[:4])
			if err != nil {
				return err
			}
			price, err := sdk.ParseDecCoin(args[4])
			if err != nil {
				return fmt.Errorf("price %q: %w", args[4], err)
			}
			depStr, _ := cmd.Flags().GetString("deposit")
			var deposit sdk.Coin
			if depStr == "" {
				res, err := types.NewQueryClient(clientCtx).Params(cmd.Context(), &types.QueryParamsRequest{})
				if err != nil {
					return err
				}
				deposit = res.Params.BidMinDeposit
			} else if deposit, err = sdk.ParseCoinNormalized(depStr); err != nil {
				return fmt.Errorf("--deposit %q: %w", depStr, err)
			}
			msg := &types.MsgCreateBid{Provider: clientCtx.GetFromAddress().String(), Order: id, Price: price, Deposit: deposit}
			return tx.GenerateOrBroadcastTxCLI(clientCtx, cmd.Flags(), msg)
		},
	}
	cmd.Flags().String("deposit", "", "bid deposit, e.g. 1000000ugpn (default: the chain's minimum)")
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

func parseOrderID(args []string) (types.OrderID, error) {
	dseq, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return types.OrderID{}, fmt.Errorf("dseq %q is not a number", args[1])
	}
	gseq, err := strconv.ParseUint(args[2], 10, 32)
	if err != nil {
		return types.OrderID{}, fmt.Errorf("gseq %q is not a number", args[2])
	}
	oseq, err := strconv.ParseUint(args[3], 10, 32)
	if err != nil {
		return types.OrderID{}, fmt.Errorf("oseq %q is not a number", args[3])
	}
	return types.OrderID{Owner: args[0], Dseq: dseq, Gseq: uint32(gseq), Oseq: uint32(oseq)}, nil
}
