package types

import (
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/internal/abcievent"
)

// ABCIEvent implements abcievent.Fast: the event of every new escrow
// account, built without reflection; TestFastEventsMatchTypedEvents holds
// it equal to sdk.TypedEventToEvent's.
func (e *EventAccountCreated) ABCIEvent() sdk.Event {
	var id abcievent.Object
	id.String("owner", e.Id.Owner).Uint64("dseq", e.Id.Dseq)
	return abcievent.New("gpunet.escrow.v1.EventAccountCreated", 2).
		Raw("id", id.JSON()).Raw("deposit", abcievent.Coin(e.Deposit)).Done()
}
