package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/gogoproto/proto"

	"github.com/gpunet/gpunet/internal/atomicfile"
)

// Block is what the watcher hands on for each height: the events of the
// successful transactions and the finalize-block (Begin/EndBlock) events.
type Block struct {
	Height int64
	Events []abci.Event
}

// HandleFunc processes one block; an error makes the watcher retry the same
// block, so handlers must be idempotent.
type HandleFunc func(ctx context.Context, b Block) error

// Watcher follows the chain block by block. It persists the last processed
// height, backfills every gap after a reconnect or a restart, and retries a
// failed query instead of skipping its block.
type Watcher struct {
	c         *Client
	blocks    blockSource
	stateFile string
	handle    HandleFunc
	log       *slog.Logger
	// Poll is the fallback period when no websocket event arrives.
	Poll time.Duration
	// OnPruned is called when the node no longer has blocks the watcher
	// missed; the daemon reconciles from state instead.
	OnPruned func(ctx context.Context, from, to int64)
	// OnHeight reports progress (processed, latest) for metrics.
	OnHeight func(processed, latest int64)

	last atomic.Int64 // read by the API while the watcher writes it
	head atomic.Int64 // the node's latest height, as last seen
}

type watcherState struct {
	LastHeight int64 `json:"last_height"`
}

// blockSource is what catching up reads from the node: its head and the
// results of one block.
type blockSource interface {
	Status(ctx context.Context) (*ctypes.ResultStatus, error)
	BlockResults(ctx context.Context, height *int64) (*ctypes.ResultBlockResults, error)
}

// fetchAhead is how many blocks catching up asks the node for at once. The
// blocks are still handled one by one in order, and the height is
// persisted once per batch: a daemon that was stopped for a while catches
// up in a round trip per batch, not per block (handlers are idempotent, so
// a crash inside a batch only handles its blocks again).
const fetchAhead = 8

// NewWatcher returns a watcher that keeps its height in stateFile.
func NewWatcher(c *Client, stateFile string, handle HandleFunc, logger *slog.Logger) *Watcher {
	return &Watcher{c: c, blocks: c.blocks, stateFile: stateFile, handle: handle, log: logger, Poll: 2 * time.Second}
}

// LastHeight is the last processed height.
func (w *Watcher) LastHeight() int64 { return w.last.Load() }

// Head is the node's latest height as the watcher last saw it (0: not
// yet), however far processing has got: it moves on while a block the
// daemon cannot handle yet is retried.
func (w *Watcher) Head() int64 { return w.head.Load() }

// Load reads the persisted height; 0 means none.
func (w *Watcher) Load() error {
	raw, err := os.ReadFile(w.stateFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var st watcherState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("%s: %w", w.stateFile, err)
	}
	w.last.Store(st.LastHeight)
	return nil
}

func (w *Watcher) save() error {
	raw, _ := json.Marshal(watcherState{LastHeight: w.last.Load()})
	return writeFileAtomic(w.stateFile, raw)
}

// Run follows the chain until ctx ends. Without a persisted height it
// starts at the current head (the daemon reconciles the past from state).
func (w *Watcher) Run(ctx context.Context) error {
	if err := w.Load(); err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	go w.subscribe(ctx, wake)
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	backoff := 500 * time.Millisecond
	for {
		if err := w.catchUp(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("chain query failed; retrying the same block", "next_height", w.last.Load()+1, "err", err, "in", backoff)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 500 * time.Millisecond
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-t.C:
		}
	}
}

// catchUp processes every block after the last one up to the head.
func (w *Watcher) catchUp(ctx context.Context) error {
	st, err := w.blocks.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	latest := st.SyncInfo.LatestBlockHeight
	w.head.Store(latest)
	if w.last.Load() == 0 {
		w.last.Store(latest - 1)
		w.log.Info("no processed height recorded; following from the head", "height", latest)
	}
	if earliest := st.SyncInfo.EarliestBlockHeight; w.last.Load()+1 < earliest {
		w.log.Error("node has pruned blocks the daemon missed; reconciling from state", "missed_from", w.last.Load()+1, "missed_to", earliest-1)
		if w.OnPruned != nil {
			w.OnPruned(ctx, w.last.Load()+1, earliest-1)
		}
		w.last.Store(earliest - 1)
	}
	for from := w.last.Load() + 1; from <= latest; from = w.last.Load() + 1 {
		err := w.handleBatch(ctx, w.fetchBatch(ctx, from, min(latest, from+fetchAhead-1)), latest)
		if w.last.Load() >= from {
			if serr := w.save(); serr != nil {
				return errors.Join(err, fmt.Errorf("persist height: %w", serr))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fetched is one block of a batch, or why it could not be read.
type fetched struct {
	height int64
	block  Block
	err    error
}

// fetchBatch reads the blocks from..to from the node at once.
func (w *Watcher) fetchBatch(ctx context.Context, from, to int64) []fetched {
	out := make([]fetched, to-from+1)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].height = from + int64(i)
			out[i].block, out[i].err = w.fetch(ctx, out[i].height)
		}()
	}
	wg.Wait()
	return out
}

// handleBatch hands the blocks on in order and stops at the first that
// could not be read or handled; the last height moves past each one
// handled.
func (w *Watcher) handleBatch(ctx context.Context, batch []fetched, latest int64) error {
	for _, f := range batch {
		if f.err != nil {
			return f.err
		}
		if err := w.handle(ctx, f.block); err != nil {
			return fmt.Errorf("handle block %d: %w", f.height, err)
		}
		w.last.Store(f.height)
		if w.OnHeight != nil {
			w.OnHeight(f.height, latest)
		}
	}
	return nil
}

func (w *Watcher) fetch(ctx context.Context, h int64) (Block, error) {
	res, err := w.blocks.BlockResults(ctx, &h)
	if err != nil {
		return Block{}, fmt.Errorf("block_results %d: %w", h, err)
	}
	return blockFromResults(res), nil
}

func blockFromResults(res *ctypes.ResultBlockResults) Block {
	b := Block{Height: res.Height}
	for _, tx := range res.TxsResults {
		if tx.Code == 0 {
			b.Events = append(b.Events, tx.Events...)
		}
	}
	b.Events = append(b.Events, res.FinalizeBlockEvents...)
	return b
}

// subscribe wakes the loop on every new block; it reconnects forever.
func (w *Watcher) subscribe(ctx context.Context, wake chan<- struct{}) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := w.subscribeOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("block subscription lost; polling until it is back", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (w *Watcher) subscribeOnce(ctx context.Context, wake chan<- struct{}) error {
	if !w.c.RPC.IsRunning() {
		if err := w.c.RPC.Start(); err != nil {
			return err
		}
	}
	// The header is all a wake-up needs. A NewBlock event carries the whole
	// block and every transaction's results, which the client decodes (by
	// reflection) only for the watcher to read the same results again from
	// block_results: it was a fifth of what the daemon allocated.
	sub, err := w.c.RPC.Subscribe(ctx, "gpunet-provider", "tm.event='NewBlockHeader'", 16)
	if err != nil {
		return err
	}
	defer func() { _ = w.c.RPC.UnsubscribeAll(context.Background(), "gpunet-provider") }()
	w.log.Info("subscribed to new blocks")
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-sub:
			if !ok {
				return fmt.Errorf("subscription closed")
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
}

// writeFileAtomic writes via a temporary file and rename, so a crash leaves
// the old or the new content, never half of it.
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data) }

// WriteFileAtomic is writeFileAtomic for other packages.
func WriteFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data) }

// ParseEvent decodes a typed event of a block's results. The SDK adds
// attributes that are not part of the event (msg_index on transaction
// events, mode=EndBlock on finalize-block events, whose values are not
// JSON); they are dropped first, or sdk.ParseTypedEvent would refuse every
// Begin/EndBlock event.
func ParseEvent(ev abci.Event) (proto.Message, error) {
	clean := abci.Event{Type: ev.Type}
	for _, a := range ev.Attributes {
		if a.Key == "mode" || a.Key == "msg_index" {
			continue
		}
		clean.Attributes = append(clean.Attributes, a)
	}
	return sdk.ParseTypedEvent(clean)
}
