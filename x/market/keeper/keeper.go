// Package keeper holds x/market's deployments, orders, bids and leases and
// runs the reverse auction.
package keeper

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/runtime/protoiface"

	"cosmossdk.io/collections"
	"cosmossdk.io/collections/indexes"
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/event"
	"cosmossdk.io/core/header"
	"cosmossdk.io/core/store"
	errorsmod "cosmossdk.io/errors"

	"github.com/cosmos/cosmos-sdk/codec"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/abcievent"
	"github.com/gpunet/gpunet/x/internal/keyed"
	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/market/types"
)

type (
	// DeploymentKey is (owner, dseq).
	DeploymentKey = collections.Pair[sdk.AccAddress, uint64]
	// OrderKey is (dseq, owner, gseq<<32|oseq). The dseq leads: dseqs are
	// handed out in block order (blockSeq), so the orders, bids and leases
	// a block creates sit side by side in the store and share their path
	// in the IAVL tree, where owner-first keys scattered each one over the
	// whole tree (issue 21). The owner still follows, so dseqs made before
	// dseqs came from the block, which were only unique per owner, stay
	// distinct.
	OrderKey = collections.Triple[uint64, sdk.AccAddress, uint64]
	// BidKey is (dseq, owner, gseq<<32|oseq, provider); a lease has its
	// bid's key.
	BidKey = collections.Quad[uint64, sdk.AccAddress, uint64, sdk.AccAddress]
)

// ByProvider indexes bids or leases by their provider: declared once for
// both, maintained by the IndexedMap on every write.
type ByProvider[V any] struct {
	Provider *indexes.Multi[sdk.AccAddress, BidKey, V]
}

// IndexesList implements collections.Indexes.
func (i ByProvider[V]) IndexesList() []collections.Index[BidKey, V] {
	return []collections.Index[BidKey, V]{i.Provider}
}

// bidKeyCodec encodes BidKey.
var bidKeyCodec = collections.QuadKeyCodec(collections.Uint64Key, sdk.AccAddressKey, collections.Uint64Key, sdk.AccAddressKey)

// orderKeyCodec encodes OrderKey.
var orderKeyCodec = collections.TripleKeyCodec(collections.Uint64Key, sdk.AccAddressKey, collections.Uint64Key)

func newByProvider[V any](sb *collections.SchemaBuilder, prefix collections.Prefix, name string) ByProvider[V] {
	return ByProvider[V]{Provider: indexes.NewMulti(sb, prefix, name, sdk.AccAddressKey, bidKeyCodec,
		func(pk BidKey, _ V) (sdk.AccAddress, error) { return pk.K4(), nil })}
}

// Keeper owns x/market's state.
type Keeper struct {
	cdc          codec.BinaryCodec
	addressCodec address.Codec
	events       event.Service
	headers      header.Service
	authority    string
	bank         types.BankKeeper
	providers    types.ProviderKeeper
	escrow       types.EscrowKeeper
	pool         types.CommunityPool
	accounts     types.AccountKeeper
	audit        types.AuditKeeper

	Schema collections.Schema
	Params collections.Item[types.Params]
	// Deployments and Orders are stored without the owner, dseq and order
	// id their keys spell out (x/internal/keyed).
	Deployments keyed.Map[DeploymentKey, types.Deployment]
	Orders      keyed.Map[OrderKey, types.Order]
	// OrderQueue holds every open order once, at its next deadline: the
	// height its auction closes while that is to come, then the height it
	// expires at (EndBlock moves it when an auction finds no winner). It
	// is also the open-orders index.
	OrderQueue     collections.KeySet[collections.Pair[int64, OrderKey]]
	Bids           *collections.IndexedMap[BidKey, types.Bid, ByProvider[types.Bid]]
	Leases         *collections.IndexedMap[BidKey, types.Lease, ByProvider[types.Lease]]
	StartDeadlines collections.KeySet[collections.Pair[int64, BidKey]]
	// Disputable holds manifest_missing closes (and their held fees) until
	// their dispute window ends; DisputeQueue orders them by that height.
	Disputable   collections.Map[BidKey, types.DisputableClose]
	DisputeQueue collections.KeySet[collections.Pair[int64, BidKey]]
	// Parked holds the due entries EndBlock could not process.
	Parked sweep.Parked
	// Attestations is each provider's liveness record; DownLeases the
	// leases it attested down (their payments paused); SilenceQueue orders
	// providers with active leases by the height they count as silent.
	Attestations collections.Map[sdk.AccAddress, types.Attestation]
	DownLeases   collections.Map[collections.Pair[sdk.AccAddress, BidKey], types.DownLease]
	SilenceQueue collections.KeySet[collections.Pair[int64, sdk.AccAddress]]

	storeService store.KVStoreService
	transient    *storetypes.TransientStoreKey
	moduleAddr   sdk.AccAddress
}

// NewKeeper builds the keeper and its schema.
func NewKeeper(cdc codec.BinaryCodec, ac address.Codec, storeService store.KVStoreService, transient *storetypes.TransientStoreKey, events event.Service, headers header.Service,
	bank types.BankKeeper, providers types.ProviderKeeper, escrow types.EscrowKeeper, pool types.CommunityPool, accounts types.AccountKeeper, audit types.AuditKeeper, authority string,
) (*Keeper, error) {
	if _, err := ac.StringToBytes(authority); err != nil {
		return nil, fmt.Errorf("invalid authority address %q: %w", authority, err)
	}
	orderKey := orderKeyCodec
	bidKey := bidKeyCodec
	sb := collections.NewSchemaBuilder(storeService)
	k := &Keeper{
		cdc: cdc, addressCodec: ac, events: events, headers: headers, authority: authority, storeService: storeService, transient: transient,
		moduleAddr: authtypes.NewModuleAddress(types.ModuleName),
		bank:       bank, providers: providers, escrow: escrow, pool: pool, accounts: accounts, audit: audit,

		Params: collections.NewItem(sb, types.ParamsKey, "params", codec.CollValue[types.Params](cdc)),
		Deployments: keyed.NewMap(collections.NewMap(sb, types.DeploymentsKey, "deployments", collections.PairKeyCodec(sdk.AccAddressKey, collections.Uint64Key), codec.CollValue[types.Deployment](cdc)),
			func(d types.Deployment) types.Deployment { d.Owner, d.Dseq = "", 0; return d },
			func(key DeploymentKey, d *types.Deployment) { d.Owner, d.Dseq = keyed.Address(ac, key.K1()), key.K2() }),
		Orders: keyed.NewMap(collections.NewMap(sb, types.OrdersKey, "orders", orderKey, codec.CollValue[types.Order](cdc)),
			func(o types.Order) types.Order { o.Id = types.OrderID{}; return o },
			func(key OrderKey, o *types.Order) {
				gseq, oseq := types.UnpackGroupOrder(key.K3())
				o.Id = types.OrderID{Owner: keyed.Address(ac, key.K2()), Dseq: key.K1(), Gseq: gseq, Oseq: oseq}
			}),
		OrderQueue: collections.NewKeySet(sb, types.OrderQueueKey, "order_queue", collections.PairKeyCodec(collections.Int64Key, orderKey)),
		Bids: collections.NewIndexedMap(sb, types.BidsKey, "bids", bidKey, codec.CollValue[types.Bid](cdc),
			newByProvider[types.Bid](sb, types.BidsByProviderKey, "bids_by_provider")),
		Leases: collections.NewIndexedMap(sb, types.LeasesKey, "leases", bidKey, codec.CollValue[types.Lease](cdc),
			newByProvider[types.Lease](sb, types.LeasesByProviderKey, "leases_by_provider")),
		StartDeadlines: collections.NewKeySet(sb, types.StartDeadlinesKey, "start_deadlines", collections.PairKeyCodec(collections.Int64Key, bidKey)),
		Disputable:     collections.NewMap(sb, types.DisputableKey, "disputable", bidKey, codec.CollValue[types.DisputableClose](cdc)),
		DisputeQueue:   collections.NewKeySet(sb, types.DisputeQueueKey, "dispute_queue", collections.PairKeyCodec(collections.Int64Key, bidKey)),
		Parked:         sweep.NewParked(sb, types.ParkedKey, cdc),
		Attestations:   collections.NewMap(sb, types.AttestationsKey, "attestations", sdk.AccAddressKey, codec.CollValue[types.Attestation](cdc)),
		DownLeases: collections.NewMap(sb, types.DownLeasesKey, "down_leases", collections.PairKeyCodec(sdk.AccAddressKey, bidKey),
			codec.CollValue[types.DownLease](cdc)),
		SilenceQueue: collections.NewKeySet(sb, types.SilenceQueueKey, "silence_queue", collections.PairKeyCodec(collections.Int64Key, sdk.AccAddressKey)),
	}
	schema, err := sb.Build()
	if err != nil {
		return nil, err
	}
	k.Schema = schema
	return k, nil
}

func (k *Keeper) emit(ctx context.Context, ev protoiface.MessageV1) error {
	if abcievent.EmitFast(ctx, ev) {
		return nil
	}
	return k.events.EventManager(ctx).Emit(ctx, ev)
}

func (k *Keeper) height(ctx context.Context) int64 { return k.headers.GetHeaderInfo(ctx).Height }

// blockSeq hands out the next number of a per-block counter kept in the
// transient store: the block's nth call gets height×BlockSeqBase + n. It is
// how dseqs and bid seqs are made: unique and increasing like a stored
// sequence, for a tenth of the gas, since the counter is never committed.
func (k *Keeper) blockSeq(ctx context.Context, counter []byte, what string) (uint64, error) {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	h := k.height(ctx)
	// CheckTx and simulation run on the state of the last committed block,
	// with its height, whose numbers are taken: counting from there would
	// refuse a tenant's deployment because of its own in that block. The
	// transaction runs in a later block, so they count as the next one.
	// (ExecMode alone cannot tell: its zero value is ExecModeCheck, which a
	// context made outside runTx also has.)
	if sdkCtx.IsCheckTx() || sdkCtx.IsReCheckTx() || sdkCtx.ExecMode() == sdk.ExecModeSimulate {
		h++
	}
	if h <= 0 || uint64(h) > (escrowtypes.MaxDseq-(types.BlockSeqBase-1))/types.BlockSeqBase {
		return 0, fmt.Errorf("%s: block height %d out of range", what, h)
	}
	// The SDK context's transient store is charged at the transient gas
	// rates (the core TransientStoreService charges KV-store rates).
	st := sdkCtx.TransientStore(k.transient)
	bz := st.Get(counter)
	n := uint64(1)
	if len(bz) == 8 {
		n = binary.BigEndian.Uint64(bz) + 1
	}
	if n >= types.BlockSeqBase {
		return 0, errorsmod.Wrapf(types.ErrBlockFull, "block %d has handed out %d %ss; send it again in the next block", h, types.BlockSeqBase-1, what)
	}
	st.Set(counter, binary.BigEndian.AppendUint64(nil, n))
	return uint64(h)*types.BlockSeqBase + n, nil
}

func (k *Keeper) addr(field, s string) (sdk.AccAddress, error) {
	bz, err := k.addressCodec.StringToBytes(s)
	if err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidAddress, "%s %q: %v", field, s, err)
	}
	return bz, nil
}

func (k *Keeper) orderKey(id types.OrderID) (OrderKey, error) {
	owner, err := k.addr("owner", id.Owner)
	if err != nil {
		return OrderKey{}, err
	}
	return collections.Join3(id.Dseq, owner, id.GroupOrder()), nil
}

func (k *Keeper) bidKey(id types.BidID) (BidKey, sdk.AccAddress, error) {
	owner, err := k.addr("owner", id.Order.Owner)
	if err != nil {
		return BidKey{}, nil, err
	}
	provider, err := k.addr("provider", id.Provider)
	if err != nil {
		return BidKey{}, nil, err
	}
	return collections.Join4(id.Dseq(), owner, id.Order.GroupOrder(), provider), provider, nil
}

func (k *Keeper) getOrder(ctx context.Context, id types.OrderID) (OrderKey, types.Order, error) {
	key, err := k.orderKey(id)
	if err != nil {
		return key, types.Order{}, err
	}
	o, err := k.Orders.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return key, o, errorsmod.Wrapf(types.ErrOrderNotFound, "%s", id.Name())
	}
	return key, o, err
}

func (k *Keeper) getLease(ctx context.Context, id types.BidID) (BidKey, types.Lease, error) {
	key, _, err := k.bidKey(id)
	if err != nil {
		return key, types.Lease{}, err
	}
	l, err := k.Leases.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return key, l, errorsmod.Wrapf(types.ErrLeaseNotFound, "%s", id.Name())
	}
	return key, l, err
}

// deploymentOf is the key of the deployment an order, bid or lease key
// belongs to.
func deploymentOf[K interface {
	K1() uint64
	K2() sdk.AccAddress
}](key K) DeploymentKey {
	return collections.Join(key.K2(), key.K1())
}

// ordersOf ranges over a deployment's orders, leasesOf (bidsOf) over its
// leases (bids).
func ordersOf(d DeploymentKey) collections.Ranger[OrderKey] {
	return collections.NewSuperPrefixedTripleRange[uint64, sdk.AccAddress, uint64](d.K2(), d.K1())
}

func leasesOf(d DeploymentKey) collections.Ranger[BidKey] {
	return collections.NewSuperPrefixedQuadRange[uint64, sdk.AccAddress, uint64, sdk.AccAddress](d.K2(), d.K1())
}

func accountID(owner string, dseq uint64) escrowtypes.AccountID {
	return escrowtypes.AccountID{Owner: owner, Dseq: dseq}
}

func paymentID(id types.BidID) escrowtypes.PaymentID {
	return escrowtypes.PaymentID{Account: accountID(id.Order.Owner, id.Order.Dseq), Gseq: id.Order.Gseq, Oseq: id.Order.Oseq, Provider: id.Provider}
}

// ProviderHasLiveWork implements x/provider's MarketKeeper: a provider with
// an open bid or a lease may not deregister.
func (k *Keeper) ProviderHasLiveWork(ctx context.Context, provider sdk.AccAddress) (bool, error) {
	if bids, err := nonEmpty(k.Bids.Indexes.Provider.MatchExact(ctx, provider)); err != nil || bids {
		return bids, err
	}
	return nonEmpty(k.Leases.Indexes.Provider.MatchExact(ctx, provider))
}

// Authority is the address allowed to update params.
func (k *Keeper) Authority() string { return k.authority }

// nonEmpty reports whether a range has an entry, closing its iterator (a
// failed close is a store error like any other).
func nonEmpty(it interface {
	Valid() bool
	Close() error
}, err error,
) (bool, error) {
	if err != nil {
		return false, err
	}
	valid := it.Valid()
	return valid, it.Close()
}

// ensureModuleAccount creates the market module account if it is missing:
// bid deposits are sent to its address directly (CreateBid), which would
// otherwise make a plain account there.
func (k *Keeper) ensureModuleAccount(ctx context.Context) error {
	if k.accounts.GetModuleAccount(ctx, types.ModuleName) == nil {
		return fmt.Errorf("no %s module account", types.ModuleName)
	}
	return nil
}
