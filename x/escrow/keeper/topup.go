package keeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/sweep"
)

// Automatic refills: an account with an AutoTopUp is queued at its
// depletion less auto_topup_horizon. EndBlock takes the due entries (at
// most max_topups_per_block, earliest first) and moves amount (or what is
// left of limit) from the payer into the account, which moves its
// depletion and so its next refill. A payer who cannot pay is told by an
// event; the account then runs dry as it would without a top-up.

// SetAutoTopUp sets (or replaces) the account's automatic refill, paid by
// payer. Replacing a refill another account pays takes the owner (or that
// payer): nobody else can take away a deployment's funding.
func (k *Keeper) SetAutoTopUp(ctx context.Context, id types.AccountID, payer sdk.AccAddress, amount, limit sdk.Coin) error {
	l, err := k.loadSettled(ctx, id)
	if err != nil {
		return err
	}
	if err := checkAmount(amount); err != nil {
		return errorsmod.Wrap(err, "amount per refill")
	}
	if err := checkAmount(limit); err != nil {
		return errorsmod.Wrap(err, "limit")
	}
	if amount.Denom != l.account.Denom || limit.Denom != l.account.Denom {
		return errorsmod.Wrapf(types.ErrInvalidDenom, "refills of account %s are in %s", id.Name(), l.account.Denom)
	}
	if limit.Amount.LT(amount.Amount) {
		return errorsmod.Wrapf(types.ErrInvalidAmount, "limit %s is below one refill of %s", limit, amount)
	}
	payerAddr, err := k.addressCodec.BytesToString(payer)
	if err != nil {
		return errorsmod.Wrapf(types.ErrInvalidAddress, "payer: %v", err)
	}
	if old, err := k.AutoTopUps.Get(ctx, l.key); err == nil {
		if old.Payer != payerAddr && !l.key.K2().Equals(payer) {
			return errorsmod.Wrapf(types.ErrUnauthorized, "account %s is refilled by %s: only it or the owner may replace that", id.Name(), old.Payer)
		}
		if err := k.unqueueTopUp(ctx, l.key, old); err != nil {
			return err
		}
	} else if !errors.Is(err, collections.ErrNotFound) {
		return err
	}
	tu := types.AutoTopUp{Id: l.account.Id, Payer: payerAddr, Amount: amount, Limit: limit, Spent: sdkmath.ZeroInt()}
	if err := k.AutoTopUps.Set(ctx, l.key, tu); err != nil {
		return err
	}
	if err := k.save(ctx, l); err != nil { // queues the refill
		return err
	}
	return k.emit(ctx, &types.EventAutoTopUpSet{Id: l.account.Id, Payer: tu.Payer, Amount: amount, Limit: limit})
}

// CancelAutoTopUp ends the account's automatic refill; its owner or its
// payer may.
func (k *Keeper) CancelAutoTopUp(ctx context.Context, id types.AccountID, sender sdk.AccAddress) error {
	key, err := k.accountKey(id)
	if err != nil {
		return err
	}
	tu, err := k.AutoTopUps.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return errorsmod.Wrapf(types.ErrAccountNotFound, "account %s has no automatic refill", id.Name())
	}
	if err != nil {
		return err
	}
	senderAddr, err := k.addressCodec.BytesToString(sender)
	if err != nil {
		return errorsmod.Wrapf(types.ErrInvalidAddress, "sender: %v", err)
	}
	if tu.Payer != senderAddr && !key.K2().Equals(sender) {
		return errorsmod.Wrapf(types.ErrUnauthorized, "only the owner or the payer %s may cancel the refill of %s", tu.Payer, id.Name())
	}
	return k.endTopUp(ctx, key, types.TopUpCancelled)
}

// endTopUp removes an account's refill, if any, with its queue entry.
func (k *Keeper) endTopUp(ctx context.Context, key AccountKey, reason string) error {
	tu, err := k.AutoTopUps.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := k.unqueueTopUp(ctx, key, tu); err != nil {
		return err
	}
	if err := k.AutoTopUps.Remove(ctx, key); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventAutoTopUpEnded{Id: tu.Id, Payer: tu.Payer, Reason: reason})
}

func (k *Keeper) unqueueTopUp(ctx context.Context, key AccountKey, tu types.AutoTopUp) error {
	if tu.QueuedAt == nil {
		return nil
	}
	return k.TopUpQueue.Remove(ctx, collections.Join(*tu.QueuedAt, key))
}

// requeueTopUp moves the account's refill to its depletion less the
// horizon (none while nothing is paid from it); save calls it.
func (k *Keeper) requeueTopUp(ctx context.Context, l *ledger) error {
	tu, err := k.AutoTopUps.Get(ctx, l.key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var due *time.Time
	if d := l.account.DepletesAt; d != nil {
		params, err := k.Params.Get(ctx)
		if err != nil {
			return err
		}
		t := d.Add(-params.AutoTopupHorizon)
		due = &t
	}
	if (due == nil) == (tu.QueuedAt == nil) && (due == nil || due.Equal(*tu.QueuedAt)) {
		return nil
	}
	if err := k.unqueueTopUp(ctx, l.key, tu); err != nil {
		return err
	}
	if due != nil {
		if err := k.TopUpQueue.Set(ctx, collections.Join(*due, l.key)); err != nil {
			return err
		}
	}
	tu.QueuedAt = due
	return k.AutoTopUps.Set(ctx, l.key, tu)
}

// topUps is the sweep over the refill queue.
func (k *Keeper) topUps() sweep.Queue[time.Time, AccountKey] {
	return sweep.Queue[time.Time, AccountKey]{Module: types.ModuleName, Name: "topups", Set: k.TopUpQueue, Parked: k.Parked,
		Describe: func(key AccountKey) string { return fmt.Sprintf("refill of account %s/%d", key.K2(), key.K1()) }}
}

// refill moves one refill from the payer into a due account (the sweep
// already took its queue entry).
func (k *Keeper) refill(ctx context.Context, key AccountKey) error {
	tu, err := k.AutoTopUps.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil // cancelled since it was queued
	}
	if err != nil {
		return err
	}
	tu.QueuedAt = nil
	left := tu.Limit.Amount.Sub(tu.Spent)
	if !left.IsPositive() {
		return k.endTopUp(ctx, key, types.TopUpLimitReached)
	}
	l, err := k.loadKey(ctx, key, "refilled account")
	if err != nil {
		return err
	}
	types.Settle(&l.account, l.payments, k.now(ctx))
	amount := sdk.NewCoin(tu.Amount.Denom, sdkmath.MinInt(tu.Amount.Amount, left))
	payer, err := k.addressCodec.StringToBytes(tu.Payer)
	if err != nil {
		return err
	}
	// The transfer runs on a branch: a payer short of funds changes nothing
	// but is told why.
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	branch, write := sdkCtx.CacheContext()
	if err := k.toModule(branch, payer, sdk.NewCoins(amount)); err != nil {
		if err := k.AutoTopUps.Set(ctx, key, tu); err != nil { // unqueued until the account changes
			return err
		}
		return k.emit(ctx, &types.EventAutoTopUpFailed{Id: tu.Id, Payer: tu.Payer, Reason: err.Error()})
	}
	write()
	tu.Spent = tu.Spent.Add(amount.Amount)
	if err := k.AutoTopUps.Set(ctx, key, tu); err != nil {
		return err
	}
	l.account.Balance = l.account.Balance.Add(amount.Amount)
	l.account.Deposited = l.account.Deposited.Add(amount.Amount)
	if err := k.save(ctx, l); err != nil { // queues the next refill
		return err
	}
	if err := k.emit(ctx, &types.EventAutoTopUp{Id: tu.Id, Payer: tu.Payer, Amount: amount, Spent: sdk.NewCoin(amount.Denom, tu.Spent)}); err != nil {
		return err
	}
	if err := k.emit(ctx, &types.EventAccountDeposited{Id: tu.Id, Depositor: tu.Payer, Amount: amount}); err != nil {
		return err
	}
	if tu.Spent.GTE(tu.Limit.Amount) {
		return k.endTopUp(ctx, key, types.TopUpLimitReached)
	}
	return nil
}
