package sweep_test

import (
	"context"
	"errors"
	"testing"

	"cosmossdk.io/collections"
	"cosmossdk.io/log/v2"
	"github.com/cosmos/cosmos-sdk/runtime"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	"github.com/cosmos/cosmos-sdk/testutil"
	sdk "github.com/cosmos/cosmos-sdk/types"
	moduletestutil "github.com/cosmos/cosmos-sdk/types/module/testutil"

	"github.com/gpunet/gpunet/x/internal/sweep"
	"github.com/gpunet/gpunet/x/internal/sweep/types"
)

type fixture struct {
	ctx   sdk.Context
	queue sweep.Queue[int64, string]
	done  collections.KeySet[string]
}

func newFixture(t *testing.T) *fixture {
	key := storetypes.NewKVStoreKey("s")
	ctx := testutil.DefaultContextWithDB(t, key, storetypes.NewTransientStoreKey("t")).Ctx.WithLogger(log.NewNopLogger()).WithBlockHeight(7)
	sb := collections.NewSchemaBuilder(runtime.NewKVStoreService(key))
	cdc := moduletestutil.MakeTestEncodingConfig().Codec
	f := &fixture{ctx: ctx}
	f.queue = sweep.Queue[int64, string]{
		Module: "m", Name: "deadlines",
		Set:      collections.NewKeySet(sb, collections.NewPrefix(1), "queue", collections.PairKeyCodec(collections.Int64Key, collections.StringKey)),
		Parked:   sweep.NewParked(sb, collections.NewPrefix(2), cdc),
		Describe: func(k string) string { return "item " + k },
	}
	f.done = collections.NewKeySet(sb, collections.NewPrefix(3), "done", collections.StringKey)
	if _, err := sb.Build(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) queued(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := f.queue.Set.Walk(f.ctx, nil, func(k collections.Pair[int64, string]) (bool, error) {
		out = append(out, k.K2())
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A sweep keeps the writes of an item that succeeds; an item that fails or
// panics leaves none of its writes, is taken off its queue and parked with
// a typed event; the bound and the limit are kept; governance puts parked
// items back and the next sweep handles them.
func TestQueueRunsParksAndRetries(t *testing.T) {
	f := newFixture(t)
	for h, k := range map[int64]string{1: "a", 2: "b", 3: "c", 4: "d", 9: "later"} {
		if err := f.queue.Set.Set(f.ctx, collections.Join(h, k)); err != nil {
			t.Fatal(err)
		}
	}
	broken := map[string]bool{"b": true, "c": true}
	handle := func(ctx context.Context, k string) error {
		if err := f.done.Set(ctx, k); err != nil {
			return err
		}
		switch {
		case k == "c" && broken[k]:
			panic("index out of range") // a bug
		case broken[k]:
			return errors.New("stale index entry")
		}
		return nil
	}
	// Due before height 8, at most 3 this block.
	if err := f.queue.Run(f.ctx, 8, 3, handle); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]bool{"a": true, "b": false, "c": false, "d": false} {
		if got, _ := f.done.Has(f.ctx, k); got != want {
			t.Errorf("%s done = %v, want %v", k, got, want)
		}
	}
	if q := f.queued(t); len(q) != 2 || q[0] != "d" || q[1] != "later" {
		t.Errorf("queue after the sweep %v, want [d later] (the limit carries d over)", q)
	}
	parked, err := sweep.List(f.ctx, f.queue.Parked)
	if err != nil || len(parked) != 2 || parked[0].Item != "item b" || parked[1].Height != 7 || parked[1].Error == "" {
		t.Fatalf("parked %+v %v", parked, err)
	}
	var failed []string
	for _, ev := range f.ctx.EventManager().Events() {
		if ev.Type == "gpunet.sweep.v1.EventSweepFailed" {
			failed = append(failed, ev.Type)
		}
	}
	if len(failed) != 2 {
		t.Errorf("%d EventSweepFailed, want 2", len(failed))
	}
	// Fixed (by an upgrade, say): governance retries them.
	broken = map[string]bool{}
	n, err := f.queue.Retry(f.ctx)
	if err != nil || n != 2 {
		t.Fatalf("retry: %d %v", n, err)
	}
	if parked, _ := sweep.List(f.ctx, f.queue.Parked); len(parked) != 0 {
		t.Errorf("still parked after retry: %+v", parked)
	}
	if err := f.queue.Run(f.ctx, 8, 10, handle); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b", "c", "d"} {
		if got, _ := f.done.Has(f.ctx, k); !got {
			t.Errorf("%s not handled after the retry", k)
		}
	}
	if q := f.queued(t); len(q) != 1 || q[0] != "later" {
		t.Errorf("queue %v, want [later]", q)
	}
}

func TestParkedGenesisRoundTrip(t *testing.T) {
	f := newFixture(t)
	items := []types.ParkedItem{{Queue: "deadlines", Key: []byte{1, 2}, Item: "x", Error: "e", Height: 3}}
	if err := sweep.ValidateGenesis(items); err != nil {
		t.Fatal(err)
	}
	if err := sweep.Import(f.ctx, f.queue.Parked, items); err != nil {
		t.Fatal(err)
	}
	out, err := sweep.List(f.ctx, f.queue.Parked)
	if err != nil || len(out) != 1 || out[0].Item != "x" {
		t.Fatalf("export %+v %v", out, err)
	}
	for name, bad := range map[string][]types.ParkedItem{
		"no queue":  {{Key: []byte{1}}},
		"no key":    {{Queue: "q"}},
		"duplicate": {{Queue: "q", Key: []byte{1}}, {Queue: "q", Key: []byte{1}}},
	} {
		if err := sweep.ValidateGenesis(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
