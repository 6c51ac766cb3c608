package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/gpunet/gpunet/provider/bidengine"
	"github.com/gpunet/gpunet/provider/chain"
)

// store keeps what must survive a restart besides the chain and Docker:
// the reservations (which GPUs each bid or lease holds) and the manifests
// tenants sent. Every write is atomic.
type store struct {
	dir string

	// The reservations' writes: asked is how many saves were asked for,
	// written how many of those a finished write covers.
	mu      sync.Mutex
	changed *sync.Cond
	asked   uint64
	written uint64
	writing bool
}

func newStore(dir string) (*store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "manifests")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s := &store{dir: dir}
	s.changed = sync.NewCond(&s.mu)
	return s, nil
}

func (s *store) reservationsFile() string { return filepath.Join(s.dir, "reservations.json") }

// saveReservations writes the reservations current returns, and returns
// once a write that began after the call has finished (a bid is sent after
// the write of the reservation it holds). Calls made while a write is
// under way share the next one, so a burst of bids costs a few writes
// rather than one each; and every write reads current as it begins, so the
// file never goes back to a state older than one already written, as it
// could when each caller wrote the list it had read before waiting its
// turn.
func (s *store) saveReservations(current func() []bidengine.Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	mine := s.asked
	for s.written < mine {
		if s.writing {
			s.changed.Wait()
			continue
		}
		s.writing = true
		covers := s.asked // every save asked so far: their changes are in current
		s.mu.Unlock()
		err := writeReservations(s.reservationsFile(), current())
		s.mu.Lock()
		s.writing = false
		if err == nil {
			s.written = covers
		}
		s.changed.Broadcast()
		if err != nil {
			return err // the others waiting try a write of their own
		}
	}
	return nil
}

func writeReservations(file string, rs []bidengine.Reservation) error {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Key < rs[j].Key })
	raw, err := json.Marshal(rs) // rewritten on every bid: no indentation
	if err != nil {
		return err
	}
	return chain.WriteFileAtomic(file, raw)
}

func (s *store) loadReservations() ([]bidengine.Reservation, error) {
	raw, err := os.ReadFile(s.reservationsFile())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []bidengine.Reservation
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("%s: %w", s.reservationsFile(), err)
	}
	return rs, nil
}

// deploymentKey is "owner/dseq".
func manifestFile(dir, deployment string) string {
	return filepath.Join(dir, "manifests", strings.ReplaceAll(deployment, "/", "_")+".json")
}

func (s *store) saveManifest(deployment string, raw []byte) error {
	return chain.WriteFileAtomic(manifestFile(s.dir, deployment), raw)
}

func (s *store) loadManifest(deployment string) ([]byte, error) {
	raw, err := os.ReadFile(manifestFile(s.dir, deployment))
	if os.IsNotExist(err) {
		return nil, nil
	}
	return raw, err
}

func (s *store) deleteManifest(deployment string) error {
	err := os.Remove(manifestFile(s.dir, deployment))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
