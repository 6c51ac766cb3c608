package e2e

import (
	"path/filepath"
	"testing"
)

// TestLowestBidWins runs an auction between the real daemon and a second
// provider that bids by hand: the cheaper bid wins. (What happens when a
// winner never starts or walks away is in adversarial_test.go.)
func TestLowestBidWins(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	txAs(t, nw, "validator", "tx", "provider", "register", filepath.Join(repoRoot(), "examples", "provider.yaml"), "--bond", "600000000ugpn")

	t.Run("the daemon's cheaper bid wins", func(t *testing.T) {
		bid := bidWhenOpen(t, nw, "validator", "50000ugpn")
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--bid-window", "5", "--follow")
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		if err := <-bid; err != nil {
			t.Fatal(err)
		}
		if len(res.Bids) != 2 || len(res.Leases) != 1 || res.Leases[0].Provider != prov.addr || res.Leases[0].Price != cpuJobPrice {
			t.Fatalf("bids %+v leases %+v", res.Bids, res.Leases)
		}
		if len(res.Closed) != 1 || res.Closed[0].Reason != "workload_completed" {
			t.Fatalf("closed %+v", res.Closed)
		}
	})
}
