// Package sweep runs the due items of an EndBlock sweep one at a time, each
// in isolation. An EndBlock that returns an error or panics halts the chain
// for every validator at once; one bad record (a stale index entry, a bug
// met by one deployment) must cost that record, not the network.
package sweep

import (
	"context"
	"fmt"

	sdk "github.com/cosmos/cosmos-sdk/types"
)

// EventType is the event emitted for an item a sweep gave up on.
const EventType = "gpunet.sweep_failed"

// Item runs fn on a branch of ctx and keeps its writes when it succeeds.
// When fn fails or panics, none of its writes are kept; drop then runs on
// ctx to take the item off its queue, so it neither stalls the sweep nor
// uses up the next blocks' budgets, and the failure is logged and emitted
// as an EventType event naming the module, the item (name is called only
// then, to keep the common path free of formatting) and the error. Item
// returns an error only when drop fails, which means the store itself is
// failing.
func Item(ctx context.Context, module string, name func() string, fn, drop func(ctx context.Context) error) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	branch, write := sdkCtx.CacheContext()
	err := run(branch, fn)
	if err == nil {
		write()
		return nil
	}
	item := name()
	sdkCtx.Logger().Error("end-block sweep skipped an item it could not process", "module", module, "item", item, "err", err)
	sdkCtx.EventManager().EmitEvent(sdk.NewEvent(EventType,
		sdk.NewAttribute("module", module), sdk.NewAttribute("item", item), sdk.NewAttribute("error", err.Error())))
	if derr := drop(ctx); derr != nil {
		return fmt.Errorf("%s: drop %s after %v: %w", module, item, err, derr)
	}
	return nil
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
