package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/leaseauth"
)

// revocations are the moments up to which owners revoked their browser
// session grants (leaseauth.Grant), kept across restarts: a revoked grant
// must not come back with the daemon.
type revocations struct {
	file    string
	mu      sync.Mutex
	byOwner map[string]int64 // unix seconds
}

func loadRevocations(dir string) (*revocations, error) {
	r := &revocations{file: filepath.Join(dir, "grant-revocations.json"), byOwner: map[string]int64{}}
	raw, err := os.ReadFile(r.file)
	if os.IsNotExist(err) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &r.byOwner); err != nil {
		return nil, fmt.Errorf("%s: %w", r.file, err)
	}
	return r, nil
}

// before is leaseauth.Verifier.RevokedBefore.
func (r *revocations) before(owner string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byOwner[owner]
}

// revoke revokes every grant of owner issued up to now, and up to skew
// ahead (a grant may say it was issued that far in the future). Entries
// older than a grant can live are dropped: every grant they revoke has
// expired.
func (r *revocations) revoke(owner string, now time.Time, skew time.Duration) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := now.Add(skew).Unix()
	if at < r.byOwner[owner] {
		at = r.byOwner[owner]
	}
	r.byOwner[owner] = at
	horizon := now.Add(-leaseauth.MaxGrantLifetime).Unix()
	for o, t := range r.byOwner {
		if t < horizon {
			delete(r.byOwner, o)
		}
	}
	raw, err := json.MarshalIndent(r.byOwner, "", "  ")
	if err != nil {
		return 0, err
	}
	return at, chain.WriteFileAtomic(r.file, raw)
}

// handleRevokeGrants revokes the owner's browser sessions on this
// provider: every grant issued up to now stops working at once.
func (d *Daemon) handleRevokeGrants(w http.ResponseWriter, r *http.Request, _ []byte) {
	owner := r.PathValue("owner")
	at, err := d.revoked.revoke(owner, time.Now(), d.cfg.API.MaxClockSkew.D())
	if err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("revocation not saved: %v", err))
		return
	}
	d.log.Info("session grants revoked", "owner", owner, "issued_up_to", at)
	writeJSON(w, http.StatusOK, api.GrantsRevoked{RevokedBefore: at})
}
