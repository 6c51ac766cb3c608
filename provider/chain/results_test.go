package chain

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"testing"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
)

// rpcNode answers block_results with a real node's answer for that
// height from testdata, echoing the request's id as JSON-RPC requires.
func rpcNode(t *testing.T) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Height string `json:"height"`
			} `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Method != "block_results" {
			http.Error(w, fmt.Sprintf("want a block_results call: %v", err), http.StatusBadRequest)
			return
		}
		raw, err := os.ReadFile(fmt.Sprintf("testdata/block_results_%s.json", req.Params.Height))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		var saved struct {
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(raw, &saved); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": saved.Result})
	}))
}

// The watcher reads block results with its own lean decoder; the block
// it hands on must be the one CometBFT's RPC client decodes from the same
// answer of a real node: the same height and events, in order, with a
// failed transaction's events left out.
func TestBlockResultsDecodeAsCometBFTs(t *testing.T) {
	srv := rpcNode(t)
	defer srv.Close()
	full, err := rpchttp.New(srv.URL, "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	lean, err := newNodeBlocks(full, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, h := range []int64{5, 6} {
		want, err := full.BlockResults(ctx, &h)
		if err != nil {
			t.Fatalf("block %d, CometBFT's client: %v", h, err)
		}
		got, err := lean.BlockResults(ctx, &h)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		gb, wb := blockFromResults(got), blockFromResults(want)
		if gb.Height != h || len(gb.Events) == 0 {
			t.Fatalf("block %d: height %d with %d events", h, gb.Height, len(gb.Events))
		}
		if !reflect.DeepEqual(gb, wb) {
			t.Fatalf("block %d differs from CometBFT's decoding:\n got %+v\nwant %+v", h, gb, wb)
		}
		for i, tx := range want.TxsResults {
			if got.TxsResults[i].Code != tx.Code {
				t.Fatalf("block %d tx %d: code %d, want %d", h, i, got.TxsResults[i].Code, tx.Code)
			}
		}
	}
	h := int64(6)
	res, err := lean.BlockResults(ctx, &h)
	if err != nil {
		t.Fatal(err)
	}
	if res.TxsResults[1].Code == 0 || len(blockFromResults(res).Events) >= len(res.FinalizeBlockEvents)+len(res.TxsResults[0].Events)+len(res.TxsResults[1].Events) {
		t.Fatal("the failed transaction's events were handed on")
	}
	if _, err := decodeBlockResults([]byte(`{"height":"x"}`)); err == nil {
		t.Fatal("a malformed answer was decoded")
	}
	// A result without its code is refused, not taken for a success.
	if _, err := decodeBlockResults([]byte(`{"height":"7","txs_results":[{"events":[{"type":"gpunet.market.v1.EventLeaseClosed"}]}]}`)); err == nil {
		t.Fatal("a transaction result without a code was decoded")
	}
}
