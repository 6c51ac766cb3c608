package cmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/flags"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/app"
	"github.com/gpunet/gpunet/console"
)

// consoleCommand is `gpunetd console`: the web console.
func consoleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the web console: rent and provide from a browser, with a browser wallet (Keplr, Leap)",
		Long: `Serves the embedded web console and its backend on --listen (loopback by default).
The backend holds no key: it reads the chain through --node, builds transactions for
the browser wallet to sign, and relays the page's signed requests to providers after
checking each provider's certificate against the SHA-256 pinned on chain. Open the
printed URL in a browser with Keplr or Leap.`,
		Example: "gpunetd console --node tcp://127.0.0.1:26657 --chain-id gpunet-local-1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cc, err := client.GetClientQueryContext(cmd)
			if err != nil {
				return err
			}
			listen, _ := cmd.Flags().GetString("listen")
			rest, _ := cmd.Flags().GetString("rest")
			gp, _ := cmd.Flags().GetString("gas-prices")
			adj, _ := cmd.Flags().GetFloat64("gas-adjustment")
			price, err := sdk.ParseDecCoin(gp)
			if err != nil || !price.IsPositive() {
				return fmt.Errorf("--gas-prices %q: want a positive price such as %s", gp, app.DefaultMinGasPrice)
			}
			rpc := strings.Replace(cc.NodeURI, "tcp://", "http://", 1)
			if rest == "" {
				// Wallets want a REST endpoint too: the node's, on the
				// SDK's default port, unless told otherwise.
				if u, err := url.Parse(rpc); err == nil && u.Hostname() != "" {
					rest = "http://" + net.JoinHostPort(u.Hostname(), "1317")
				}
			}
			srv, err := console.New(console.Options{
				Client: cc, RPC: rpc, REST: rest, GasPrice: price, GasAdjustment: adj,
				Denom: app.BondDenom, DisplayDenom: app.DisplayDenom, Exponent: app.DenomExponent, Bech32Prefix: app.AccountAddressPrefix,
				Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "gpunet console for %s at http://%s/ (node %s)\n", cc.ChainID, ln.Addr(), cc.NodeURI)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx) // streams still open are cut
			}()
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	flags.AddQueryFlagsToCmd(cmd)
	cmd.Flags().String(flags.FlagChainID, "", "the chain's id")
	cmd.Flags().String("listen", "127.0.0.1:8080", "address the console serves on (keep it on loopback: it is your wallet's gateway)")
	cmd.Flags().String("rest", "", "the node's REST API URL to proxy under /rest/ (default: the --node host on port 1317)")
	cmd.Flags().String("gas-prices", app.DefaultMinGasPrice, "gas price of the transactions the console builds")
	cmd.Flags().Float64("gas-adjustment", 1.4, "multiplier on simulated gas")
	return cmd
}
