package sweep_test

import (
	"context"
	"errors"
	"testing"

	"cosmossdk.io/log/v2"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	"github.com/cosmos/cosmos-sdk/testutil"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/sweep"
)

func TestItemKeepsSuccessDropsFailureAndPanic(t *testing.T) {
	key := storetypes.NewKVStoreKey("s")
	ctx := testutil.DefaultContextWithDB(t, key, storetypes.NewTransientStoreKey("t")).Ctx.WithLogger(log.NewNopLogger())
	store := func(c context.Context) storetypes.KVStore { return sdk.UnwrapSDKContext(c).KVStore(key) }
	store(ctx).Set([]byte("queue/a"), []byte{1})
	store(ctx).Set([]byte("queue/b"), []byte{1})
	store(ctx).Set([]byte("queue/c"), []byte{1})
	name := func(item string) func() string { return func() string { return item } }
	drop := func(item string) func(context.Context) error {
		return func(c context.Context) error { store(c).Delete([]byte("queue/" + item)); return nil }
	}

	// Success: the writes are kept, drop does not run.
	if err := sweep.Item(ctx, "m", name("a"), func(c context.Context) error {
		store(c).Set([]byte("done/a"), []byte{1})
		store(c).Delete([]byte("queue/a"))
		return nil
	}, func(context.Context) error { t.Fatal("drop on success"); return nil }); err != nil {
		t.Fatal(err)
	}
	// Failure after a write: the write is discarded, the item dropped.
	if err := sweep.Item(ctx, "m", name("b"), func(c context.Context) error {
		store(c).Set([]byte("done/b"), []byte{1})
		return errors.New("stale index entry")
	}, drop("b")); err != nil {
		t.Fatal(err)
	}
	// Panic: recovered, discarded, dropped.
	if err := sweep.Item(ctx, "m", name("c"), func(c context.Context) error {
		store(c).Set([]byte("done/c"), []byte{1})
		panic("index out of range in a handler")
	}, drop("c")); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"done/a": true, "done/b": false, "done/c": false, "queue/a": false, "queue/b": false, "queue/c": false} {
		if got := store(ctx).Has([]byte(k)); got != want {
			t.Errorf("%s present = %v, want %v", k, got, want)
		}
	}
	var failed []string
	for _, ev := range ctx.EventManager().Events() {
		if ev.Type == sweep.EventType {
			for _, a := range ev.Attributes {
				if a.Key == "item" {
					failed = append(failed, a.Value)
				}
			}
		}
	}
	if len(failed) != 2 || failed[0] != "b" || failed[1] != "c" {
		t.Fatalf("sweep_failed events for %v, want [b c]", failed)
	}
	// A failing drop (the store itself failing) is returned.
	if err := sweep.Item(ctx, "m", name("d"), func(context.Context) error { return errors.New("x") },
		func(context.Context) error { return errors.New("store down") }); err == nil {
		t.Fatal("a failing drop was swallowed")
	}
}
