package chain

import (
	"context"
	"encoding/json"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	jsonrpcclient "github.com/cometbft/cometbft/rpc/jsonrpc/client"
)

// nodeBlocks is the watcher's block source on a real node. Its head comes
// from the RPC client; a block's results are read with plain encoding/json
// into only the fields the watcher uses (each transaction's code and
// events, and the finalize-block events). The RPC client's own decoding
// goes through jsonpb for every transaction result and event attribute,
// and was most of what the daemon allocated with hundreds of leases.
type nodeBlocks struct {
	*rpchttp.HTTP
	call *jsonrpcclient.Client
}

func newNodeBlocks(rpc *rpchttp.HTTP, remote string) (nodeBlocks, error) {
	call, err := jsonrpcclient.New(remote)
	if err != nil {
		return nodeBlocks{}, fmt.Errorf("chain rpc %s: %w", remote, err)
	}
	return nodeBlocks{HTTP: rpc, call: call}, nil
}

// blockResultsJSON is the part of block_results the watcher reads.
type blockResultsJSON struct {
	Height     int64 `json:"height,string"`
	TxsResults []struct {
		// A pointer: a result without a code is refused, never taken for
		// a success whose events (a lease closed, a payment made) the
		// daemon would act on.
		Code   *uint32     `json:"code"`
		Events []eventJSON `json:"events"`
	} `json:"txs_results"`
	FinalizeBlockEvents []eventJSON `json:"finalize_block_events"`
}

type eventJSON struct {
	Type       string `json:"type"`
	Attributes []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
		Index bool   `json:"index"`
	} `json:"attributes"`
}

func (e eventJSON) event() abci.Event {
	ev := abci.Event{Type: e.Type}
	if len(e.Attributes) > 0 {
		ev.Attributes = make([]abci.EventAttribute, len(e.Attributes))
		for i, a := range e.Attributes {
			ev.Attributes[i] = abci.EventAttribute{Key: a.Key, Value: a.Value, Index: a.Index}
		}
	}
	return ev
}

func events(in []eventJSON) []abci.Event {
	if len(in) == 0 {
		return nil
	}
	out := make([]abci.Event, len(in))
	for i, e := range in {
		out[i] = e.event()
	}
	return out
}

// BlockResults reads the results of block height.
func (n nodeBlocks) BlockResults(ctx context.Context, height *int64) (*ctypes.ResultBlockResults, error) {
	var raw json.RawMessage
	if _, err := n.call.Call(ctx, "block_results", map[string]any{"height": height}, &raw); err != nil {
		return nil, err
	}
	res, err := decodeBlockResults(raw)
	if err == nil && height != nil && res.Height != *height {
		err = fmt.Errorf("block_results: asked for block %d, the node answered for %d", *height, res.Height)
	}
	return res, err
}

func decodeBlockResults(raw []byte) (*ctypes.ResultBlockResults, error) {
	var r blockResultsJSON
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("block_results: %w", err)
	}
	res := &ctypes.ResultBlockResults{Height: r.Height, FinalizeBlockEvents: events(r.FinalizeBlockEvents)}
	if len(r.TxsResults) > 0 {
		res.TxsResults = make([]*abci.ExecTxResult, len(r.TxsResults))
		for i, tx := range r.TxsResults {
			if tx.Code == nil {
				return nil, fmt.Errorf("block_results %d: transaction %d has no result code", r.Height, i)
			}
			res.TxsResults[i] = &abci.ExecTxResult{Code: *tx.Code, Events: events(tx.Events)}
		}
	}
	return res, nil
}
