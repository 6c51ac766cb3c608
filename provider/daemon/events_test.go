package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	sdkmath "cosmossdk.io/math"
	abci "github.com/cometbft/cometbft/abci/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	dto "github.com/prometheus/client_model/go"

	"github.com/gpunet/gpunet/provider/chain"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
)

func withdrawn(t *testing.T, provider string, net sdkmath.Int) abci.Event {
	t.Helper()
	ev, err := sdk.TypedEventToEvent(&escrowtypes.EventPaymentWithdrawn{
		Id:  escrowtypes.PaymentID{Gseq: 1, Oseq: 1, Provider: provider},
		Net: sdk.NewCoin("ugpn", net), Gross: sdk.NewCoin("ugpn", net), Take: sdk.NewCoin("ugpn", sdkmath.ZeroInt()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return abci.Event(ev)
}

// Earnings count only this provider's payouts, and an amount beyond int64
// does not panic. An event the daemon acts on that does not decode is
// logged, not skipped silently; other events are none of its business.
func TestHandleBlockEarningsAndUndecodableEvents(t *testing.T) {
	var logs bytes.Buffer
	d := &Daemon{provider: "gpunet1me", metrics: newMetrics(), log: slog.New(slog.NewTextHandler(&logs, nil)), chain: newFakeChain()}
	huge, _ := sdkmath.NewIntFromString("100000000000000000000") // 1e20 > max int64
	b := chain.Block{Height: 7, Events: []abci.Event{
		withdrawn(t, "gpunet1me", sdkmath.NewInt(4_900)),
		withdrawn(t, "gpunet1other", sdkmath.NewInt(1_000_000)),
		withdrawn(t, "gpunet1me", huge),
		{Type: "gpunet.escrow.v1.EventPaymentWithdrawn", Attributes: []abci.EventAttribute{{Key: "net", Value: "not json"}}},
		{Type: "gpunet.market.v1.EventSomethingNew", Attributes: []abci.EventAttribute{{Key: "x", Value: "1"}}},
	}}
	if err := d.handleBlock(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := d.metrics.earnings.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got, want := m.GetCounter().GetValue(), 4_900+1e20; got != want {
		t.Errorf("earnings %v, want %v (this provider's payouts only)", got, want)
	}
	if n := strings.Count(logs.String(), "cannot decode a chain event"); n != 1 {
		t.Errorf("%d decode errors logged, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "EventSomethingNew") {
		t.Errorf("an event the daemon does not act on was logged:\n%s", logs.String())
	}
}
