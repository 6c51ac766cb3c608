package cmd

import (
	"fmt"
	"os"
	"path/filepath"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	dbm "github.com/cosmos/cosmos-db"
	"github.com/spf13/cobra"

	"cosmossdk.io/core/header"
	"cosmossdk.io/log/v2"

	"github.com/cosmos/cosmos-sdk/server"

	"github.com/gpunet/gpunet/app"
)

// invariantsCommand checks every invariant of gpunet's modules on a
// stopped node's committed state: what the escrow, market and provider
// module accounts hold against what they owe, each lease's order, payment
// and provider, the order queue, attestations and the audit index.
func invariantsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "invariants",
		Short: "Check gpunet's invariants on this node's last committed state (stop the node first)",
		Long: `Opens the node's application database (under --home), loads its last
committed state and runs every invariant of gpunet's modules: the escrow,
market and provider module accounts hold exactly what they owe (deposits,
bonds, fees held for disputes), every lease has its order, payment and
provider, each open order is queued once, attestations and the audit index
are consistent. Exits with an error naming the first invariant broken.
The node must be stopped: its database is opened for this check alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sctx := server.GetServerContextFromCmd(cmd)
			home := sctx.Config.RootDir
			if _, err := os.Stat(filepath.Join(home, "data", "application.db")); err != nil {
				return fmt.Errorf("no application database under %s: %w", home, err)
			}
			db, err := dbm.NewDB("application", server.GetAppDBBackend(sctx.Viper), filepath.Join(home, "data"))
			if err != nil {
				return fmt.Errorf("open the application database under %s (is the node stopped?): %w", home, err)
			}
			defer func() { _ = db.Close() }() // read only: nothing to lose
			a, err := app.New(log.NewNopLogger(), db, true, sctx.Viper)
			if err != nil {
				return err
			}
			h := a.LastBlockHeight()
			if h == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no committed state under %s: nothing to check\n", home)
				return nil
			}
			ctx := a.NewContextLegacy(true, cmtproto.Header{Height: h}).WithHeaderInfo(header.Info{Height: h})
			if err := a.CheckInvariants(ctx); err != nil {
				return fmt.Errorf("height %d: %w", h, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "every invariant holds at height %d\n", h)
			return nil
		},
	}
}
