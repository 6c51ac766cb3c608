package tenant

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gpunet/gpunet/sdl"
)

// Saved is a deployment the tenant created from this machine.
type Saved struct {
	Owner     string       `json:"owner"`
	DSeq      uint64       `json:"dseq"`
	SDLFile   string       `json:"sdl_file"`
	Hash      string       `json:"manifest_hash"`
	Manifest  sdl.Manifest `json:"manifest"`
	CreatedAt time.Time    `json:"created_at"`
	Height    int64        `json:"height"`
}

// Store keeps manifests under <gpunetd home>/deployments, one file per
// deployment, so send-manifest and status need only the dseq.
type Store struct{ Dir string }

// NewStore returns the store under home.
func NewStore(home string) Store { return Store{Dir: filepath.Join(home, "deployments")} }

func (s Store) path(owner string, dseq uint64) string {
	return filepath.Join(s.Dir, fmt.Sprintf("%s-%d.json", owner, dseq))
}

// Save writes a deployment's record.
func (s Store) Save(d Saved) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path(d.Owner, d.DSeq) + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path(d.Owner, d.DSeq))
}

// Load reads a deployment's record.
func (s Store) Load(owner string, dseq uint64) (Saved, error) {
	var d Saved
	raw, err := os.ReadFile(s.path(owner, dseq))
	if os.IsNotExist(err) {
		return d, fmt.Errorf("no local manifest for deployment %d of %s (looked in %s); was it deployed from this machine and home?", dseq, owner, s.Dir)
	}
	if err != nil {
		return d, err
	}
	return d, json.Unmarshal(raw, &d)
}
