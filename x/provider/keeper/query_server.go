package keeper

import (
	"context"
	"github.com/gpunet/gpunet/x/internal/sweep"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/x/provider/types"
)

type queryServer struct{ *Keeper }

var _ types.QueryServer = queryServer{}

// NewQueryServerImpl returns the x/provider Query service.
func NewQueryServerImpl(k *Keeper) types.QueryServer { return queryServer{k} }

// Params returns the module params.
func (q queryServer) Params(ctx context.Context, _ *types.QueryParamsRequest) (*types.QueryParamsResponse, error) {
	p, err := q.Keeper.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	return &types.QueryParamsResponse{Params: p}, nil
}

// Provider returns one provider with its derived figures.
func (q queryServer) Provider(ctx context.Context, req *types.QueryProviderRequest) (*types.QueryProviderResponse, error) {
	owner, err := q.parseAddress("owner", req.GetOwner())
	if err != nil {
		return nil, err
	}
	p, err := q.GetProvider(ctx, owner)
	if err != nil {
		return nil, err
	}
	view, err := q.view(ctx, owner, p)
	if err != nil {
		return nil, err
	}
	return &types.QueryProviderResponse{Provider: view}, nil
}

// Providers lists every provider, paginated by owner.
func (q queryServer) Providers(ctx context.Context, req *types.QueryProvidersRequest) (*types.QueryProvidersResponse, error) {
	views, page, err := query.CollectionPaginate(ctx, q.Keeper.Providers, req.GetPagination(),
		func(owner sdk.AccAddress, p types.Provider) (types.ProviderView, error) {
			return q.view(ctx, owner, p)
		})
	if err != nil {
		return nil, err
	}
	return &types.QueryProvidersResponse{Providers: views, Pagination: page}, nil
}

// ProvidersByGPU lists the providers declaring a GPU model, paginated.
func (q queryServer) ProvidersByGPU(ctx context.Context, req *types.QueryProvidersByGPURequest) (*types.QueryProvidersResponse, error) {
	model := types.CanonicalGPUModel(req.GetModel())
	views, page, err := query.CollectionPaginate(ctx, q.ProvidersByModel, req.GetPagination(),
		func(key collections.Pair[string, sdk.AccAddress], _ collections.NoValue) (types.ProviderView, error) {
			p, err := q.Keeper.Providers.Get(ctx, key.K2())
			if err != nil {
				return types.ProviderView{}, err
			}
			return q.view(ctx, key.K2(), p)
		}, query.WithCollectionPaginationPairPrefix[string, sdk.AccAddress](model))
	if err != nil {
		return nil, err
	}
	return &types.QueryProvidersResponse{Providers: views, Pagination: page}, nil
}

// Unbondings lists owner's unbonding entries.
func (q queryServer) Unbondings(ctx context.Context, req *types.QueryUnbondingsRequest) (*types.QueryUnbondingsResponse, error) {
	owner, err := q.parseAddress("owner", req.GetOwner())
	if err != nil {
		return nil, err
	}
	entries, err := q.OwnerUnbondings(ctx, owner)
	if err != nil {
		return nil, err
	}
	return &types.QueryUnbondingsResponse{Entries: entries}, nil
}

func (q queryServer) view(ctx context.Context, owner sdk.AccAddress, p types.Provider) (types.ProviderView, error) {
	params, err := q.Keeper.Params.Get(ctx)
	if err != nil {
		return types.ProviderView{}, err
	}
	// Status against the current min_bond, as bidding sees it.
	p.Status = types.PROVIDER_STATUS_ACTIVE
	if p.Bond.Amount.LT(params.MinBond.Amount) {
		p.Status = types.PROVIDER_STATUS_UNDERBONDED
	}
	entries, err := q.OwnerUnbondings(ctx, owner)
	if err != nil {
		return types.ProviderView{}, err
	}
	unbonding := sdkmath.ZeroInt()
	for _, e := range entries {
		unbonding = unbonding.Add(e.Amount.Amount)
	}
	return types.ProviderView{
		Provider:    p,
		Reliability: p.Stats.Reliability(),
		Uptime:      p.Stats.Uptime(),
		Unbonding:   sdk.NewCoin(params.MinBond.Denom, unbonding),
	}, nil
}

// Parked lists the due entries EndBlock parked.
func (q queryServer) Parked(ctx context.Context, _ *types.QueryParkedRequest) (*types.QueryParkedResponse, error) {
	items, err := sweep.List(ctx, q.Keeper.Parked)
	if err != nil {
		return nil, err
	}
	return &types.QueryParkedResponse{Items: items}, nil
}
