package keeper

import (
	"bytes"
	"context"
	"errors"

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
	if err := k.leaseStarted(ctx, provider); err != nil {
		return nil, err
	}
	return &types.MsgStartLeaseResponse{}, k.emit(ctx, &types.EventLeaseStarted{Id: lease.Id})
}

// CloseLease ends a lease on the tenant's or the provider's word. A
// provider closes a pending lease for a tenant fault (manifest_missing no
// earlier than manifest_timeout blocks after the lease was won,
// image_unavailable, workload_invalid) or walks away from it (provider,
// which forfeits its bid deposit); workload_completed and workload_failed
// are for a lease that started.
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
			return nil, errorsmod.Wrapf(types.ErrInvalidReason, "a provider closes with provider, workload_completed, workload_failed, manifest_missing, image_unavailable or workload_invalid, not %s", reason.ReasonString())
		}
	default:
		return nil, errorsmod.Wrapf(types.ErrUnauthorized, "%s is neither tenant nor provider of %s", msg.Sender, msg.Lease.Name())
	}
	key, lease, err := k.getLease(ctx, msg.Lease)
	if err != nil {
		return nil, err
	}
	pending := lease.State == types.LEASE_STATE_PENDING
	switch {
	case pending && (reason == types.CLOSE_REASON_WORKLOAD_COMPLETED || reason == types.CLOSE_REASON_WORKLOAD_FAILED):
		return nil, errorsmod.Wrapf(types.ErrInvalidReason, "%s never started: it cannot close as %s", msg.Lease.Name(), reason.ReasonString())
	case !pending && reason.TenantFault():
		return nil, errorsmod.Wrapf(types.ErrInvalidReason, "%s is running: %s is only for a lease that has not started", msg.Lease.Name(), reason.ReasonString())
	case reason == types.CLOSE_REASON_MANIFEST_MISSING:
		params, err := k.Params.Get(ctx)
		if err != nil {
			return nil, err
		}
		if due, h := lease.CreatedAt+int64(params.ManifestTimeout), k.height(ctx); h < due {
			return nil, errorsmod.Wrapf(types.ErrManifestTimeout, "%s was won at height %d; the tenant has until height %d to send its manifest (now %d)", msg.Lease.Name(), lease.CreatedAt, due, h)
		}
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

// DisputeLease disproves a manifest_missing close with the provider's own
// signed receipt for that lease and the deployment's manifest: the provider
// is slashed start_failure_slash to the community pool, its stats record a
// start failure, and the held reservation fee goes back to the tenant.
func (k msgServer) DisputeLease(ctx context.Context, msg *types.MsgDisputeLease) (*types.MsgDisputeLeaseResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	rc := msg.Receipt
	key, provider, err := k.bidKey(rc.Lease)
	if err != nil {
		return nil, err
	}
	rec, err := k.Disputable.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil, errorsmod.Wrapf(types.ErrNotDisputable, "%s was not closed as manifest_missing, or its dispute window is over", rc.Lease.Name())
	} else if err != nil {
		return nil, err
	}
	if h := k.height(ctx); h > rec.DisputeUntil {
		return nil, errorsmod.Wrapf(types.ErrNotDisputable, "the dispute window of %s ended at height %d (now %d)", rc.Lease.Name(), rec.DisputeUntil, h)
	}
	if !bytes.Equal(rc.ManifestHash, rec.ManifestHash) {
		return nil, errorsmod.Wrapf(types.ErrInvalidReceipt, "receipt is for manifest %x; the deployment's manifest was %x when the lease closed", rc.ManifestHash, rec.ManifestHash)
	}
	acc := k.accounts.GetAccount(ctx, provider)
	if acc == nil || acc.GetPubKey() == nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidReceipt, "provider %s has no public key on chain", rc.Lease.Provider)
	}
	chainID := sdk.UnwrapSDKContext(ctx).ChainID()
	if !acc.GetPubKey().VerifySignature(types.ReceiptSignBytes(chainID, rc.Lease, rc.ManifestHash, rc.IssuedAt), rc.Signature) {
		return nil, errorsmod.Wrapf(types.ErrInvalidReceipt, "signature is not %s's over this receipt on chain %s", rc.Lease.Provider, chainID)
	}
	if err := k.Disputable.Remove(ctx, key); err != nil {
		return nil, err
	}
	if err := k.DisputeQueue.Remove(ctx, collections.Join(rec.DisputeUntil, key)); err != nil {
		return nil, err
	}
	fraction, err := k.providers.StartFailureSlash(ctx)
	if err != nil {
		return nil, err
	}
	slashed, err := k.providers.Slash(ctx, provider, fraction, "false_manifest_missing", rc.Lease.Name())
	if err != nil {
		return nil, err
	}
	if err := k.providers.RecordStartFailure(ctx, provider); err != nil {
		return nil, err
	}
	if rec.Fee.IsPositive() {
		owner, err := k.addr("owner", msg.Owner)
		if err != nil {
			return nil, err
		}
		if err := k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, owner, sdk.NewCoins(rec.Fee)); err != nil {
			return nil, err
		}
	}
	return &types.MsgDisputeLeaseResponse{Slashed: slashed, FeeReturned: rec.Fee},
		k.emit(ctx, &types.EventLeaseDisputed{Lease: rc.Lease, Slashed: slashed, FeeReturned: rec.Fee})
}
