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
	mu  sync.Mutex
}

func newStore(dir string) (*store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "manifests")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return &store{dir: dir}, nil
}

func (s *store) reservationsFile() string { return filepath.Join(s.dir, "reservations.json") }

func (s *store) saveReservations(rs []bidengine.Reservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].Key < rs[j].Key })
	raw, err := json.Marshal(rs) // rewritten on every bid: no indentation
	if err != nil {
		return err
	}
	return chain.WriteFileAtomic(s.reservationsFile(), raw)
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
