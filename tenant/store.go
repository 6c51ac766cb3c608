package tenant

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gpunet/gpunet/internal/atomicfile"
	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
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
	raw, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path(d.Owner, d.DSeq), raw)
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

func (s Store) receiptsPath(owner string, dseq uint64) string {
	return filepath.Join(s.Dir, fmt.Sprintf("%s-%d.receipts.json", owner, dseq))
}

// SaveReceipts keeps the providers' manifest receipts of a deployment, one
// per lease (a newer receipt for the same lease replaces the older): the
// proof `gpunetd lease dispute` shows the chain when a provider closes a
// lease as manifest_missing after all.
func (s Store) SaveReceipts(owner string, dseq uint64, rs []api.Receipt) error {
	if len(rs) == 0 {
		return nil
	}
	all, err := s.LoadReceipts(owner, dseq)
	if err != nil {
		return err
	}
	for _, r := range rs {
		replaced := false
		for i, old := range all {
			if old.GSeq == r.GSeq && old.OSeq == r.OSeq && old.Provider == r.Provider {
				all[i], replaced = r, true
			}
		}
		if !replaced {
			all = append(all, r)
		}
	}
	raw, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	// The receipts are the tenant's proof in a dispute: on disk whole
	// once kept, power loss or not.
	return atomicfile.Write(s.receiptsPath(owner, dseq), raw)
}

// LoadReceipts reads a deployment's kept receipts (none is no error).
func (s Store) LoadReceipts(owner string, dseq uint64) ([]api.Receipt, error) {
	raw, err := os.ReadFile(s.receiptsPath(owner, dseq))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []api.Receipt
	if err := json.Unmarshal(raw, &rs); err != nil {
		return nil, fmt.Errorf("%s: %w", s.receiptsPath(owner, dseq), err)
	}
	return rs, nil
}

// ReceiptMsg turns a kept receipt into the chain's form.
func ReceiptMsg(r api.Receipt) (markettypes.ManifestReceipt, error) {
	hash, err := hex.DecodeString(r.ManifestHash)
	if err != nil {
		return markettypes.ManifestReceipt{}, fmt.Errorf("receipt manifest hash %q: %w", r.ManifestHash, err)
	}
	return markettypes.ManifestReceipt{
		Lease:        markettypes.BidID{Order: markettypes.OrderID{Owner: r.Owner, Dseq: r.DSeq, Gseq: r.GSeq, Oseq: r.OSeq}, Provider: r.Provider},
		ManifestHash: hash, IssuedAt: r.IssuedAt, Signature: r.Signature,
	}, nil
}
