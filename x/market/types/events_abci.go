package types

import (
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/abcievent"
)

// The events of every deployment, order and bid, built without reflection
// (x/internal/abcievent); TestFastEventsMatchTypedEvents holds them equal
// to sdk.TypedEventToEvent's.

// orderIDJSON is an OrderID as jsonpb writes it.
func orderIDJSON(id OrderID) string {
	var o abcievent.Object
	return o.String("owner", id.Owner).Uint64("dseq", id.Dseq).Uint32("gseq", id.Gseq).Uint32("oseq", id.Oseq).JSON()
}

// bidIDJSON is a BidID as jsonpb writes it.
func bidIDJSON(id BidID) string {
	var o abcievent.Object
	return o.Raw("order", orderIDJSON(id.Order)).String("provider", id.Provider).JSON()
}

// ABCIEvent implements abcievent.Fast.
func (e *EventDeploymentCreated) ABCIEvent() sdk.Event {
	return abcievent.New("gpunet.market.v1.EventDeploymentCreated", 3).
		String("owner", e.Owner).Uint64("dseq", e.Dseq).Bytes("manifest_hash", e.ManifestHash).Done()
}

// ABCIEvent implements abcievent.Fast.
func (e *EventOrderCreated) ABCIEvent() sdk.Event {
	return abcievent.New("gpunet.market.v1.EventOrderCreated", 3).
		Raw("id", orderIDJSON(e.Id)).Int64("bid_closes_at", e.BidClosesAt).Bool("reauction", e.Reauction).Done()
}

// ABCIEvent implements abcievent.Fast.
func (e *EventBidCreated) ABCIEvent() sdk.Event {
	return abcievent.New("gpunet.market.v1.EventBidCreated", 2).
		Raw("id", bidIDJSON(e.Id)).Raw("price", abcievent.DecCoin(e.Price)).Done()
}
