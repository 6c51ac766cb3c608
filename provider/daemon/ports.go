package daemon

import (
	"context"
	"io"
	"time"

	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/runtime"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// The daemon reaches the outside world through three narrow interfaces, so
// its logic (bidding, reconciling, the lease state machine, the API) is
// unit-tested with fakes; chain.Client, chain.Broadcaster and
// runtime.Runtime are the real ones.

// Chain is what the daemon reads from the chain: x/market's queries and
// the public keys of accounts (for signed tenant requests).
type Chain interface {
	markettypes.QueryClient
	AccountPubKey(ctx context.Context, addr string) ([]byte, error)
	// SignedAttributes are what auditors signed for a provider (x/audit).
	SignedAttributes(ctx context.Context, owner string) ([]audittypes.AuditedAttributes, error)
	// Reliability is a provider's reliability score (x/provider).
	Reliability(ctx context.Context, owner string) (sdkmath.LegacyDec, error)
	// ProviderParams are x/provider's params (attest_interval among them).
	ProviderParams(ctx context.Context) (providertypes.Params, error)
	// LatestHeight is the node's latest block height.
	LatestHeight(ctx context.Context) (int64, error)
}

// Sender sends this provider's transactions.
type Sender interface {
	// Submit queues msgs; the result arrives once the transaction is in
	// the mempool (or refused).
	Submit(msgs ...sdk.Msg) <-chan chain.Result
	// Send sends msgs and returns once they are in the mempool.
	Send(ctx context.Context, msgs ...sdk.Msg) (string, error)
	// SendAndWait sends msgs and waits until they are in a block.
	SendAndWait(ctx context.Context, timeout time.Duration, msgs ...sdk.Msg) (*sdk.TxResponse, error)
}

// Runtime runs leases' containers.
type Runtime interface {
	// PullImages brings the workload's images to the engine, as Deploy
	// would, before the deploy takes an engine slot.
	PullImages(ctx context.Context, w runtime.Workload) error
	Deploy(ctx context.Context, w runtime.Workload) (runtime.LeaseStatus, error)
	Update(ctx context.Context, w runtime.Workload) (runtime.LeaseStatus, error)
	Status(ctx context.Context, l runtime.LeaseRef) (runtime.LeaseStatus, error)
	Usage(ctx context.Context, l runtime.LeaseRef) (map[string]runtime.ContainerUsage, error)
	WatchEvents(ctx context.Context, fn func(runtime.LeaseRef, runtime.ContainerEvent))
	Exec(ctx context.Context, l runtime.LeaseRef, req runtime.ExecRequest) (runtime.Shell, error)
	Remove(ctx context.Context, l runtime.LeaseRef) error
	JobState(ctx context.Context, l runtime.LeaseRef) (res runtime.JobResult, ended bool, err error)
	// List is every lease the engine holds something of, by lease key,
	// with how many of its containers run: one listing for reconcile.
	List(ctx context.Context) (map[string]runtime.Held, error)
	// RunningContainers counts running containers by lease key.
	RunningContainers(ctx context.Context) (map[string]int, error)
	Logs(ctx context.Context, l runtime.LeaseRef, service string, follow bool, tail int, w io.Writer) error
}

// Signer signs bytes with the provider's account key (its manifest
// receipts); the chain client's unlocked key and keyring.Keyring are such.
type Signer = chain.Signer

// chainClient adapts chain.Client to Chain.
type chainClient struct {
	markettypes.QueryClient
	c *chain.Client
}

func (c chainClient) LatestHeight(ctx context.Context) (int64, error) {
	return c.c.LatestHeight(ctx)
}

func (c chainClient) AccountPubKey(ctx context.Context, addr string) ([]byte, error) {
	return c.c.AccountPubKey(ctx, addr)
}

func (c chainClient) SignedAttributes(ctx context.Context, owner string) ([]audittypes.AuditedAttributes, error) {
	var out []audittypes.AuditedAttributes
	q := audittypes.NewQueryClient(c.c.Conn)
	var next []byte
	for {
		res, err := q.ProviderAttributes(ctx, &audittypes.QueryProviderAttributesRequest{Owner: owner, Pagination: &query.PageRequest{Key: next, Limit: 100}})
		if err != nil {
			return nil, err
		}
		out = append(out, res.Attributes...)
		if res.Pagination == nil || len(res.Pagination.NextKey) == 0 {
			return out, nil
		}
		next = res.Pagination.NextKey
	}
}

func (c chainClient) Reliability(ctx context.Context, owner string) (sdkmath.LegacyDec, error) {
	res, err := providertypes.NewQueryClient(c.c.Conn).Provider(ctx, &providertypes.QueryProviderRequest{Owner: owner})
	if err != nil {
		return sdkmath.LegacyDec{}, err
	}
	return res.Provider.Reliability, nil
}

func (c chainClient) ProviderParams(ctx context.Context) (providertypes.Params, error) {
	res, err := providertypes.NewQueryClient(c.c.Conn).Params(ctx, &providertypes.QueryParamsRequest{})
	if err != nil {
		return providertypes.Params{}, err
	}
	return res.Params, nil
}

var (
	_ Sender  = (*chain.Broadcaster)(nil)
	_ Runtime = (*runtime.Runtime)(nil)
	_ Chain   = chainClient{}
)
