package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpunet/gpunet/testutil/localnet"
)

// TestLowestBidWins runs an auction between the real daemon and a second
// provider that bids by hand: the cheaper bid wins. (What happens when a
// winner never starts or walks away is in adversarial_test.go.)
func TestLowestBidWins(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	node := nw.Nodes[0]
	txFlags := []string{"--from", "validator", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID, "--gas", "400000", "--fees", "10000ugpn", "--yes", "--output", "json"}
	var res txResponse
	cli(t, nw, node, &res, append([]string{"tx", "provider", "register", filepath.Join(repoRoot(), "examples", "provider.yaml"), "--bond", "600000000ugpn"}, txFlags...)...)
	if res = waitTx(t, nw, node, res.TxHash); res.Code != 0 {
		t.Fatalf("register rival: %s", res.RawLog)
	}

	// rivalBids bids price on the tenant's next open order as soon as it appears.
	rivalBids := func(price string) <-chan error {
		done := make(chan error, 1)
		go func() {
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				var orders struct {
					Orders []struct {
						ID struct {
							Owner string `json:"owner"`
							Dseq  string `json:"dseq"`
							Gseq  int    `json:"gseq"`
							Oseq  int    `json:"oseq"`
						} `json:"id"`
					} `json:"orders"`
				}
				out, err := nw.CLI(context.Background(), "query", "market", "open-orders", "--output", "json")
				if err == nil && json.Unmarshal([]byte(localnet.LastJSON(out)), &orders) == nil && len(orders.Orders) > 0 {
					id := orders.Orders[0].ID
					out, err := nw.CLI(context.Background(), append([]string{"tx", "market", "create-bid", id.Owner, id.Dseq,
						fmt.Sprint(id.Gseq), fmt.Sprint(id.Oseq), price, "--deposit", "1000000ugpn"}, txFlags...)...)
					if err == nil && strings.Contains(out, `"code":0`) {
						done <- nil
					} else {
						done <- fmt.Errorf("rival bid: %v %s", err, out)
					}
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			done <- fmt.Errorf("no open order appeared")
		}()
		return done
	}

	t.Run("the daemon's cheaper bid wins", func(t *testing.T) {
		bid := rivalBids("50000ugpn")
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
