// Package sweep runs gpunet's EndBlock sweeps: the due entries of a
// height- or time-keyed queue, at most a bounded number per block (the rest
// carry over), each in isolation. An EndBlock that returns an error or panics
// halts the chain for every validator at once; one bad record (a stale index
// entry, a bug met by one deployment) must cost that record, not the
// network. An entry whose handling fails is parked where an operator can see
// it (the module's parked query) and put back on its queue by governance
// (MsgRetryParked), with a typed EventSweepFailed.
package sweep

import (
	"context"
	"errors"
	"fmt"

	"cosmossdk.io/collections"

	"github.com/cosmos/cosmos-sdk/codec"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/sweep/types"
)

// ParkedKey is (queue name, the entry's encoded key).
type ParkedKey = collections.Pair[string, []byte]

// Parked is where a module keeps the entries its sweeps gave up on.
type Parked = collections.Map[ParkedKey, types.ParkedItem]

// NewParked declares a module's parked items under prefix.
func NewParked(sb *collections.SchemaBuilder, prefix collections.Prefix, cdc codec.BinaryCodec) Parked {
	return collections.NewMap(sb, prefix, "parked", collections.PairKeyCodec(collections.StringKey, collections.BytesKey), codec.CollValue[types.ParkedItem](cdc))
}

// Queue is one due queue of a module: entries (when, key) are due once when
// is before the bound a sweep is given (a height + 1, or a time + 1ns).
type Queue[T, K any] struct {
	Module string
	Name   string
	Set    collections.KeySet[collections.Pair[T, K]]
	Parked Parked
	// Describe names an entry's object in logs and events (called only
	// for a failed entry).
	Describe func(K) string
	// Requeue, when set, puts a retried entry back instead of a plain
	// Set: for a queue that must keep one entry per object, it can drop
	// the object's current entry first, or the entry itself when its
	// object is gone.
	Requeue func(ctx context.Context, e collections.Pair[T, K]) error
}

// Due returns the entries before bound, in queue order, at most limit.
func (q Queue[T, K]) Due(ctx context.Context, bound T, limit int) ([]collections.Pair[T, K], error) {
	var out []collections.Pair[T, K]
	if limit <= 0 {
		return nil, nil
	}
	rng := new(collections.Range[collections.Pair[T, K]]).EndExclusive(collections.PairPrefix[T, K](bound))
	err := q.Set.Walk(ctx, rng, func(key collections.Pair[T, K]) (bool, error) {
		out = append(out, key)
		return len(out) >= limit, nil
	})
	return out, err
}

// Run handles the entries due before bound, at most limit: each leaves the
// queue and fn runs, both on a branch of ctx whose writes are kept only if
// fn succeeds. A failed (or panicking) entry is taken off the queue and
// parked instead, logged and emitted as EventSweepFailed, so it neither
// stalls the sweep nor uses up the next blocks' budgets. Run returns an
// error only when the store itself fails.
func (q Queue[T, K]) Run(ctx context.Context, bound T, limit int, fn func(ctx context.Context, key K) error) error {
	return q.RunEntries(ctx, bound, limit, func(ctx context.Context, e collections.Pair[T, K]) error { return fn(ctx, e.K2()) })
}

// RunEntries is Run for a queue whose handler needs the whole entry: when
// it was due as well as what.
func (q Queue[T, K]) RunEntries(ctx context.Context, bound T, limit int, fn func(ctx context.Context, e collections.Pair[T, K]) error) error {
	due, err := q.Due(ctx, bound, limit)
	if err != nil {
		return err
	}
	for _, e := range due {
		if err := q.item(ctx, e, fn); err != nil {
			return err
		}
	}
	return nil
}

func (q Queue[T, K]) item(ctx context.Context, e collections.Pair[T, K], fn func(ctx context.Context, e collections.Pair[T, K]) error) error {
	err := Try(ctx, func(ctx context.Context) error {
		if err := q.Set.Remove(ctx, e); err != nil {
			return err
		}
		return fn(ctx, e)
	})
	if err == nil {
		return nil
	}
	if err := q.Set.Remove(ctx, e); err != nil {
		return fmt.Errorf("%s: drop %s: %w", q.Module, q.Describe(e.K2()), err)
	}
	return q.Park(ctx, e, err)
}

// Park files entry e (already off the queue) under the module's parked
// items with the error that stopped it, logs it and emits
// EventSweepFailed. It returns an error only when the store fails.
func (q Queue[T, K]) Park(ctx context.Context, e collections.Pair[T, K], cause error) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	item := q.Describe(e.K2())
	sdkCtx.Logger().Error("end-block sweep parked an item it could not process", "module", q.Module, "queue", q.Name, "item", item, "err", cause)
	key, err := collections.EncodeKeyWithPrefix(nil, q.Set.KeyCodec(), e)
	if err != nil {
		return fmt.Errorf("%s: park %s: %w", q.Module, item, err)
	}
	if err := q.Parked.Set(ctx, collections.Join(q.Name, key), types.ParkedItem{Queue: q.Name, Key: key, Item: item, Error: cause.Error(), Height: sdkCtx.BlockHeight()}); err != nil {
		return fmt.Errorf("%s: park %s: %w", q.Module, item, err)
	}
	return sdkCtx.EventManager().EmitTypedEvent(&types.EventSweepFailed{Module: q.Module, Queue: q.Name, Item: item, Error: cause.Error()})
}

// Try runs fn on a branch of ctx, keeping its writes only if it succeeds
// (a panic is an error): a step of a sweep's handler whose failure must
// not take the rest of the handler's work with it.
func Try(ctx context.Context, fn func(ctx context.Context) error) error {
	branch, write := sdk.UnwrapSDKContext(ctx).CacheContext()
	if err := run(branch, fn); err != nil {
		return err
	}
	write()
	return nil
}

// Retry puts every parked entry of the queue back on it, where the next
// sweep handles it again (it is due at once: its height or time has
// passed). It returns how many it put back.
func (q Queue[T, K]) Retry(ctx context.Context) (int, error) {
	rng := collections.NewPrefixedPairRange[string, []byte](q.Name)
	var keys []ParkedKey
	if err := q.Parked.Walk(ctx, rng, func(k ParkedKey, _ types.ParkedItem) (bool, error) {
		keys = append(keys, k)
		return false, nil
	}); err != nil {
		return 0, err
	}
	kc := q.Set.KeyCodec()
	for _, k := range keys {
		n, e, err := kc.Decode(k.K2())
		if err != nil || n != len(k.K2()) {
			return 0, errors.Join(fmt.Errorf("parked key of queue %s does not decode", q.Name), err)
		}
		requeue := q.Set.Set
		if q.Requeue != nil {
			requeue = q.Requeue
		}
		if err := requeue(ctx, e); err != nil {
			return 0, err
		}
		if err := q.Parked.Remove(ctx, k); err != nil {
			return 0, err
		}
	}
	if len(keys) > 0 {
		if err := sdk.UnwrapSDKContext(ctx).EventManager().EmitTypedEvent(&types.EventParkedRetried{Module: q.Module, Queue: q.Name, Count: uint32(len(keys))}); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// List returns a module's parked items, every queue's (for its query and
// its genesis export).
func List(ctx context.Context, p Parked) ([]types.ParkedItem, error) {
	var out []types.ParkedItem
	err := p.Walk(ctx, nil, func(_ ParkedKey, v types.ParkedItem) (bool, error) {
		out = append(out, v)
		return false, nil
	})
	return out, err
}

// run calls fn, turning a panic into an error.
func run(ctx sdk.Context, fn func(ctx context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(ctx)
}

// Import stores a module's parked items from its genesis.
func Import(ctx context.Context, p Parked, items []types.ParkedItem) error {
	for _, it := range items {
		if err := p.Set(ctx, collections.Join(it.Queue, it.Key), it); err != nil {
			return err
		}
	}
	return nil
}

// ValidateGenesis checks parked items: each names a queue and a key, once.
func ValidateGenesis(items []types.ParkedItem) error {
	seen := map[string]bool{}
	for i, it := range items {
		if it.Queue == "" || len(it.Key) == 0 {
			return fmt.Errorf("parked[%d]: queue and key are required", i)
		}
		k := it.Queue + "\x00" + string(it.Key)
		if seen[k] {
			return fmt.Errorf("parked[%d]: duplicate entry of queue %s", i, it.Queue)
		}
		seen[k] = true
	}
	return nil
}
