package keeper

import (
	"context"
	"errors"

	"github.com/gpunet/gpunet/x/internal/sweep"

	"cosmossdk.io/collections"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/x/market/types"
)

type queryServer struct{ *Keeper }

var _ types.QueryServer = queryServer{}

// NewQueryServerImpl returns the x/market Query service.
func NewQueryServerImpl(k *Keeper) types.QueryServer { return queryServer{k} }

func (q queryServer) Params(ctx context.Context, _ *types.QueryParamsRequest) (*types.QueryParamsResponse, error) {
	p, err := q.Keeper.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	return &types.QueryParamsResponse{Params: p}, nil
}

func (q queryServer) Deployment(ctx context.Context, req *types.QueryDeploymentRequest) (*types.QueryDeploymentResponse, error) {
	key, d, err := q.ownedDeployment(ctx, req.GetOwner(), req.GetDseq())
	if err != nil {
		return nil, err
	}
	res := &types.QueryDeploymentResponse{Deployment: d}
	if err := q.Orders.Walk(ctx, ordersOf(key),
		func(_ OrderKey, o types.Order) (bool, error) {
			res.Orders = append(res.Orders, o)
			return false, nil
		}); err != nil {
		return nil, err
	}
	if err := q.Leases.Walk(ctx, leasesOf(key),
		func(_ BidKey, l types.Lease) (bool, error) {
			res.Leases = append(res.Leases, l)
			return false, nil
		}); err != nil {
		return nil, err
	}
	return res, nil
}

func (q queryServer) Deployments(ctx context.Context, req *types.QueryByOwnerRequest) (*types.QueryDeploymentsResponse, error) {
	owner, err := q.addr("owner", req.GetOwner())
	if err != nil {
		return nil, err
	}
	ds, page, err := query.CollectionPaginate(ctx, q.Keeper.Deployments.Stored(), req.GetPagination(),
		func(key DeploymentKey, d types.Deployment) (types.Deployment, error) {
			return q.Keeper.Deployments.Fill(key, d), nil
		},
		query.WithCollectionPaginationPairPrefix[sdk.AccAddress, uint64](owner))
	if err != nil {
		return nil, err
	}
	return &types.QueryDeploymentsResponse{Deployments: ds, Pagination: page}, nil
}

func (q queryServer) OpenOrders(ctx context.Context, req *types.QueryOpenOrdersRequest) (*types.QueryOrdersResponse, error) {
	orders, page, err := query.CollectionPaginate(ctx, q.Keeper.OrderQueue, req.GetPagination(),
		func(key collections.Pair[int64, OrderKey], _ collections.NoValue) (types.Order, error) {
			return q.Orders.Get(ctx, key.K2())
		})
	if err != nil {
		return nil, err
	}
	return &types.QueryOrdersResponse{Orders: orders, Pagination: page}, nil
}

func (q queryServer) Order(ctx context.Context, req *types.QueryOrderRequest) (*types.QueryOrderResponse, error) {
	_, o, err := q.getOrder(ctx, orderID(req))
	if err != nil {
		return nil, err
	}
	return &types.QueryOrderResponse{Order: o}, nil
}

func (q queryServer) BidsByOrder(ctx context.Context, req *types.QueryOrderRequest) (*types.QueryBidsResponse, error) {
	key, _, err := q.getOrder(ctx, orderID(req))
	if err != nil {
		return nil, err
	}
	bids, err := q.orderBids(ctx, key)
	if err != nil {
		return nil, err
	}
	return &types.QueryBidsResponse{Bids: bids}, nil
}

func (q queryServer) BidsByProvider(ctx context.Context, req *types.QueryByProviderRequest) (*types.QueryBidsResponse, error) {
	provider, err := q.addr("provider", req.GetProvider())
	if err != nil {
		return nil, err
	}
	bids, page, err := query.CollectionPaginate(ctx, q.Keeper.Bids.Indexes.Provider, req.GetPagination(),
		func(key collections.Pair[sdk.AccAddress, BidKey], _ collections.NoValue) (types.Bid, error) {
			return q.Bids.Get(ctx, key.K2())
		}, query.WithCollectionPaginationPairPrefix[sdk.AccAddress, BidKey](provider))
	if err != nil {
		return nil, err
	}
	return &types.QueryBidsResponse{Bids: bids, Pagination: page}, nil
}

func (q queryServer) LeasesByOwner(ctx context.Context, req *types.QueryByOwnerRequest) (*types.QueryLeasesResponse, error) {
	owner, err := q.addr("owner", req.GetOwner())
	if err != nil {
		return nil, err
	}
	// A tenant's leases, deployment by deployment (lease keys lead with
	// the dseq): the page counts the tenant's deployments, each with all
	// its leases (a deployment has a bounded number of groups), so a
	// tenant with many deployments is read a page at a time.
	perDeployment, page, err := query.CollectionPaginate(ctx, q.Keeper.Deployments.Stored(), req.GetPagination(),
		func(key DeploymentKey, _ types.Deployment) ([]types.Lease, error) {
			var leases []types.Lease
			err := q.Leases.Walk(ctx, leasesOf(key), func(_ BidKey, l types.Lease) (bool, error) {
				leases = append(leases, l)
				return false, nil
			})
			return leases, err
		},
		query.WithCollectionPaginationPairPrefix[sdk.AccAddress, uint64](owner))
	if err != nil {
		return nil, err
	}
	var leases []types.Lease
	for _, ls := range perDeployment {
		leases = append(leases, ls...)
	}
	return &types.QueryLeasesResponse{Leases: leases, Pagination: page}, nil
}

func (q queryServer) LeasesByProvider(ctx context.Context, req *types.QueryByProviderRequest) (*types.QueryLeasesResponse, error) {
	provider, err := q.addr("provider", req.GetProvider())
	if err != nil {
		return nil, err
	}
	leases, page, err := query.CollectionPaginate(ctx, q.Keeper.Leases.Indexes.Provider, req.GetPagination(),
		func(key collections.Pair[sdk.AccAddress, BidKey], _ collections.NoValue) (types.Lease, error) {
			return q.Leases.Get(ctx, key.K2())
		}, query.WithCollectionPaginationPairPrefix[sdk.AccAddress, BidKey](provider))
	if err != nil {
		return nil, err
	}
	return &types.QueryLeasesResponse{Leases: leases, Pagination: page}, nil
}

func orderID(req *types.QueryOrderRequest) types.OrderID {
	return types.OrderID{Owner: req.GetOwner(), Dseq: req.GetDseq(), Gseq: req.GetGseq(), Oseq: req.GetOseq()}
}

// Parked lists the due entries EndBlock parked.
func (q queryServer) Parked(ctx context.Context, _ *types.QueryParkedRequest) (*types.QueryParkedResponse, error) {
	items, err := sweep.List(ctx, q.Keeper.Parked)
	if err != nil {
		return nil, err
	}
	return &types.QueryParkedResponse{Items: items}, nil
}

// Attestation returns a provider's attestation record and the leases it
// attested down.
func (q queryServer) Attestation(ctx context.Context, req *types.QueryAttestationRequest) (*types.QueryAttestationResponse, error) {
	provider, err := q.addr("provider", req.GetProvider())
	if err != nil {
		return nil, err
	}
	rec, err := q.Attestations.Get(ctx, provider)
	if errors.Is(err, collections.ErrNotFound) {
		return &types.QueryAttestationResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	res := &types.QueryAttestationResponse{Found: true, Attestation: rec}
	err = q.DownLeases.Walk(ctx, collections.NewPrefixedPairRange[sdk.AccAddress, BidKey](provider),
		func(key collections.Pair[sdk.AccAddress, BidKey], d types.DownLease) (bool, error) {
			res.Down = append(res.Down, types.GenesisDownLease{Lease: bidID(key.K2()), Down: d})
			return len(res.Down) >= types.MaxAttestedExceptions, nil
		})
	return res, err
}
