package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	"github.com/cosmos/gogoproto/proto"

	sdk "github.com/cosmos/cosmos-sdk/types"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"

	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// block is what the tests read from one committed block: its time, the
// fees its transactions paid (failed ones included: the ante handler
// charges them too), the ugpn minted in it, and gpunet's typed events of
// its successful transactions and of FinalizeBlock, in order.
type block struct {
	Height    int64
	Time      time.Time
	FeesBy    map[string]int64 // fee payer → ugpn
	TotalFees int64
	Minted    int64
	Events    []proto.Message
}

// chainReader reads blocks and historical balances from one node.
type chainReader struct {
	t    *testing.T
	node *localnet.Node
	rpc  *rpchttp.HTTP
}

func newChainReader(t *testing.T, node *localnet.Node) *chainReader {
	t.Helper()
	c, err := rpchttp.New(node.RPCURL(), "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	return &chainReader{t: t, node: node, rpc: c}
}

// height is the latest committed height.
func (r *chainReader) height() int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := r.rpc.Status(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return st.SyncInfo.LatestBlockHeight
}

// waitHeight waits until block h is committed and its results are stored.
func (r *chainReader) waitHeight(h int64) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.height() < h {
		if time.Now().After(deadline) {
			r.t.Fatalf("block %d not committed within 60s", h)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// retry runs f until it succeeds, for up to 10 seconds: the node reports a
// height as soon as the block is stored, a moment before its results and
// state are committed.
func (r *chainReader) retry(what string, f func(ctx context.Context) error) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *chainReader) block(h int64) block {
	r.t.Helper()
	var hdr *ctypes.ResultHeader
	var res *ctypes.ResultBlockResults
	r.retry(fmt.Sprintf("block %d", h), func(ctx context.Context) (err error) {
		if hdr, err = r.rpc.Header(ctx, &h); err != nil {
			return err
		}
		res, err = r.rpc.BlockResults(ctx, &h)
		return err
	})
	b := block{Height: h, Time: hdr.Header.Time, FeesBy: map[string]int64{}}
	var events []abci.Event
	for _, tx := range res.TxsResults {
		for _, ev := range tx.Events {
			if ev.Type != sdk.EventTypeTx || attr(ev, sdk.AttributeKeyFee) == "" {
				continue
			}
			fee, err := sdk.ParseCoinsNormalized(attr(ev, sdk.AttributeKeyFee))
			if err != nil {
				r.t.Fatalf("block %d: fee %q: %v", h, attr(ev, sdk.AttributeKeyFee), err)
			}
			amt := fee.AmountOf("ugpn").Int64()
			b.FeesBy[attr(ev, sdk.AttributeKeyFeePayer)] += amt
			b.TotalFees += amt
		}
		if tx.Code == 0 {
			events = append(events, tx.Events...)
		}
	}
	for _, ev := range res.FinalizeBlockEvents {
		if ev.Type == "mint" {
			b.Minted += mustInt(r.t, attr(ev, sdk.AttributeKeyAmount))
		}
	}
	events = append(events, res.FinalizeBlockEvents...)
	for _, ev := range events {
		if !strings.HasPrefix(ev.Type, "gpunet.") {
			continue
		}
		msg, err := chain.ParseEvent(ev)
		if err != nil {
			r.t.Fatalf("block %d: event %s: %v", h, ev.Type, err)
		}
		b.Events = append(b.Events, msg)
	}
	return b
}

// blocks reads blocks from..to (inclusive).
func (r *chainReader) blocks(from, to int64) []block {
	r.t.Helper()
	var out []block
	for h := from; h <= to; h++ {
		out = append(out, r.block(h))
	}
	return out
}

func attr(ev abci.Event, key string) string {
	for _, a := range ev.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// balanceAt is addr's ugpn balance at the end of block h (REST, with the
// height header).
func (r *chainReader) balanceAt(addr string, h int64) int64 {
	r.t.Helper()
	var res struct {
		Balance struct {
			Amount string `json:"amount"`
		} `json:"balance"`
	}
	r.restAt(fmt.Sprintf("balance of %s", addr), "/cosmos/bank/v1beta1/balances/"+addr+"/by_denom?denom=ugpn", h, &res)
	if res.Balance.Amount == "" {
		return 0
	}
	return mustInt(r.t, res.Balance.Amount)
}

// restAt reads a REST path as of the end of block h (the height header) into out.
func (r *chainReader) restAt(what, path string, h int64, out any) {
	r.t.Helper()
	r.retry(fmt.Sprintf("%s at %d", what, h), func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.node.APIURL()+path, nil)
		if err != nil {
			return err
		}
		req.Header.Set("x-cosmos-block-height", strconv.FormatInt(h, 10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, raw)
		}
		return json.Unmarshal(raw, out)
	})
}

// payouts are escrow payouts (EventPaymentWithdrawn) summed.
type payouts struct{ Gross, Take, Net int64 }

// sumPayouts sums the payouts of bs to an owner's deployment dseq from
// provider; an empty owner or provider, or dseq 0, matches any.
func sumPayouts(bs []block, owner string, dseq uint64, provider string) payouts {
	var p payouts
	for _, b := range bs {
		for _, ev := range b.Events {
			e, ok := ev.(*escrowtypes.EventPaymentWithdrawn)
			if !ok || (owner != "" && e.Id.Account.Owner != owner) || (dseq != 0 && e.Id.Account.Dseq != dseq) ||
				(provider != "" && e.Id.Provider != provider) {
				continue
			}
			p.Gross += e.Gross.Amount.Int64()
			p.Take += e.Take.Amount.Int64()
			p.Net += e.Net.Amount.Int64()
		}
	}
	return p
}

// leaseEventHeight returns the first block of bs holding an event that
// match accepts, and the event; 0 when none does.
func leaseEventHeight(bs []block, match func(proto.Message) bool) (int64, proto.Message) {
	for _, b := range bs {
		for _, ev := range b.Events {
			if match(ev) {
				return b.Height, ev
			}
		}
	}
	return 0, nil
}

func isLeaseStarted(owner string, dseq uint64) func(proto.Message) bool {
	return func(m proto.Message) bool {
		e, ok := m.(*markettypes.EventLeaseStarted)
		return ok && e.Id.Order.Owner == owner && e.Id.Order.Dseq == dseq
	}
}

func isLeaseClosed(owner string, dseq uint64) func(proto.Message) bool {
	return func(m proto.Message) bool {
		e, ok := m.(*markettypes.EventLeaseClosed)
		return ok && e.Id.Order.Owner == owner && e.Id.Order.Dseq == dseq
	}
}

func isAccountCreated(owner string, dseq uint64) func(proto.Message) bool {
	return func(m proto.Message) bool {
		e, ok := m.(*escrowtypes.EventAccountCreated)
		return ok && e.Id.Owner == owner && e.Id.Dseq == dseq
	}
}

func isAccountClosed(owner string, dseq uint64) func(proto.Message) bool {
	return func(m proto.Message) bool {
		e, ok := m.(*escrowtypes.EventAccountClosed)
		return ok && e.Id.Owner == owner && e.Id.Dseq == dseq
	}
}

func blockAt(bs []block, h int64) block {
	for _, b := range bs {
		if b.Height == h {
			return b
		}
	}
	panic(fmt.Sprintf("block %d not read", h))
}
