package app

import (
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"

	sdk "github.com/cosmos/cosmos-sdk/types"
)

// initChainer is the modules' InitGenesis followed by every invariant
// (app/invariants.go): each module checks its own genesis, but only the
// invariants see across modules. A genesis whose module accounts hold more
// or less than the escrow accounts, deposits and bonds they owe (ugpn
// created or lost between modules), whose leases lack their orders,
// payments or providers, or whose order queue misses an open order, starts
// no chain; the error names the invariant.
func (app *App) initChainer(ctx sdk.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	res, err := app.App.InitChainer(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := app.CheckInvariants(ctx); err != nil {
		return nil, fmt.Errorf("genesis refused: %w", err)
	}
	return res, nil
}
