package keeper

import (
	"context"
	"time"

	errorsmod "cosmossdk.io/errors"

	"github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/sweep"
)

type msgServer struct{ *Keeper }

var _ types.MsgServer = msgServer{}

// NewMsgServerImpl returns the x/escrow Msg service.
func NewMsgServerImpl(k *Keeper) types.MsgServer { return msgServer{k} }

// Deposit tops up an account.
func (k msgServer) Deposit(ctx context.Context, msg *types.MsgDeposit) (*types.MsgDepositResponse, error) {
	depositor, err := k.addressCodec.StringToBytes(msg.Depositor)
	if err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidAddress, "depositor %q: %v", msg.Depositor, err)
	}
	if err := k.Keeper.Deposit(ctx, msg.Account, depositor, msg.Amount); err != nil {
		return nil, err
	}
	return &types.MsgDepositResponse{}, nil
}

// SetAutoTopUp sets the signer as the payer of an account's automatic
// refills.
func (k msgServer) SetAutoTopUp(ctx context.Context, msg *types.MsgSetAutoTopUp) (*types.MsgSetAutoTopUpResponse, error) {
	payer, err := k.addressCodec.StringToBytes(msg.Payer)
	if err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidAddress, "payer %q: %v", msg.Payer, err)
	}
	if err := k.Keeper.SetAutoTopUp(ctx, msg.Account, payer, msg.Amount, msg.Limit); err != nil {
		return nil, err
	}
	return &types.MsgSetAutoTopUpResponse{}, nil
}

// CancelAutoTopUp ends an account's automatic refills.
func (k msgServer) CancelAutoTopUp(ctx context.Context, msg *types.MsgCancelAutoTopUp) (*types.MsgCancelAutoTopUpResponse, error) {
	sender, err := k.addressCodec.StringToBytes(msg.Sender)
	if err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidAddress, "sender %q: %v", msg.Sender, err)
	}
	if err := k.Keeper.CancelAutoTopUp(ctx, msg.Account, sender); err != nil {
		return nil, err
	}
	return &types.MsgCancelAutoTopUpResponse{}, nil
}

// WithdrawPayment pays out a payment to its provider; only the provider may.
func (k msgServer) WithdrawPayment(ctx context.Context, msg *types.MsgWithdrawPayment) (*types.MsgWithdrawPaymentResponse, error) {
	if _, err := k.addressCodec.StringToBytes(msg.Provider); err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidAddress, "provider %q: %v", msg.Provider, err)
	}
	if msg.Provider != msg.Payment.Provider {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "%s is not the provider of %s", msg.Provider, msg.Payment.Name())
	}
	net, err := k.Keeper.WithdrawPayment(ctx, msg.Payment)
	if err != nil {
		return nil, err
	}
	return &types.MsgWithdrawPaymentResponse{Net: net}, nil
}

// UpdateParams sets the params; only the authority may.
func (k msgServer) UpdateParams(ctx context.Context, msg *types.MsgUpdateParams) (*types.MsgUpdateParamsResponse, error) {
	if msg.Authority != k.authority {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "expected %s, got %s", k.authority, msg.Authority)
	}
	if err := msg.Params.Validate(); err != nil {
		return nil, errorsmod.Wrap(types.ErrInvalidParams, err.Error())
	}
	return &types.MsgUpdateParamsResponse{}, k.Params.Set(ctx, msg.Params)
}

// RetryParked puts the entries an EndBlock sweep parked back on their
// queue ("depletions" or "topups"); only the authority may.
func (k msgServer) RetryParked(ctx context.Context, msg *types.MsgRetryParked) (*types.MsgRetryParkedResponse, error) {
	if msg.Authority != k.authority {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "expected %s, got %s", k.authority, msg.Authority)
	}
	var q sweep.Queue[time.Time, AccountKey]
	switch msg.Queue {
	case "depletions":
		q = k.depletions()
	case "topups":
		q = k.topUps()
	default:
		return nil, errorsmod.Wrapf(types.ErrInvalidParams, "no queue %q: depletions or topups", msg.Queue)
	}
	n, err := q.Retry(ctx)
	if err != nil {
		return nil, err
	}
	return &types.MsgRetryParkedResponse{Retried: uint32(n)}, nil
}
