package keeper

import (
	"context"
	"errors"

	"github.com/gpunet/gpunet/x/internal/sweep"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/x/escrow/types"
)

type queryServer struct{ *Keeper }

var _ types.QueryServer = queryServer{}

// NewQueryServerImpl returns the x/escrow Query service. Accounts and
// payments are settled to the current block time in memory; nothing is
// written.
func NewQueryServerImpl(k *Keeper) types.QueryServer { return queryServer{k} }

func (q queryServer) Params(ctx context.Context, _ *types.QueryParamsRequest) (*types.QueryParamsResponse, error) {
	p, err := q.Keeper.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	return &types.QueryParamsResponse{Params: p}, nil
}

func (q queryServer) Account(ctx context.Context, req *types.QueryAccountRequest) (*types.QueryAccountResponse, error) {
	l, err := q.loadSettled(ctx, types.AccountID{Owner: req.GetOwner(), Dseq: req.GetDseq()})
	if err != nil {
		return nil, err
	}
	return &types.QueryAccountResponse{Account: l.account}, nil
}

func (q queryServer) AccountPayments(ctx context.Context, req *types.QueryAccountRequest) (*types.QueryPaymentsResponse, error) {
	l, err := q.loadSettled(ctx, types.AccountID{Owner: req.GetOwner(), Dseq: req.GetDseq()})
	if err != nil {
		return nil, err
	}
	out := make([]types.Payment, len(l.payments))
	for i, p := range l.payments {
		out[i] = *p
	}
	return &types.QueryPaymentsResponse{Payments: out}, nil
}

func (q queryServer) AutoTopUp(ctx context.Context, req *types.QueryAccountRequest) (*types.QueryAutoTopUpResponse, error) {
	key, err := q.accountKey(types.AccountID{Owner: req.GetOwner(), Dseq: req.GetDseq()})
	if err != nil {
		return nil, err
	}
	tu, err := q.AutoTopUps.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil, errorsmod.Wrapf(types.ErrAccountNotFound, "account %s/%d has no automatic refill", req.GetOwner(), req.GetDseq())
	}
	if err != nil {
		return nil, err
	}
	return &types.QueryAutoTopUpResponse{AutoTopup: tu}, nil
}

func (q queryServer) ProviderPayments(ctx context.Context, req *types.QueryProviderPaymentsRequest) (*types.QueryPaymentsResponse, error) {
	provider, err := q.addressCodec.StringToBytes(req.GetProvider())
	if err != nil {
		return nil, err
	}
	payments, page, err := query.CollectionPaginate(ctx, q.PaymentsByProvider, req.GetPagination(),
		func(key collections.Pair[sdk.AccAddress, PaymentKey], _ collections.NoValue) (types.Payment, error) {
			p, err := q.Payments.Get(ctx, key.K2())
			if err != nil {
				return types.Payment{}, err
			}
			l, err := q.loadSettled(ctx, p.Id.Account)
			if err != nil {
				return types.Payment{}, err
			}
			if settled := l.find(p.Id); settled != nil {
				p = *settled
			}
			return p, nil
		}, query.WithCollectionPaginationPairPrefix[sdk.AccAddress, PaymentKey](provider))
	if err != nil {
		return nil, err
	}
	return &types.QueryPaymentsResponse{Payments: payments, Pagination: page}, nil
}

// Parked lists the due entries EndBlock parked.
func (q queryServer) Parked(ctx context.Context, _ *types.QueryParkedRequest) (*types.QueryParkedResponse, error) {
	items, err := sweep.List(ctx, q.Keeper.Parked)
	if err != nil {
		return nil, err
	}
	return &types.QueryParkedResponse{Items: items}, nil
}
