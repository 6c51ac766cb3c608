package keeper

import (
	"context"
	"time"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// CreateAccount opens the escrow account of a deployment with a first
// deposit taken from depositor.
func (k *Keeper) CreateAccount(ctx context.Context, id types.AccountID, depositor sdk.AccAddress, deposit sdk.Coin) error {
	key, err := k.accountKey(id)
	if err != nil {
		return err
	}
	if has, err := k.Accounts.Has(ctx, key); err != nil {
		return err
	} else if has {
		return errorsmod.Wrapf(types.ErrAccountExists, "%s", id.Name())
	}
	if err := checkAmount(deposit); err != nil {
		return err
	}
	if err := k.toModule(ctx, depositor, sdk.NewCoins(deposit)); err != nil {
		return errorsmod.Wrap(err, "deposit")
	}
	acc := types.Account{
		Id: id, Denom: deposit.Denom, Balance: deposit.Amount, Deposited: deposit.Amount,
		Transferred: sdkmath.ZeroInt(), SettledAt: k.now(ctx), TotalRate: sdkmath.LegacyZeroDec(),
	}
	if err := k.Accounts.Set(ctx, key, acc); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventAccountCreated{Id: id, Deposit: deposit})
}

// Deposit tops up an open account; anyone may pay for anyone's deployment.
func (k *Keeper) Deposit(ctx context.Context, id types.AccountID, depositor sdk.AccAddress, amount sdk.Coin) error {
	l, err := k.loadSettled(ctx, id)
	if err != nil {
		return err
	}
	if err := checkAmount(amount); err != nil {
		return err
	}
	if amount.Denom != l.account.Denom {
		return errorsmod.Wrapf(types.ErrInvalidDenom, "deposit is in %q; account %s is in %s", amount.Denom, id.Name(), l.account.Denom)
	}
	if err := k.toModule(ctx, depositor, sdk.NewCoins(amount)); err != nil {
		return errorsmod.Wrap(err, "deposit")
	}
	l.account.Balance = l.account.Balance.Add(amount.Amount)
	l.account.Deposited = l.account.Deposited.Add(amount.Amount)
	if err := k.save(ctx, l); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventAccountDeposited{Id: id, Depositor: depositor.String(), Amount: amount})
}

// OpenPayment starts paying provider rate (per hour) from the account, from
// the current block time on.
func (k *Keeper) OpenPayment(ctx context.Context, id types.PaymentID, rate sdkmath.LegacyDec) error {
	if rate.IsNil() || !rate.IsPositive() {
		return errorsmod.Wrapf(types.ErrInvalidRate, "rate must be positive, got %s", rate)
	}
	pk, provider, err := k.paymentKey(id)
	if err != nil {
		return err
	}
	l, err := k.loadSettled(ctx, id.Account)
	if err != nil {
		return err
	}
	if has, err := k.Payments.Has(ctx, pk); err != nil {
		return err
	} else if has {
		return errorsmod.Wrapf(types.ErrPaymentExists, "%s", id.Name())
	}
	l.payments = append(l.payments, &types.Payment{
		Id: id, Rate: rate, Accrued: sdkmath.ZeroInt(), Withdrawn: sdkmath.ZeroInt(),
		Remainder: sdkmath.LegacyZeroDec(), OpenedAt: k.now(ctx),
		RunFrom: l.account.SettledAt, RunAccrued: sdkmath.ZeroInt(), RunRemainder: sdkmath.LegacyZeroDec(),
	})
	if err := k.PaymentsByProvider.Set(ctx, collections.Join(provider, pk)); err != nil {
		return err
	}
	if err := k.save(ctx, l); err != nil {
		return err
	}
	return k.emit(ctx, &types.EventPaymentOpened{Id: id, Rate: rate.String()})
}

// PausePayment stops a payment accruing from now on (its lease was
// attested down); ResumePayment starts it again. Both are no-ops on a
// payment already in that state.
func (k *Keeper) PausePayment(ctx context.Context, id types.PaymentID) error {
	return k.setPaused(ctx, id, true)
}

// ResumePayment: see PausePayment.
func (k *Keeper) ResumePayment(ctx context.Context, id types.PaymentID) error {
	return k.setPaused(ctx, id, false)
}

func (k *Keeper) setPaused(ctx context.Context, id types.PaymentID, paused bool) error {
	l, p, err := k.loadPayment(ctx, id)
	if err != nil {
		return err
	}
	if p.Paused == paused {
		return nil
	}
	p.Paused = paused
	if !paused { // a new run from the settlement clock's current second
		p.RunFrom, p.RunAccrued, p.RunRemainder = l.account.SettledAt, p.Accrued, p.Remainder
	}
	if err := k.save(ctx, l); err != nil {
		return err
	}
	if paused {
		return k.emit(ctx, &types.EventPaymentPaused{Id: id})
	}
	return k.emit(ctx, &types.EventPaymentResumed{Id: id})
}

// WithdrawPayment pays the provider what the payment has accrued and not yet
// paid, up to its provider's last attestation, less the take, which goes to
// the fee collector.
func (k *Keeper) WithdrawPayment(ctx context.Context, id types.PaymentID) (sdk.Coin, error) {
	l, p, err := k.loadPayment(ctx, id)
	if err != nil {
		return sdk.Coin{}, err
	}
	net, err := k.payOut(ctx, l, p, false)
	if err != nil {
		return sdk.Coin{}, err
	}
	return net, k.save(ctx, l)
}

// ClosePayment settles and pays out a payment and stops it.
func (k *Keeper) ClosePayment(ctx context.Context, id types.PaymentID, reason string) error {
	l, p, err := k.loadPayment(ctx, id)
	if err != nil {
		return err
	}
	if err := k.closePayment(ctx, l, p, reason); err != nil {
		return err
	}
	return k.save(ctx, l)
}

// CloseAccount settles the account, pays out and closes every payment,
// refunds the balance to the owner and removes the account.
func (k *Keeper) CloseAccount(ctx context.Context, id types.AccountID, reason string) (sdk.Coin, error) {
	l, err := k.loadSettled(ctx, id)
	if err != nil {
		return sdk.Coin{}, err
	}
	return k.closeAccount(ctx, l, reason)
}

func (k *Keeper) closeAccount(ctx context.Context, l *ledger, reason string) (sdk.Coin, error) {
	for len(l.payments) > 0 {
		if err := k.closePayment(ctx, l, l.payments[0], reason); err != nil {
			return sdk.Coin{}, err
		}
	}
	refund := sdk.NewCoin(l.account.Denom, l.account.Balance)
	if refund.IsPositive() {
		if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, l.key.K2(), sdk.NewCoins(refund)); err != nil {
			return sdk.Coin{}, err
		}
	}
	if l.oldDue != nil {
		if err := k.DepletionQueue.Remove(ctx, collections.Join(*l.oldDue, l.key)); err != nil {
			return sdk.Coin{}, err
		}
	}
	if err := k.endTopUp(ctx, l.key, types.TopUpAccountClosed); err != nil {
		return sdk.Coin{}, err
	}
	if err := k.Accounts.Remove(ctx, l.key); err != nil {
		return sdk.Coin{}, err
	}
	return refund, k.emit(ctx, &types.EventAccountClosed{Id: l.account.Id, Reason: reason, Refund: refund})
}

// closePayment pays out p, removes it from the store and from l.
func (k *Keeper) closePayment(ctx context.Context, l *ledger, p *types.Payment, reason string) error {
	if _, err := k.payOut(ctx, l, p, true); err != nil {
		return err
	}
	pk, provider, err := k.paymentKey(p.Id)
	if err != nil {
		return err
	}
	if err := k.Payments.Remove(ctx, pk); err != nil {
		return err
	}
	if err := k.PaymentsByProvider.Remove(ctx, collections.Join(provider, pk)); err != nil {
		return err
	}
	for i, q := range l.payments {
		if q == p {
			l.payments = append(l.payments[:i], l.payments[i+1:]...)
			break
		}
	}
	return k.emit(ctx, &types.EventPaymentClosed{Id: p.Id, Reason: reason})
}

// payOut sends p's unwithdrawn accrual to its provider, less the take, up
// to what the provider may be paid (x/market's BillableUntil: its last
// attestation). When closing past that limit, what accrued after it goes
// back to the account's balance, to be refunded (clawBack).
func (k *Keeper) payOut(ctx context.Context, l *ledger, p *types.Payment, closing bool) (sdk.Coin, error) {
	denom := l.account.Denom
	payable := p.Accrued
	if k.hooks != nil {
		until, ok, err := k.hooks.BillableUntil(ctx, p.Id.Provider, closing)
		if err != nil {
			return sdk.Coin{}, err
		}
		if ok {
			at, rem := types.AccruedAt(p, until)
			payable = sdkmath.MaxInt(at, p.Withdrawn) // paid out is paid out
			if closing && payable.LT(p.Accrued) {
				if err := k.clawBack(ctx, l, p, payable, at, rem, until); err != nil {
					return sdk.Coin{}, err
				}
			}
		}
	}
	gross := payable.Sub(p.Withdrawn)
	if !gross.IsPositive() {
		return sdk.NewCoin(denom, sdkmath.ZeroInt()), nil
	}
	params, err := k.Params.Get(ctx)
	if err != nil {
		return sdk.Coin{}, err
	}
	take, net := types.Take(gross, params.TakeRate)
	provider, err := k.addressCodec.StringToBytes(p.Id.Provider)
	if err != nil {
		return sdk.Coin{}, err
	}
	if net.IsPositive() {
		if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, provider, sdk.NewCoins(sdk.NewCoin(denom, net))); err != nil {
			return sdk.Coin{}, err
		}
	}
	if take.IsPositive() {
		if err := k.bank.SendCoinsFromModuleToModule(ctx, types.ModuleName, k.feeCollector, sdk.NewCoins(sdk.NewCoin(denom, take))); err != nil {
			return sdk.Coin{}, err
		}
	}
	p.Withdrawn = payable
	netCoin := sdk.NewCoin(denom, net)
	return netCoin, k.emit(ctx, &types.EventPaymentWithdrawn{
		Id: p.Id, Gross: sdk.NewCoin(denom, gross), Take: sdk.NewCoin(denom, take), Net: netCoin,
	})
}

// clawBack cuts a closing payment's accrual back to payable (what it had
// earned by until, or what was paid out already if more) and returns the
// rest to the account's balance. rem is the remainder at until.
func (k *Keeper) clawBack(ctx context.Context, l *ledger, p *types.Payment, payable, at sdkmath.Int, rem sdkmath.LegacyDec, until time.Time) error {
	back := p.Accrued.Sub(payable)
	p.Remainder = sdkmath.LegacyZeroDec()
	if payable.Equal(at) {
		p.Remainder = rem
	}
	p.Accrued = payable
	l.account.Balance = l.account.Balance.Add(back)
	l.account.Transferred = l.account.Transferred.Sub(back)
	return k.emit(ctx, &types.EventPaymentClawedBack{Id: p.Id, BilledUntil: until.Unix(), ClawedBack: sdk.NewCoin(l.account.Denom, back)})
}

// loadPayment loads a payment's account settled to now, and the payment.
func (k *Keeper) loadPayment(ctx context.Context, id types.PaymentID) (*ledger, *types.Payment, error) {
	l, err := k.loadSettled(ctx, id.Account)
	if err != nil {
		return nil, nil, err
	}
	p := l.find(id)
	if p == nil {
		return nil, nil, errorsmod.Wrapf(types.ErrPaymentNotFound, "%s", id.Name())
	}
	return l, p, nil
}

func (l *ledger) find(id types.PaymentID) *types.Payment {
	for _, p := range l.payments {
		if p.Id.Key() == id.Key() {
			return p
		}
	}
	return nil
}

func checkAmount(c sdk.Coin) error {
	if err := c.Validate(); err != nil {
		return errorsmod.Wrap(types.ErrInvalidAmount, err.Error())
	}
	if !c.IsPositive() {
		return errorsmod.Wrapf(types.ErrInvalidAmount, "amount must be positive, got %s", c)
	}
	return nil
}

// Refund returns up to amount of an open account's balance to its owner (an
// order that expired unleased gives its share back) and reports what was
// refunded; running payments keep what they have already earned.
func (k *Keeper) Refund(ctx context.Context, id types.AccountID, amount sdk.Coin) (sdk.Coin, error) {
	l, err := k.loadSettled(ctx, id)
	if err != nil {
		return sdk.Coin{}, err
	}
	if amount.Denom != l.account.Denom {
		return sdk.Coin{}, errorsmod.Wrapf(types.ErrInvalidDenom, "refund is in %q; account %s is in %s", amount.Denom, id.Name(), l.account.Denom)
	}
	refund := sdk.NewCoin(l.account.Denom, sdkmath.MinInt(amount.Amount, l.account.Balance))
	if refund.IsPositive() {
		if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, l.key.K2(), sdk.NewCoins(refund)); err != nil {
			return sdk.Coin{}, err
		}
		l.account.Balance = l.account.Balance.Sub(refund.Amount)
		l.account.Deposited = l.account.Deposited.Sub(refund.Amount)
	}
	return refund, k.save(ctx, l)
}

// Charge takes up to amount out of an account's balance (never more than it
// holds) and sends it to module: a fee the account's owner owes, such as the
// reservation fee of a lease closed for the tenant's fault. It counts as
// transferred out of the account. It returns what was taken.
func (k *Keeper) Charge(ctx context.Context, id types.AccountID, amount sdk.Coin, module string) (sdk.Coin, error) {
	l, err := k.loadSettled(ctx, id)
	if err != nil {
		return sdk.Coin{}, err
	}
	if amount.Denom != l.account.Denom {
		return sdk.Coin{}, errorsmod.Wrapf(types.ErrInvalidDenom, "charge is in %q; account %s is in %s", amount.Denom, id.Name(), l.account.Denom)
	}
	fee := sdk.NewCoin(l.account.Denom, sdkmath.MinInt(amount.Amount, l.account.Balance))
	if fee.IsPositive() {
		if err := k.bank.SendCoinsFromModuleToModule(ctx, types.ModuleName, module, sdk.NewCoins(fee)); err != nil {
			return sdk.Coin{}, err
		}
		l.account.Balance = l.account.Balance.Sub(fee.Amount)
		l.account.Transferred = l.account.Transferred.Add(fee.Amount)
	}
	return fee, k.save(ctx, l)
}
