package keeper

import (
	"context"
	"slices"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"

	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/market/types"
)

// EndBlocker runs four sweeps, each from a height-keyed index and each at
// most max_sweeps_per_block entries (the rest carry over): orders whose
// auction closes or that expire now (one queue: an order waits in it at
// its next deadline), leases whose start deadline is now, manifest_missing closes whose dispute window ends now, providers
// whose silence deadline is now. Its cost
// follows what is due, never the number of live objects. Each entry leaves
// its queue and is processed on its own branch (x/internal/sweep): one that
// fails is logged, parked (see the parked query) with an EventSweepFailed,
// none of its writes kept, so a bad record cannot halt the chain.
func (k *Keeper) EndBlocker(ctx context.Context) error {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return err
	}
	next, limit := k.height(ctx)+1, int(params.MaxSweepsPerBlock)
	if err := k.orders().RunEntries(ctx, next, limit, k.sweepOrder); err != nil {
		return err
	}
	if err := k.startDeadlines().Run(ctx, next, limit, k.startTimedOut); err != nil {
		return err
	}
	// One budget of leases for the whole silence sweep.
	budget := limit
	if err := k.silences().Run(ctx, next, limit, func(ctx context.Context, p sdk.AccAddress) error { return k.silent(ctx, p, &budget) }); err != nil {
		return err
	}
	return k.disputeWindows().Run(ctx, next, limit, k.endDisputeWindow)
}

// The module's sweep queues, by the names the parked query and
// MsgRetryParked use.
func (k *Keeper) orders() sweep.Queue[int64, OrderKey] {
	return sweep.Queue[int64, OrderKey]{Module: types.ModuleName, Name: OrdersQueue, Set: k.OrderQueue, Parked: k.Parked,
		Describe: func(key OrderKey) string { return "auction or expiry of order " + orderName(key) },
		Requeue:  k.requeueOrder}
}

// OrdersQueue is the order queue's name in the parked query and
// MsgRetryParked.
const OrdersQueue = "orders"

// parkedQueueName maps the queue a parked item names to today's: until
// v4 an order had two entries, in the "auctions" and "expiries" queues,
// whose parked items the migration and InitGenesis file under orders.
func parkedQueueName(q string) string {
	if slices.Contains(retiredOrderQueues, q) {
		return OrdersQueue
	}
	return q
}

var retiredOrderQueues = []string{"auctions", "expiries"}

func (k *Keeper) startDeadlines() sweep.Queue[int64, BidKey] {
	return sweep.Queue[int64, BidKey]{Module: types.ModuleName, Name: "start_deadlines", Set: k.StartDeadlines, Parked: k.Parked,
		Describe: func(key BidKey) string { return "start deadline of lease " + bidName(key) }}
}

func (k *Keeper) disputeWindows() sweep.Queue[int64, BidKey] {
	return sweep.Queue[int64, BidKey]{Module: types.ModuleName, Name: "dispute_windows", Set: k.DisputeQueue, Parked: k.Parked,
		Describe: func(key BidKey) string { return "dispute window of lease " + bidName(key) }}
}

// retryParked puts a queue's parked entries back on it.
func (k *Keeper) retryParked(ctx context.Context, queue string) (int, error) {
	switch queue {
	case OrdersQueue:
		return k.orders().Retry(ctx)
	case "start_deadlines":
		return k.startDeadlines().Retry(ctx)
	case "dispute_windows":
		return k.disputeWindows().Retry(ctx)
	case "silences":
		return k.silences().Retry(ctx)
	}
	return 0, errorsmod.Wrapf(types.ErrInvalidParams, "no queue %q: orders, start_deadlines, dispute_windows or silences", queue)
}

// orderName and bidName name index keys in logs and events.
func orderName(k OrderKey) string {
	gseq, oseq := types.UnpackGroupOrder(k.K3())
	return types.OrderID{Owner: k.K2().String(), Dseq: k.K1(), Gseq: gseq, Oseq: oseq}.Name()
}

func bidName(k BidKey) string { return bidID(k).Name() }

// bidID is the id a bid or lease key spells out.
func bidID(k BidKey) types.BidID {
	gseq, oseq := types.UnpackGroupOrder(k.K3())
	return types.BidID{Order: types.OrderID{Owner: k.K2().String(), Dseq: k.K1(), Gseq: gseq, Oseq: oseq}, Provider: k.K4().String()}
}

// Hooks returns x/escrow's view of the market.
func (k *Keeper) Hooks() escrowtypes.Hooks { return escrowHooks{k} }

type escrowHooks struct{ k *Keeper }

// OnAccountDepleted closes the deployment whose escrow ran dry: its leases
// end as insufficient_funds. Escrow has settled and paid them already.
func (h escrowHooks) OnAccountDepleted(ctx context.Context, id escrowtypes.AccountID, _ []escrowtypes.PaymentID) error {
	owner, err := h.k.addr("owner", id.Owner)
	if err != nil {
		return err
	}
	key := collections.Join(owner, id.Dseq)
	if has, err := h.k.Deployments.Has(ctx, key); err != nil || !has {
		return err
	}
	return h.k.closeDeployment(ctx, key, id.Owner, types.CLOSE_REASON_INSUFFICIENT_FUNDS, "")
}
