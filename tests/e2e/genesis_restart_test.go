package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
	"github.com/cosmos/gogoproto/proto"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"

	"github.com/gpunet/gpunet/testutil/localnet"
)

// TestGenesisRestartKeepsLeasesEscrowAndBonds: a chain with a running
// lease is stopped, exported with `gpunetd export`, wiped and started again
// from the export. The deployment, its lease, its escrow account and the
// provider's bond are all there, unchanged; the container never stopped;
// and the provider is paid for the lease from the new chain.
func TestGenesisRestartKeepsLeasesEscrowAndBonds(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	node := nw.Nodes[0]
	ctx := context.Background()
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000"})
	tenant := nw.Keys["tenant"]
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	dseq := strconv.FormatUint(res.DSeq, 10)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(leaseStatusText(t, nw, res.DSeq), "state active"); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("lease not active")
		}
	}
	query := func(args ...string) map[string]any {
		t.Helper()
		out, err := nw.CLI(ctx, append(append([]string{"query"}, args...), "--output", "json")...)
		if err != nil {
			t.Fatalf("query %v: %v\n%s", args, err, out)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(localnet.LastJSON(out)), &v); err != nil {
			t.Fatalf("query %v: %v\n%s", args, err, out)
		}
		return v
	}
	deployment := func() string {
		d := query("market", "deployment", tenant, dseq)
		delete(d, "escrow") // settled to the query's block time
		b, _ := json.Marshal(d)
		return string(b)
	}
	bond := func() string {
		p, _ := query("provider", "provider", prov.addr)["provider"].(map[string]any)
		b, _ := json.Marshal([]any{p["owner"], p["bond"], p["status"], p["host_uri"], p["gpus"]})
		return string(b)
	}
	account := func() (deposited, balance, transferred sdkmath.Int) {
		a := query("escrow", "account", tenant, dseq)["account"].(map[string]any)
		i := func(k string) sdkmath.Int { v, _ := sdkmath.NewIntFromString(a[k].(string)); return v }
		return i("deposited"), i("balance"), i("transferred")
	}
	depBefore, bondBefore := deployment(), bond()
	deposited, _, _ := account()
	container := serviceContainer(t, tenant, res.DSeq, "app")

	if err := nw.StopNode(node); err != nil {
		t.Fatal(err)
	}
	first := restartFromExport(t, nw, node)

	if got := deployment(); got != depBefore {
		t.Fatalf("deployment and leases changed across the restart:\nbefore %s\nafter  %s", depBefore, got)
	}
	if got := bond(); got != bondBefore {
		t.Fatalf("the provider's record and bond changed across the restart:\nbefore %s\nafter  %s", bondBefore, got)
	}
	d, b, tr := account()
	if !d.Equal(deposited) || !b.Add(tr).Equal(d) {
		t.Fatalf("escrow after the restart: deposited %s (was %s), balance %s + transferred %s", d, deposited, b, tr)
	}
	if c := serviceContainer(t, tenant, res.DSeq, "app"); c.ID != container.ID || c.State.Status != "running" {
		t.Fatalf("the lease's container after the restart: %s %s (was %s)", c.ID, c.State.Status, container.ID)
	}
	// The provider's daemon follows the new chain and is paid from it.
	waitPaid(t, newChainReader(t, node), tenant, res.DSeq, first.InitialHeight, "after the restart")
	if !strings.Contains(leaseStatusText(t, nw, res.DSeq), "state active") {
		t.Fatal("the lease is not active on its provider after the restart")
	}
}

// restartFromExport stops node, exports its state with `gpunetd export`,
// wipes its chain data, starts it from the export and waits two blocks.
func restartFromExport(t *testing.T, nw *localnet.Network, node *localnet.Node) genesisFile {
	t.Helper()
	ctx := context.Background()
	if err := nw.StopNode(node); err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(t.TempDir(), "exported.json")
	if _, err := nw.RunBinary(ctx, "export", "--home", node.Home, "--output-document", exported); err != nil {
		t.Fatal(err)
	}
	first := readGenesis(t, exported)
	if first.InitialHeight < 2 {
		t.Fatalf("exported initial_height %d: export did not carry the chain height", first.InitialHeight)
	}
	if _, err := nw.RunBinary(ctx, "comet", "unsafe-reset-all", "--home", node.Home); err != nil {
		t.Fatal(err)
	}
	if err := localnet.CopyFile(exported, filepath.Join(node.Home, "config", "genesis.json")); err != nil {
		t.Fatal(err)
	}
	if err := nw.StartNode(node, false); err != nil {
		t.Fatal(err)
	}
	if err := nw.WaitForHeight(ctx, first.InitialHeight+2, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return first
}

// waitPaid waits (a minute) for a payout of the owner's deployment from
// block from on.
func waitPaid(t *testing.T, chain *chainReader, owner string, dseq uint64, from int64, when string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		bs := chain.blocks(from, chain.height())
		if h, _ := leaseEventHeight(bs, func(m proto.Message) bool {
			e, ok := m.(*escrowtypes.EventPaymentWithdrawn)
			return ok && e.Id.Account.Owner == owner && e.Id.Account.Dseq == dseq && e.Gross.IsPositive()
		}); h > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider was not paid for the lease %s", when)
		}
	}
}
