package daemon

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gpunet/gpunet/provider/api"
)

// The lease event log: what happened to each lease on this provider (the
// daemon's steps and the engine's container events), kept for the life of
// the lease in memory and in a file per lease under the data directory,
// so a restarted daemon still tells it.

// maxLeaseEvents is how many events a lease keeps: the newest.
const maxLeaseEvents = 500

type leaseLog struct {
	dir string

	mu       sync.Mutex
	byKey    map[string][]api.LeaseEvent
	follow   map[string]map[chan api.LeaseEvent]struct{}
	finished map[string]time.Time // leases torn down: kept keepFinished for the tenant to read why
	// owners is when a lease of each owner was last torn down: an owner
	// whose only lease closed may still read why for keepFinished.
	owners map[string]time.Time
}

// keepFinished is how long a finished lease's events stay readable.
const keepFinished = time.Hour

func newLeaseLog(dir string) *leaseLog {
	return &leaseLog{dir: dir, byKey: map[string][]api.LeaseEvent{}, follow: map[string]map[chan api.LeaseEvent]struct{}{}, finished: map[string]time.Time{}, owners: map[string]time.Time{}}
}

func (g *leaseLog) file(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(g.dir, hex.EncodeToString(sum[:12])+".jsonl")
}

// load reads a lease's events kept before a restart (once).
func (g *leaseLog) load(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.byKey[key]; ok {
		return
	}
	var evs []api.LeaseEvent
	if f, err := os.Open(g.file(key)); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev api.LeaseEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				evs = append(evs, ev)
			}
		}
		_ = f.Close() // read-only
	}
	if len(evs) > maxLeaseEvents {
		evs = evs[len(evs)-maxLeaseEvents:]
	}
	g.byKey[key] = evs
}

// add records an event of a lease and hands it to whoever follows.
func (g *leaseLog) add(key string, ev api.LeaseEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	g.load(key)
	g.mu.Lock()
	defer g.mu.Unlock()
	evs := append(g.byKey[key], ev)
	rewrite := len(evs) > maxLeaseEvents
	if rewrite {
		evs = append([]api.LeaseEvent(nil), evs[len(evs)-maxLeaseEvents:]...)
	}
	g.byKey[key] = evs
	g.persist(key, evs, rewrite)
	for ch := range g.follow[key] {
		select {
		case ch <- ev:
		default: // a follower that does not keep up misses events, not the daemon
		}
	}
}

// persist appends the newest event to the lease's file, or writes the
// kept events anew when old ones were dropped; the caller holds mu.
func (g *leaseLog) persist(key string, evs []api.LeaseEvent, rewrite bool) {
	if g.dir == "" {
		return
	}
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		return
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	write := evs[len(evs)-1:]
	if rewrite {
		flags, write = os.O_CREATE|os.O_WRONLY|os.O_TRUNC, evs
	}
	f, err := os.OpenFile(g.file(key), flags, 0o600)
	if err != nil {
		return
	}
	enc := json.NewEncoder(f)
	for _, ev := range write {
		if enc.Encode(ev) != nil {
			break
		}
	}
	_ = f.Close() // events are a courtesy to the tenant: a lost line is not worth failing a lease
}

// events returns a lease's events, oldest first.
func (g *leaseLog) events(key string) []api.LeaseEvent {
	g.load(key)
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]api.LeaseEvent(nil), g.byKey[key]...)
}

// subscribe returns the lease's events so far and a channel of the next
// ones; cancel stops it.
func (g *leaseLog) subscribe(key string) ([]api.LeaseEvent, <-chan api.LeaseEvent, func()) {
	g.load(key)
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan api.LeaseEvent, 64)
	if g.follow[key] == nil {
		g.follow[key] = map[chan api.LeaseEvent]struct{}{}
	}
	g.follow[key][ch] = struct{}{}
	past := append([]api.LeaseEvent(nil), g.byKey[key]...)
	return past, ch, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.follow[key], ch)
		if len(g.follow[key]) == 0 {
			delete(g.follow, key)
		}
	}
}

// finish marks a lease torn down: its events stay readable for
// keepFinished, then go, file included. Followers are told it ended.
func (g *leaseLog) finish(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	g.finished[key] = now
	if owner, _, ok := strings.Cut(key, "/"); ok {
		g.owners[owner] = now
	}
	for ch := range g.follow[key] {
		close(ch)
	}
	delete(g.follow, key)
	for k, at := range g.finished {
		if now.Sub(at) > keepFinished {
			delete(g.byKey, k)
			delete(g.finished, k)
			if g.dir != "" {
				_ = os.Remove(g.file(k)) // gone already is fine
			}
		}
	}
	for o, at := range g.owners {
		if now.Sub(at) > keepFinished {
			delete(g.owners, o)
		}
	}
}

// recentOwner reports whether a lease of owner was torn down within
// keepFinished (its events are still kept).
func (g *leaseLog) recentOwner(owner string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.owners[owner]
	return ok && time.Since(at) <= keepFinished
}

// ended reports whether a lease was torn down (ok: its events are still
// kept).
func (g *leaseLog) ended(key string) (ended, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ended := g.finished[key]
	return ended, ended && time.Since(at) <= keepFinished
}
