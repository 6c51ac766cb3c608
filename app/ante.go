package app

import (
	"fmt"

	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	"github.com/cosmos/cosmos-sdk/x/auth/ante"
	"github.com/cosmos/cosmos-sdk/x/authz"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
)

// newAnteHandler is the SDK's standard ante chain behind a check that every
// fee and bank transfer is in ugpn. Without it a transfer in a foreign denom
// is admitted to the mempool (CheckTx does not run messages) and fails only
// in the block, after the sender has paid the fee.
func newAnteHandler(app *App) (sdk.AnteHandler, error) {
	std, err := ante.NewAnteHandler(ante.HandlerOptions{
		AccountKeeper:   app.AccountKeeper,
		BankKeeper:      app.BankKeeper,
		SignModeHandler: app.txConfig.SignModeHandler(),
		FeegrantKeeper:  app.FeeGrantKeeper,
		SigGasConsumer:  ante.DefaultSigVerificationGasConsumer,
	})
	if err != nil {
		return nil, fmt.Errorf("build ante handler: %w", err)
	}
	return func(ctx sdk.Context, tx sdk.Tx, simulate bool) (sdk.Context, error) {
		if err := checkNativeDenom(tx); err != nil {
			return ctx, err
		}
		return std(ctx, tx, simulate)
	}, nil
}

func checkNativeDenom(tx sdk.Tx) error {
	if feeTx, ok := tx.(sdk.FeeTx); ok {
		if err := onlyNative("fee", feeTx.GetFee()); err != nil {
			return errorsmod.Wrap(sdkerrors.ErrInvalidCoins, err.Error())
		}
	}
	return checkMsgsNativeDenom(tx.GetMsgs(), 0)
}

// maxNesting bounds how deep authz MsgExec wrappers are followed.
const maxNesting = 4

func checkMsgsNativeDenom(msgs []sdk.Msg, depth int) error {
	if depth > maxNesting {
		return errorsmod.Wrapf(sdkerrors.ErrInvalidRequest, "messages nested more than %d levels deep", maxNesting)
	}
	for _, m := range msgs {
		var err error
		switch msg := m.(type) {
		case *banktypes.MsgSend:
			err = onlyNative("amount", msg.Amount)
		case *banktypes.MsgMultiSend:
			for _, in := range msg.Inputs {
				if err = onlyNative("input", in.Coins); err != nil {
					break
				}
			}
		case *authz.MsgExec:
			inner, uerr := msg.GetMessages()
			if uerr != nil {
				return errorsmod.Wrap(sdkerrors.ErrInvalidRequest, uerr.Error())
			}
			if err := checkMsgsNativeDenom(inner, depth+1); err != nil {
				return err
			}
		}
		if err != nil {
			return errorsmod.Wrap(sdkerrors.ErrInvalidCoins, err.Error())
		}
	}
	return nil
}

func onlyNative(what string, coins sdk.Coins) error {
	for _, c := range coins {
		if c.Denom != BondDenom {
			return fmt.Errorf("%s is in %q, but gpunet only uses %s (1 GPN = 1000000%s)", what, c.Denom, BondDenom, BondDenom)
		}
	}
	return nil
}
