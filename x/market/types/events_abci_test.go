package types_test

import (
	"math"
	"reflect"
	"testing"

	sdkmath "cosmossdk.io/math"
	abci "github.com/cometbft/cometbft/abci/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/gogoproto/proto"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/abcievent"
	"github.com/gpunet/gpunet/x/market/types"
)

// The hot-path events built without reflection are TypedEventToEvent's,
// attribute for attribute, for ordinary values, zero values, the largest
// numbers and strings JSON must escape, and they parse back to the event.
func TestFastEventsMatchTypedEvents(t *testing.T) {
	odd := "gpunet1<a>&\"b\"\\\n\u2028é\xff"
	ids := []types.OrderID{
		{Owner: "gpunet1tenant", Dseq: 120010, Gseq: 1, Oseq: 1},
		{},
		{Owner: odd, Dseq: math.MaxUint64, Gseq: math.MaxUint32, Oseq: math.MaxUint32},
	}
	var events []proto.Message
	for _, id := range ids {
		events = append(events,
			&types.EventDeploymentCreated{Owner: id.Owner, Dseq: id.Dseq, ManifestHash: []byte{0, 1, 2, 0xfb, 0xff}},
			&types.EventDeploymentCreated{},
			&types.EventOrderCreated{Id: id, BidClosesAt: 1_000_007, Reauction: true},
			&types.EventOrderCreated{Id: id, BidClosesAt: math.MinInt64},
			&types.EventBidCreated{Id: types.BidID{Order: id, Provider: "gpunet1provider"}, Price: sdk.NewDecCoinFromDec("ugpn", sdkmath.LegacyMustNewDecFromStr("1068.75"))},
			&types.EventBidCreated{Id: types.BidID{Order: id, Provider: odd}},
			&escrowtypes.EventAccountCreated{Id: escrowtypes.AccountID{Owner: id.Owner, Dseq: id.Dseq}, Deposit: sdk.NewInt64Coin("ugpn", 5_000_000)},
			&escrowtypes.EventAccountCreated{},
		)
	}
	for _, ev := range events {
		fast, ok := ev.(abcievent.Fast)
		if !ok {
			t.Fatalf("%T has no fast event", ev)
		}
		want, err := sdk.TypedEventToEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		got := fast.ABCIEvent()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T %v:\n got %v\nwant %v", ev, ev, got, want)
			continue
		}
		back, err := sdk.ParseTypedEvent(abci.Event(got))
		if err != nil {
			t.Fatalf("%T: %v", ev, err)
		}
		// Compared as text: proto.Equal looks into math types' internals.
		if proto.CompactTextString(back) != proto.CompactTextString(ev) && !invalidUTF8(ev) {
			t.Errorf("%T parses back as %v, want %v", ev, back, ev)
		}
	}
}

// invalidUTF8 events do not survive JSON (the byte becomes U+FFFD) either way.
func invalidUTF8(ev proto.Message) bool {
	return reflect.ValueOf(ev).Elem().NumField() > 0 && containsFF(proto.CompactTextString(ev))
}

func containsFF(s string) bool {
	for i := 0; i < len(s)-2; i++ {
		if s[i:i+3] == `\37` {
			return true
		}
	}
	return false
}
