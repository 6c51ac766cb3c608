package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpunet/gpunet/testutil/localnet"
)

var (
	rehearsalOnce             sync.Once
	rehearsalNext, cosmovisor string
	rehearsalErr              error
)

// rehearsalBinaries builds the "next" gpunetd (with the upgradetest tag:
// the v2-rehearsal upgrade and x/market's rehearsal migration 5 → 6) and cosmovisor
// from its tools module.
func rehearsalBinaries(t *testing.T) (next, cv string) {
	t.Helper()
	rehearsalOnce.Do(func() {
		dir, err := filepath.Abs(filepath.Join(repoRoot(), "build", "rehearsal"))
		if err != nil {
			rehearsalErr = err
			return
		}
		rehearsalNext, cosmovisor = filepath.Join(dir, "gpunetd"), filepath.Join(dir, "cosmovisor")
		for _, b := range [][]string{
			{"go", "build", "-tags", "upgradetest", "-o", rehearsalNext, "./cmd/gpunetd"},
			{"go", "build", "-C", "tools/cosmovisor", "-o", cosmovisor, "cosmossdk.io/tools/cosmovisor/cmd/cosmovisor"},
		} {
			cmd := exec.Command(b[0], b[1:]...)
			cmd.Dir = repoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				rehearsalErr = err
				t.Logf("%v: %s", b, out)
				return
			}
		}
	})
	if rehearsalErr != nil {
		t.Fatalf("build the rehearsal binaries: %v", rehearsalErr)
	}
	return rehearsalNext, cosmovisor
}

// TestUpgradeByGovernanceKeepsLeasesRunning rehearses a software upgrade
// on two validators run by cosmovisor while a lease runs: a proposal for
// v2-rehearsal passes by vote, both nodes halt at its height, cosmovisor
// switches them to the next binary, which runs x/market's migration (a new
// default for max_bids_per_order, visible in a query), and the chain goes
// on. The lease's container never stops, the provider is paid for it from
// the upgraded chain, and the escrow and market module accounts still hold
// exactly what their records say.
func TestUpgradeByGovernanceKeepsLeasesRunning(t *testing.T) {
	ensureWorkloadImage(t)
	next, cv := rehearsalBinaries(t)
	nw := startNetworkEdited(t, localnet.Options{Validators: 2, Cosmovisor: cv, Upgrades: map[string]string{"v2-rehearsal": next}}, func(c *localnet.Config) {
		gov := c.Genesis["app_state"].(map[string]any)["gov"].(map[string]any)["params"].(map[string]any)
		gov["voting_period"], gov["expedited_voting_period"] = "8s", "4s"
	})
	ctx := context.Background()
	chain := newChainReader(t, nw.Nodes[0])
	startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000"})
	tenant := nw.Keys["tenant"]
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	container := serviceContainer(t, tenant, res.DSeq, "app")
	maxBids := func() string {
		out, err := nw.CLI(ctx, "query", "market", "params", "--output", "json")
		if err != nil {
			t.Fatalf("query market params: %v\n%s", err, out)
		}
		var p struct {
			Params struct {
				MaxBidsPerOrder json.Number `json:"max_bids_per_order"`
			} `json:"params"`
		}
		if err := json.Unmarshal([]byte(localnet.LastJSON(out)), &p); err != nil {
			t.Fatalf("market params: %v\n%s", err, out)
		}
		return p.Params.MaxBidsPerOrder.String()
	}
	if got := maxBids(); got != "20" {
		t.Fatalf("max_bids_per_order before the upgrade: %s", got)
	}

	// The proposal, voted yes by both validators.
	height := chain.height() + 25
	tx := func(from string, args ...string) {
		t.Helper()
		out, err := nw.CLI(ctx, append(args, "--from", from, "--keyring-backend", "test", "--chain-id", nw.Config.ChainID, "--fees", "20000ugpn", "--gas", "400000", "--yes", "--output", "json")...)
		if err != nil || strings.Contains(out, `"code":`) && !strings.Contains(out, `"code":0`) {
			t.Fatalf("%v from %s: %v\n%s", args, from, err, out)
		}
		time.Sleep(2500 * time.Millisecond) // into a block before the next tx of the account
	}
	tx("validator", "tx", "upgrade", "software-upgrade", "v2-rehearsal", "--upgrade-height", strconv.FormatInt(height, 10),
		"--title", "rehearsal", "--summary", "rehearse an upgrade", "--deposit", "10000000ugpn", "--no-validate")
	tx("validator", "tx", "gov", "vote", "1", "yes")
	tx("validator1", "tx", "gov", "vote", "1", "yes")

	// Both nodes halt at the height and come back on the next binary.
	if err := nw.WaitForHeight(ctx, height+5, 3*time.Minute); err != nil {
		t.Fatalf("the chain did not go on past the upgrade height %d: %v", height, err)
	}
	for _, n := range nw.Nodes {
		if h, err := n.Height(ctx); err != nil || h < height+3 {
			t.Fatalf("%s at height %d after the upgrade (err %v)", n.Moniker, h, err)
		}
		cur, err := filepath.EvalSymlinks(filepath.Join(n.Home, "cosmovisor", "current"))
		if err != nil || filepath.Base(cur) != "v2-rehearsal" {
			t.Fatalf("%s runs %q, not the upgrade's binary (%v)", n.Moniker, cur, err)
		}
	}
	if got := maxBids(); got != "32" {
		t.Fatalf("max_bids_per_order after the upgrade: %s, want the migration's 32", got)
	}

	// The lease went through it: same container, paid from the new chain.
	if c := serviceContainer(t, tenant, res.DSeq, "app"); c.ID != container.ID || c.State.Status != "running" {
		t.Fatalf("the lease's container after the upgrade: %s %s", c.ID, c.State.Status)
	}
	waitPaid(t, chain, tenant, res.DSeq, height+1, "after the upgrade")
	if !strings.Contains(leaseStatusText(t, nw, res.DSeq), "state active") {
		t.Fatal("the lease is not active after the upgrade")
	}
	// The escrow module holds exactly the account's balance and the
	// payment's unwithdrawn accrual, read at one height after the upgrade.
	h := chain.height()
	at := func(args ...string) map[string]any {
		out, err := nw.CLI(ctx, append(append([]string{"query", "escrow"}, args...), "--height", strconv.FormatInt(h, 10), "--output", "json")...)
		if err != nil {
			t.Fatalf("query escrow %v: %v\n%s", args, err, out)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(localnet.LastJSON(out)), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	num := func(v any) int64 { n, _ := strconv.ParseInt(v.(string), 10, 64); return n }
	acc := at("account", tenant, strconv.FormatUint(res.DSeq, 10))["account"].(map[string]any)
	owed := num(acc["balance"])
	for _, p := range at("payments", tenant, strconv.FormatUint(res.DSeq, 10))["payments"].([]any) {
		pm := p.(map[string]any)
		owed += num(pm["accrued"]) - num(pm["withdrawn"])
	}
	if held := chain.balanceAt(moduleAddress(t, nw, "escrow"), h); held != owed || num(acc["deposited"]) != 50_000_000 {
		t.Fatalf("after the upgrade the escrow module holds %d, its records %d (deposited %v)", held, owed, acc["deposited"])
	}
	// The market module holds the lease's bid deposit, and nothing else:
	// the auction is over.
	out, err = nw.CLI(ctx, "query", "market", "deployment", tenant, strconv.FormatUint(res.DSeq, 10), "--height", strconv.FormatInt(h, 10), "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var dep struct {
		Leases []struct {
			BidDeposit struct {
				Amount string `json:"amount"`
			} `json:"bid_deposit"`
		} `json:"leases"`
	}
	if err := json.Unmarshal([]byte(localnet.LastJSON(out)), &dep); err != nil || len(dep.Leases) != 1 {
		t.Fatalf("deployment after the upgrade: %v\n%s", err, out)
	}
	if held := chain.balanceAt(moduleAddress(t, nw, "market"), h); held != num(dep.Leases[0].BidDeposit.Amount) {
		t.Fatalf("after the upgrade the market module holds %d, the lease's bid deposit is %s", held, dep.Leases[0].BidDeposit.Amount)
	}
}
