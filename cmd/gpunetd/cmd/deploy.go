package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/flags"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/spf13/cobra"

	gpncoin "github.com/gpunet/gpunet/internal/coin"
	"github.com/gpunet/gpunet/sdl"
	"github.com/gpunet/gpunet/tenant"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

const (
	flagDeposit   = "deposit"
	flagBidWindow = "bid-window"
	flagFollow    = "follow"
	flagWait      = "wait"
	flagUpdate    = "update"
	flagAutoTopUp = "auto-topup"
	flagTopUpMax  = "topup-limit"
)

func tenantClient(cmd *cobra.Command) (*tenant.Client, client.Context, error) {
	ctx, err := client.GetClientTxContext(cmd)
	if err != nil {
		return nil, ctx, err
	}
	c, err := tenant.NewClient(ctx)
	if err != nil {
		return nil, ctx, err
	}
	if c.Fees, err = tenant.FeeSettingsFromFlags(cmd.Flags()); err != nil {
		return nil, ctx, err
	}
	return c, ctx, nil
}

func jsonOutput(cmd *cobra.Command) bool {
	// The tx flags default --output to json; these commands print text unless asked.
	o, _ := cmd.Flags().GetString(flags.FlagOutput)
	return cmd.Flags().Changed(flags.FlagOutput) && o == "json"
}

// deployCommand is `gpunetd deploy FILE`.
func deployCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy [sdl-file]",
		Short: "Deploy an SDL file: create the deployment, watch the auction, send the manifest, wait until it runs",
		Long: `Creates the deployment on chain with the manifest's hash, shows bids as they arrive
(provider, price per hour, reliability), waits for the auction to close, sends the manifest to
the winning provider over its certificate-pinned HTTPS API with a request signed by your key,
and waits until the containers run, printing their endpoints. With --follow it streams the
logs until the job ends (or Ctrl-C) and prints how the lease closed and where the money went.
The manifest is kept under <home>/deployments so 'gpunetd lease ...' needs only the dseq.
Ctrl-C before the containers run leaves the deployment open on chain and prints how to close
or resume it. With --update DSEQ the file replaces a running deployment's version in place
(same leases, escrow and persistent volumes); the leased resources cannot change, and a version
a provider cannot run leaves the previous one running. Transactions pay --fees, or --gas-prices (default 0.025ugpn) per unit of gas:
--gas, or the simulated gas times --gas-adjustment (default 1.4 here).`,
		Example: `gpunetd deploy examples/gpu-job.yaml --from tenant --deposit 10000000ugpn --follow
gpunetd deploy examples/cpu-service.yaml --from tenant --output json
gpunetd deploy examples/cpu-service.yaml --from tenant --update 42   # the same deployment, new version
gpunetd deploy examples/gpu-job.yaml --from tenant --auto-topup 5000000ugpn --topup-limit 50000000ugpn`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := sdl.Load(args[0])
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, w := range d.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %s\n", args[0], w)
			}
			c, cctx, err := tenantClient(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cmd.Flags().Changed(flagUpdate) {
				dseq, _ := cmd.Flags().GetUint64(flagUpdate)
				wait, _ := cmd.Flags().GetDuration(flagWait)
				res, err := c.Update(ctx, dseq, d, tenant.NewStore(cctx.HomeDir), tenant.Options{SDLFile: args[0], Wait: wait, Progress: cmd.ErrOrStderr()})
				if res != nil && jsonOutput(cmd) {
					_ = json.NewEncoder(cmd.OutOrStdout()).Encode(res)
				}
				if err == nil && !jsonOutput(cmd) {
					fmt.Fprintf(cmd.ErrOrStderr(), "deployment %d runs the new version. Logs: gpunetd lease logs %d --follow\n", dseq, dseq)
				}
				return err
			}
			deposit, err := depositFlag(ctx, cmd, c)
			if err != nil {
				return err
			}
			window, _ := cmd.Flags().GetUint64(flagBidWindow)
			follow, _ := cmd.Flags().GetBool(flagFollow)
			wait, _ := cmd.Flags().GetDuration(flagWait)
			asJSON := jsonOutput(cmd)
			opts := tenant.Options{Deposit: deposit, BidWindow: window, Follow: follow, SDLFile: args[0], Wait: wait,
				Progress: cmd.ErrOrStderr(), Logs: cmd.OutOrStdout()}
			if opts.AutoTopUp, opts.TopUpLimit, err = topUpFlags(cmd); err != nil {
				return err
			}
			if asJSON {
				opts.Logs = cmd.ErrOrStderr()
			}
			res, err := c.Deploy(ctx, d, tenant.NewStore(cctx.HomeDir), opts)
			if res != nil && asJSON {
				_ = json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			if err != nil {
				// A *tenant.Interrupted (Ctrl-C) says how to close or resume.
				return err
			}
			if ctx.Err() != nil {
				from := cctx.GetFromName()
				fmt.Fprintf(cmd.ErrOrStderr(), "\ninterrupted: deployment %d keeps running. Logs: gpunetd lease logs %d --from %s --follow; stop it: gpunetd tx market close-deployment %d --from %s\n", res.DSeq, res.DSeq, from, res.DSeq, from)
				return nil
			}
			if !asJSON {
				printSettlement(cmd, res)
			}
			return nil
		},
	}
	cmd.Flags().String(flagDeposit, "", "escrow deposit, e.g. 10000000ugpn (default: the chain's minimum)")
	cmd.Flags().Uint64(flagBidWindow, 0, "blocks the auction stays open (default: the chain's default)")
	cmd.Flags().Bool(flagFollow, false, "stream logs until the job ends, then show how it closed and settled")
	cmd.Flags().Duration(flagWait, 2*time.Minute, "how long to wait for each step (auction, start, close)")
	cmd.Flags().String(flagAutoTopUp, "", "refill the escrow by this much whenever it would run dry soon, e.g. 5000000ugpn (needs --topup-limit)")
	cmd.Flags().String(flagTopUpMax, "", "the most the automatic top-up pays in all, e.g. 50000000ugpn")
	cmd.Flags().Uint64(flagUpdate, 0, "update this running deployment (dseq) in place to the file: same leases, escrow and volumes; new image, command, env or ports")
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

// topUpFlags reads --auto-topup and --topup-limit (both or neither).
func topUpFlags(cmd *cobra.Command) (sdk.Coin, sdk.Coin, error) {
	a, _ := cmd.Flags().GetString(flagAutoTopUp)
	l, _ := cmd.Flags().GetString(flagTopUpMax)
	if a == "" && l == "" {
		return sdk.Coin{}, sdk.Coin{}, nil
	}
	if a == "" || l == "" {
		return sdk.Coin{}, sdk.Coin{}, fmt.Errorf("--%s and --%s go together: how much per refill, and how much in all", flagAutoTopUp, flagTopUpMax)
	}
	amount, err := sdk.ParseCoinNormalized(a)
	if err != nil || amount.Denom != gpncoin.Denom || !amount.IsPositive() {
		return sdk.Coin{}, sdk.Coin{}, fmt.Errorf("--%s %q: give a positive amount in ugpn", flagAutoTopUp, a)
	}
	limit, err := sdk.ParseCoinNormalized(l)
	if err != nil || limit.Denom != gpncoin.Denom || limit.Amount.LT(amount.Amount) {
		return sdk.Coin{}, sdk.Coin{}, fmt.Errorf("--%s %q: give an amount in ugpn of at least one refill (%s)", flagTopUpMax, l, amount)
	}
	return amount, limit, nil
}

func depositFlag(ctx context.Context, cmd *cobra.Command, c *tenant.Client) (sdk.Coin, error) {
	s, _ := cmd.Flags().GetString(flagDeposit)
	if s == "" {
		p, err := c.Market.Params(ctx, &markettypes.QueryParamsRequest{})
		if err != nil {
			return sdk.Coin{}, fmt.Errorf("read market params: %w", err)
		}
		return p.Params.MinDeposit, nil
	}
	coin, err := sdk.ParseCoinNormalized(s)
	if err != nil {
		return sdk.Coin{}, fmt.Errorf("--deposit %q: %w", s, err)
	}
	if coin.Denom != gpncoin.Denom {
		return sdk.Coin{}, fmt.Errorf("--deposit %q: deposits are in ugpn (1 GPN = 1000000ugpn)", s)
	}
	return coin, nil
}

func printSettlement(cmd *cobra.Command, res *tenant.Result) {
	out := cmd.ErrOrStderr()
	var steps []string
	for _, s := range res.Steps {
		steps = append(steps, fmt.Sprintf("%s %.1fs", s.Name, s.Seconds))
	}
	fmt.Fprintf(out, "steps: %s\n", strings.Join(steps, ", "))
	if s := res.Settlement; s != nil {
		fmt.Fprintf(out, "settlement of deployment %d:\n  tenant paid      %s\n  provider earned  %s\n  stakers (take)   %s\n  refunded         %s\n",
			res.DSeq, gpn(s.TenantPaid), gpn(s.ProviderEarned), gpn(s.StakersTake), gpn(s.Refunded))
	} else {
		fmt.Fprintf(out, "deployment %d is running. Logs: gpunetd lease logs %d --follow; status: gpunetd lease status %d; stop: gpunetd tx market close-deployment %d\n", res.DSeq, res.DSeq, res.DSeq, res.DSeq)
	}
}

func gpn(c sdk.Coin) string {
	return fmt.Sprintf("%s (%s GPN)", c, sdkDec(c))
}

func sdkDec(c sdk.Coin) string {
	whole := c.Amount.QuoRaw(1_000_000)
	frac := c.Amount.ModRaw(1_000_000)
	return fmt.Sprintf("%s.%06d", whole, frac.Int64())
}
