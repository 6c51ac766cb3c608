package chain

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// An EndBlock event carries mode=EndBlock, whose value is not JSON; a
// transaction event carries msg_index. Both must still decode, or the
// daemon would never see leases closed by EndBlock.
func TestParseEventFinalizeBlockAndTxEvents(t *testing.T) {
	ev, err := sdk.TypedEventToEvent(&markettypes.EventLeaseClosed{
		Id:     markettypes.BidID{Order: markettypes.OrderID{Owner: "o", Dseq: 7, Gseq: 1, Oseq: 1}, Provider: "p"},
		Reason: markettypes.CLOSE_REASON_INSUFFICIENT_FUNDS,
	})
	if err != nil {
		t.Fatal(err)
	}
	endBlock := abci.Event(ev)
	endBlock.Attributes = append(endBlock.Attributes, abci.EventAttribute{Key: "mode", Value: "EndBlock"})
	txEvent := abci.Event(ev)
	txEvent.Attributes = append(txEvent.Attributes, abci.EventAttribute{Key: "msg_index", Value: "0"})

	if _, err := sdk.ParseTypedEvent(endBlock); err == nil {
		t.Log("note: the SDK now parses mode=EndBlock itself")
	}
	for name, e := range map[string]abci.Event{"end block": endBlock, "tx": txEvent} {
		msg, err := ParseEvent(e)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := msg.(*markettypes.EventLeaseClosed)
		if got.Id.Order.Dseq != 7 || got.Reason != markettypes.CLOSE_REASON_INSUFFICIENT_FUNDS {
			t.Fatalf("%s: %+v", name, got)
		}
	}
}

// Only successful transactions' events count; finalize-block events follow.
func TestBlockFromResults(t *testing.T) {
	res := &ctypes.ResultBlockResults{
		Height: 9,
		TxsResults: []*abci.ExecTxResult{
			{Code: 0, Events: []abci.Event{{Type: "ok"}}},
			{Code: 5, Events: []abci.Event{{Type: "failed"}}},
		},
		FinalizeBlockEvents: []abci.Event{{Type: "endblock"}},
	}
	b := blockFromResults(res)
	if b.Height != 9 || len(b.Events) != 2 || b.Events[0].Type != "ok" || b.Events[1].Type != "endblock" {
		t.Fatalf("%+v", b)
	}
}

// fakeBlocks is a node of blocks 1..head; fail names heights whose
// results it cannot give (once each), and pair makes the first read wait
// until a second one has been asked for.
type fakeBlocks struct {
	head  int64
	mu    sync.Mutex
	fail  map[int64]bool
	pair  bool
	reads []int64
}

func (f *fakeBlocks) readsAsked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reads)
}

func (f *fakeBlocks) Status(context.Context) (*ctypes.ResultStatus, error) {
	return &ctypes.ResultStatus{SyncInfo: ctypes.SyncInfo{LatestBlockHeight: f.head, EarliestBlockHeight: 1}}, nil
}

func (f *fakeBlocks) BlockResults(_ context.Context, h *int64) (*ctypes.ResultBlockResults, error) {
	f.mu.Lock()
	f.reads = append(f.reads, *h)
	first := len(f.reads) == 1
	failing := f.fail[*h]
	delete(f.fail, *h)
	f.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); f.pair && first && f.readsAsked() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("block %d: no second read came while the first was in flight", *h)
		}
	}
	if failing {
		return nil, fmt.Errorf("node unavailable for block %d", *h)
	}
	return &ctypes.ResultBlockResults{Height: *h, FinalizeBlockEvents: []abci.Event{{Type: fmt.Sprint("block-", *h)}}}, nil
}

// newTestWatcher follows node from height last (0: from its head), and
// records every block it hands on; refuse names heights the handler
// refuses once.
func newTestWatcher(t *testing.T, node *fakeBlocks, last int64, refuse map[int64]bool) (*Watcher, *[]int64) {
	t.Helper()
	var handled []int64
	w := &Watcher{blocks: node, stateFile: filepath.Join(t.TempDir(), "watcher.json"), log: slog.New(slog.DiscardHandler)}
	w.handle = func(_ context.Context, b Block) error {
		if len(b.Events) != 1 || b.Events[0].Type != fmt.Sprint("block-", b.Height) {
			return fmt.Errorf("block %d handed on with events %v", b.Height, b.Events)
		}
		if refuse[b.Height] {
			delete(refuse, b.Height)
			return fmt.Errorf("handler not ready for block %d", b.Height)
		}
		handled = append(handled, b.Height)
		return nil
	}
	w.last.Store(last)
	return w, &handled
}

// persisted is the height the watcher's file holds.
func persisted(t *testing.T, w *Watcher) int64 {
	t.Helper()
	again := &Watcher{stateFile: w.stateFile}
	if err := again.Load(); err != nil {
		t.Fatal(err)
	}
	return again.LastHeight()
}

func heights(from, to int64) []int64 {
	var out []int64
	for h := from; h <= to; h++ {
		out = append(out, h)
	}
	return out
}

// A daemon that was away catches up on every block it missed, once each
// and in order, reading several at a time, and keeps the last height.
func TestWatcherCatchUpHandlesEveryMissedBlockInOrder(t *testing.T) {
	node := &fakeBlocks{head: 30, pair: true}
	w, handled := newTestWatcher(t, node, 10, nil)
	if err := w.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := heights(11, 30); !slices.Equal(*handled, want) {
		t.Fatalf("handled %v, want %v", *handled, want)
	}
	if w.LastHeight() != 30 || persisted(t, w) != 30 {
		t.Fatalf("last height %d, persisted %d, want 30", w.LastHeight(), persisted(t, w))
	}
	if len(node.reads) != 20 {
		t.Fatalf("read %d blocks for 20 missed", len(node.reads))
	}
}

// A block the node cannot give, or the handler refuses, stops the catch-up
// there: the blocks before it stay handled and persisted, and the next
// pass starts at it, so no block is skipped or handled twice.
func TestWatcherCatchUpResumesAtTheBlockThatFailed(t *testing.T) {
	for name, tc := range map[string]struct{ unreadable, refused map[int64]bool }{
		"node fails": {unreadable: map[int64]bool{14: true}},
		"handler":    {refused: map[int64]bool{14: true}},
	} {
		t.Run(name, func(t *testing.T) {
			node := &fakeBlocks{head: 20, fail: tc.unreadable}
			w, handled := newTestWatcher(t, node, 10, tc.refused)
			err := w.catchUp(context.Background())
			if err == nil || !strings.Contains(err.Error(), "14") {
				t.Fatalf("catch-up over a failing block 14: err %v", err)
			}
			if !slices.Equal(*handled, heights(11, 13)) || persisted(t, w) != 13 {
				t.Fatalf("after the failure: handled %v, persisted %d; want 11..13 and 13", *handled, persisted(t, w))
			}
			if err := w.catchUp(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(*handled, heights(11, 20)) || persisted(t, w) != 20 {
				t.Fatalf("after the retry: handled %v, persisted %d; want 11..20 and 20", *handled, persisted(t, w))
			}
		})
	}
}
