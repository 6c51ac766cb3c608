package daemon

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gpunet/gpunet/provider/bidengine"
)

// TestSaveReservationsSharesWritesAndNeverGoesBack: twenty bids reserve at
// once and each saves the reservations before it is sent. Each save
// returns only once the file holds that bid's reservation; saves made while
// a write is under way share the next write; and no write puts back a list
// older than one already written (each caller used to write the list it
// had read before waiting for the file, so a slow caller could overwrite a
// newer list and lose a reservation a bid on chain holds).
func TestSaveReservationsSharesWritesAndNeverGoesBack(t *testing.T) {
	s, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		held    int   // reservations made so far: o/1 … o/held
		written []int // how many each write held, in order
	)
	current := func() []bidengine.Reservation {
		mu.Lock()
		n := held
		written = append(written, n)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // a write takes a while: saves pile up behind it
		rs := make([]bidengine.Reservation, n)
		for i := range rs {
			rs[i].Key = fmt.Sprintf("o/%03d", i+1)
		}
		return rs
	}
	const bids = 20
	var wg sync.WaitGroup
	for range bids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			held++
			mine := held
			mu.Unlock()
			if err := s.saveReservations(current); err != nil {
				t.Error(err)
				return
			}
			saved, err := s.loadReservations()
			if err != nil {
				t.Error(err)
				return
			}
			if len(saved) < mine {
				t.Errorf("save of reservation %d returned with %d on disk", mine, len(saved))
			}
		}()
	}
	wg.Wait()
	saved, err := s.loadReservations()
	if err != nil || len(saved) != bids || saved[bids-1].Key != fmt.Sprintf("o/%03d", bids) {
		t.Fatalf("on disk at the end: %d reservations, %v; want %d", len(saved), err, bids)
	}
	for i := 1; i < len(written); i++ {
		if written[i] < written[i-1] {
			t.Errorf("writes held %v: a write went back to an older list", written)
		}
	}
	if len(written) >= bids {
		t.Errorf("%d writes for %d saves made at once; want them shared", len(written), bids)
	}
	t.Logf("%d saves, %d writes: %v", bids, len(written), written)
}
