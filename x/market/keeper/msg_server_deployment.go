package keeper

import (
	"context"
	"errors"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	"github.com/gpunet/gpunet/x/market/types"
)

type msgServer struct{ *Keeper }

var _ types.MsgServer = msgServer{}

// NewMsgServerImpl returns the x/market Msg service.
func NewMsgServerImpl(k *Keeper) types.MsgServer { return msgServer{k} }

// CreateDeployment opens a deployment with one order per group and funds
// its escrow account.
func (k msgServer) CreateDeployment(ctx context.Context, msg *types.MsgCreateDeployment) (*types.MsgCreateDeploymentResponse, error) {
	// 1. Owner and manifest hash.
	owner, err := k.addr("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	if len(msg.ManifestHash) != 32 {
		return nil, errorsmod.Wrapf(types.ErrInvalidManifestHash, "manifest_hash must be a 32-byte SHA-256, got %d bytes", len(msg.ManifestHash))
	}
	params, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	// 2. Groups.
	if err := types.ValidateGroups(msg.Groups, params.MaxGroupsPerDeployment, params.MinDeposit.Denom); err != nil {
		return nil, err
	}
	// 3. Deposit.
	if msg.Deposit.Denom != params.MinDeposit.Denom {
		return nil, errorsmod.Wrapf(types.ErrInvalidDeposit, "deposit is in %q; deployments are paid in %s", msg.Deposit.Denom, params.MinDeposit.Denom)
	}
	if msg.Deposit.Amount.IsNil() || msg.Deposit.Amount.LT(params.MinDeposit.Amount) {
		return nil, errorsmod.Wrapf(types.ErrInvalidDeposit, "deposit %s is below the minimum %s", msg.Deposit, params.MinDeposit)
	}
	// 4. Bid window.
	window := msg.BidWindow
	if window == 0 {
		window = params.DefaultBidWindow
	}
	if window < params.MinBidWindow || window > params.MaxBidWindow {
		return nil, errorsmod.Wrapf(types.ErrInvalidBidWindow, "bid_window %d blocks is outside [%d, %d]", window, params.MinBidWindow, params.MaxBidWindow)
	}
	// 5. Escrow, deployment, orders.
	dseq, err := k.blockSeq(ctx, types.DseqCounterKey, "deployment")
	if err != nil {
		return nil, err
	}
	if err := k.escrow.CreateAccount(ctx, accountID(msg.Owner, dseq), owner, msg.Deposit); err != nil {
		return nil, err
	}
	h := k.height(ctx)
	d := types.Deployment{
		Owner: msg.Owner, Dseq: dseq, State: types.DEPLOYMENT_STATE_ACTIVE,
		ManifestHash: msg.ManifestHash, CreatedAt: h, Groups: uint32(len(msg.Groups)), Deposit: msg.Deposit,
	}
	if err := k.Deployments.Set(ctx, collections.Join(owner, dseq), d); err != nil {
		return nil, err
	}
	for i, g := range msg.Groups {
		o := types.Order{
			Id:    types.OrderID{Owner: msg.Owner, Dseq: dseq, Gseq: uint32(i + 1), Oseq: 1},
			State: types.ORDER_STATE_OPEN, Spec: g, CreatedAt: h,
			BidClosesAt: h + int64(window), ExpiresAt: h + int64(params.OrderTtl),
		}
		if err := k.openOrder(ctx, collections.Join3(dseq, owner, o.Id.GroupOrder()), o, false); err != nil {
			return nil, err
		}
	}
	return &types.MsgCreateDeploymentResponse{Dseq: dseq}, k.emit(ctx, &types.EventDeploymentCreated{Owner: msg.Owner, Dseq: dseq, ManifestHash: msg.ManifestHash})
}

// UpdateDeployment replaces the manifest hash.
func (k msgServer) UpdateDeployment(ctx context.Context, msg *types.MsgUpdateDeployment) (*types.MsgUpdateDeploymentResponse, error) {
	key, d, err := k.ownedDeployment(ctx, msg.Owner, msg.Dseq)
	if err != nil {
		return nil, err
	}
	if len(msg.ManifestHash) != 32 {
		return nil, errorsmod.Wrapf(types.ErrInvalidManifestHash, "manifest_hash must be a 32-byte SHA-256, got %d bytes", len(msg.ManifestHash))
	}
	d.ManifestHash = msg.ManifestHash
	if err := k.Deployments.Set(ctx, key, d); err != nil {
		return nil, err
	}
	return &types.MsgUpdateDeploymentResponse{}, k.emit(ctx, &types.EventDeploymentUpdated{Owner: msg.Owner, Dseq: msg.Dseq, ManifestHash: msg.ManifestHash})
}

// CloseDeployment ends every lease and order and refunds the escrow.
func (k msgServer) CloseDeployment(ctx context.Context, msg *types.MsgCloseDeployment) (*types.MsgCloseDeploymentResponse, error) {
	key, _, err := k.ownedDeployment(ctx, msg.Owner, msg.Dseq)
	if err != nil {
		return nil, err
	}
	if err := k.closeDeployment(ctx, key, msg.Owner, types.CLOSE_REASON_TENANT, types.CLOSE_REASON_TENANT.ReasonString()); err != nil {
		return nil, err
	}
	return &types.MsgCloseDeploymentResponse{}, nil
}

func (k *Keeper) ownedDeployment(ctx context.Context, ownerStr string, dseq uint64) (DeploymentKey, types.Deployment, error) {
	owner, err := k.addr("owner", ownerStr)
	if err != nil {
		return DeploymentKey{}, types.Deployment{}, err
	}
	key := collections.Join(owner, dseq)
	d, err := k.Deployments.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return key, d, errorsmod.Wrapf(types.ErrDeploymentNotFound, "%s/%d", ownerStr, dseq)
	}
	return key, d, err
}
