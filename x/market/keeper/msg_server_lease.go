package keeper

import (
	"context"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/market/types"
)

// StartLease is the provider confirming the workload runs: rent accrues from
// this block.
func (k msgServer) StartLease(ctx context.Context, msg *types.MsgStartLease) (*types.MsgStartLeaseResponse, error) {
	if msg.Provider != msg.Lease.Provider {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "%s is not the provider of %s", msg.Provider, msg.Lease.Name())
	}
	key, lease, err := k.getLease(ctx, msg.Lease)
	if err != nil {
		return nil, err
	}
	if lease.State != types.LEASE_STATE_PENDING {
		return nil, errorsmod.Wrapf(types.ErrLeaseNotPending, "%s is %s", msg.Lease.Name(), lease.State)
	}
	// Past its deadline the lease is due for the start-timeout sweep (which
	// may carry it over to a later block when many are due): a late start
	// must not escape the slash or count as on time.
	if h := k.height(ctx); h > lease.StartDeadline {
		return nil, errorsmod.Wrapf(types.ErrStartDeadlinePassed, "%s had to start by height %d, now %d", msg.Lease.Name(), lease.StartDeadline, h)
	}
	if err := k.escrow.OpenPayment(ctx, paymentID(lease.Id), lease.Price.Amount); err != nil {
		return nil, err
	}
	if err := k.StartDeadlines.Remove(ctx, collections.Join(lease.StartDeadline, key)); err != nil {
		return nil, err
	}
	lease.State = types.LEASE_STATE_ACTIVE
	lease.StartedAt = k.height(ctx)
	if err := k.Leases.Set(ctx, key, lease); err != nil {
		return nil, err
	}
	provider, err := k.addr("provider", msg.Provider)
	if err != nil {
		return nil, err
	}
	if err := k.providers.RecordStartedOnTime(ctx, provider); err != nil {
		return nil, err
	}
	return &types.MsgStartLeaseResponse{}, k.emit(ctx, &types.EventLeaseStarted{Id: lease.Id})
}

// CloseLease ends a lease on the tenant's or the provider's word.
func (k msgServer) CloseLease(ctx context.Context, msg *types.MsgCloseLease) (*types.MsgCloseLeaseResponse, error) {
	reason := msg.Reason
	switch msg.Sender {
	case msg.Lease.Order.Owner:
		if reason == types.CLOSE_REASON_UNSPECIFIED {
			reason = types.CLOSE_REASON_TENANT
		}
		if reason != types.CLOSE_REASON_TENANT {
			return nil, errorsmod.Wrapf(types.ErrInvalidReason, "a tenant closes with reason tenant, not %s", reason.ReasonString())
		}
	case msg.Lease.Provider:
		if reason == types.CLOSE_REASON_UNSPECIFIED {
			reason = types.CLOSE_REASON_PROVIDER
		}
		if !reason.ProviderOnly() {
			return nil, errorsmod.Wrapf(types.ErrInvalidReason, "a provider closes with provider, workload_completed, workload_failed or image_unavailable, not %s", reason.ReasonString())
		}
	default:
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "%s is neither tenant nor provider of %s", msg.Sender, msg.Lease.Name())
	}
	key, lease, err := k.getLease(ctx, msg.Lease)
	if err != nil {
		return nil, err
	}
	return &types.MsgCloseLeaseResponse{}, k.closeLease(ctx, key, lease, reason, true)
}

// WithdrawLease pays the provider what the lease has earned so far.
func (k msgServer) WithdrawLease(ctx context.Context, msg *types.MsgWithdrawLease) (*types.MsgWithdrawLeaseResponse, error) {
	if msg.Provider != msg.Lease.Provider {
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "%s is not the provider of %s", msg.Provider, msg.Lease.Name())
	}
	_, lease, err := k.getLease(ctx, msg.Lease)
	if err != nil {
		return nil, err
	}
	if lease.State != types.LEASE_STATE_ACTIVE {
		return nil, errorsmod.Wrapf(types.ErrLeaseNotActive, "%s has not started", msg.Lease.Name())
	}
	net, err := k.escrow.WithdrawPayment(ctx, paymentID(lease.Id))
	if err != nil {
		return nil, err
	}
	return &types.MsgWithdrawLeaseResponse{Net: net}, nil
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

// closeLease ends a lease: the escrow payment is settled and paid (when
// settleEscrow; a depleted account has done it already), the bid deposit
// goes back to the provider — or to the tenant after a start timeout —
// and the lease and its order are removed. A deployment left with nothing
// is closed and its escrow refunded.
func (k *Keeper) closeLease(ctx context.Context, key BidKey, lease types.Lease, reason types.CloseReason, settleEscrow bool) error {
	provider, err := k.addr("provider", lease.Id.Provider)
	if err != nil {
		return err
	}
	if lease.State == types.LEASE_STATE_ACTIVE && settleEscrow {
		if err := k.escrow.ClosePayment(ctx, paymentID(lease.Id), reason.ReasonString()); err != nil {
			return err
		}
	}
	if lease.State == types.LEASE_STATE_PENDING {
		if err := k.StartDeadlines.Remove(ctx, collections.Join(lease.StartDeadline, key)); err != nil {
			return err
		}
	}
	depositTo := provider
	if reason == types.CLOSE_REASON_PROVIDER_START_TIMEOUT {
		depositTo = key.K1() // forfeited to the tenant
	}
	if lease.BidDeposit.IsPositive() {
		if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, depositTo, sdk.NewCoins(lease.BidDeposit)); err != nil {
			return err
		}
	}
	if err := k.Leases.Remove(ctx, key); err != nil {
		return err
	}
	if err := k.LeasesByProv.Remove(ctx, collections.Join(provider, key)); err != nil {
		return err
	}
	if reason == types.CLOSE_REASON_PROVIDER {
		if err := k.providers.RecordClosedByProvider(ctx, provider); err != nil {
			return err
		}
	}
	if err := k.emit(ctx, &types.EventLeaseClosed{Id: lease.Id, Reason: reason}); err != nil {
		return err
	}
	orderKey := collections.Join3(key.K1(), key.K2(), lease.Id.Order.GroupOrder())
	if err := k.Orders.Remove(ctx, orderKey); err != nil {
		return err
	}
	if settleEscrow {
		return k.closeDeploymentIfEmpty(ctx, collections.Join(key.K1(), key.K2()), lease.Id.Order.Owner, reason)
	}
	return nil
}
