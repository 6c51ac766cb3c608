package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/gpunet/gpunet/testutil/localnet"
)

// TestStateSyncJoinsWhileLeasesRun: a fifth node joins the running
// four-validator network the way an operator's would (`gpunetd init`, then
// `gpunetd join` against two validators' RPCs) while a lease runs. It
// starts from a state-sync snapshot, not from block 1, reaches the same
// app hash as the validators, and serves the lease's deployment. A sixth
// joins with --block-sync and replays from block 1 to the same hash.
func TestStateSyncJoinsWhileLeasesRun(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetworkEdited(t, localnet.Options{Validators: 4}, func(c *localnet.Config) {
		c.StateSync = localnet.StateSync{SnapshotInterval: 10, SnapshotKeepRecent: 3}
	})
	ctx := context.Background()
	startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000"})
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	// Snapshots at heights 10 and 20 at least.
	if err := nw.WaitForHeight(ctx, 25, 120*time.Second); err != nil {
		t.Fatal(err)
	}
	joiner, err := nw.AddNode(ctx, false)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if err := nw.StartNode(joiner, false); err != nil {
		t.Fatal(err)
	}
	head, err := nw.Nodes[0].Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target := head + 3
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(time.Second) {
		if h, err := joiner.Height(ctx); err == nil && h >= target {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the joining node did not reach height %d within 2 minutes", target)
		}
	}
	rpc := func(n *localnet.Node) *rpchttp.HTTP {
		c, err := rpchttp.New(n.RPCURL(), "/websocket")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	st, err := rpc(joiner).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SyncInfo.EarliestBlockHeight <= 1 {
		t.Fatalf("the joining node holds blocks from %d: it replayed from genesis instead of state sync", st.SyncInfo.EarliestBlockHeight)
	}
	a, err := rpc(nw.Nodes[0]).Block(ctx, &target)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rpc(joiner).Block(ctx, &target)
	if err != nil {
		t.Fatal(err)
	}
	if a.Block.AppHash.String() != b.Block.AppHash.String() {
		t.Fatalf("app hash at %d: validator %s, joined node %s", target, a.Block.AppHash, b.Block.AppHash)
	}
	q, err := nw.CLI(ctx, "query", "market", "deployment", nw.Keys["tenant"], strconv.FormatUint(res.DSeq, 10), "--node", joiner.RPCAddr(), "--output", "json")
	if err != nil || !strings.Contains(q, "LEASE_STATE_ACTIVE") {
		t.Fatalf("the joined node's view of the lease: %v\n%s", err, q)
	}
	t.Logf("joined from a snapshot: earliest block %d, same app hash %s at height %d", st.SyncInfo.EarliestBlockHeight, b.Block.AppHash, target)

	// A sixth node joins by block sync instead: every block from genesis,
	// replayed to the same app hash.
	replayer, err := nw.AddNode(ctx, true)
	if err != nil {
		t.Fatalf("join by block sync: %v", err)
	}
	if err := nw.StartNode(replayer, false); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(time.Second) {
		if h, err := replayer.Height(ctx); err == nil && h >= target {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the block-sync node did not reach height %d within 2 minutes", target)
		}
	}
	rst, err := rpc(replayer).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rst.SyncInfo.EarliestBlockHeight != 1 {
		t.Fatalf("the block-sync node holds blocks from %d, want 1", rst.SyncInfo.EarliestBlockHeight)
	}
	c, err := rpc(replayer).Block(ctx, &target)
	if err != nil {
		t.Fatal(err)
	}
	if c.Block.AppHash.String() != a.Block.AppHash.String() {
		t.Fatalf("block-sync node's app hash at %d: %s, validators' %s", target, c.Block.AppHash, a.Block.AppHash)
	}
}
