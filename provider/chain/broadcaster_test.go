package chain

import (
	"testing"

	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
)

func reqs(alone bool, sizes ...int) []request {
	var out []request
	for _, n := range sizes {
		msgs := make([]sdk.Msg, n)
		for i := range msgs {
			msgs[i] = &banktypes.MsgSend{}
		}
		out = append(out, request{msgs: msgs, alone: alone})
	}
	return out
}

func queueOf(rs ...request) chan request {
	q := make(chan request, len(rs))
	for _, r := range rs {
		q <- r
	}
	return q
}

// Queued messages share a transaction up to MaxBatch; a lease start or close
// (alone) never shares one, so a bid failing in the block cannot sink it,
// and it keeps its place in the queue.
func TestTakeBatch(t *testing.T) {
	t.Run("batches what is queued", func(t *testing.T) {
		rs := reqs(false, 1, 2, 3)
		batch, next := takeBatch(rs[0], queueOf(rs[1:]...))
		if len(batch) != 3 || next != nil {
			t.Fatalf("batch %d requests, next %v; want 3, nil", len(batch), next)
		}
	})
	t.Run("stops at MaxBatch messages", func(t *testing.T) {
		rs := reqs(false, MaxBatch-1, 1, 1)
		q := queueOf(rs[1:]...)
		batch, next := takeBatch(rs[0], q)
		if len(batch) != 2 || next != nil || len(q) != 1 {
			t.Fatalf("batch %d, next %v, left %d; want 2, nil, 1", len(batch), next, len(q))
		}
	})
	t.Run("an alone request ends the batch and comes next", func(t *testing.T) {
		bids, start := reqs(false, 1, 1), reqs(true, 1)[0]
		q := queueOf(bids[1], start, reqs(false, 1)[0])
		batch, next := takeBatch(bids[0], q)
		if len(batch) != 2 || next == nil || !next.alone || len(q) != 1 {
			t.Fatalf("batch %d, next %v, left %d; want 2 bids, the start next, 1 left", len(batch), next, len(q))
		}
		batch, next = takeBatch(*next, q)
		if len(batch) != 1 || !batch[0].alone || next != nil || len(q) != 1 {
			t.Fatalf("the start was batched: %d requests", len(batch))
		}
	})
}
