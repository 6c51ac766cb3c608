package chain

import (
	"testing"

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
