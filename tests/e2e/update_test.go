package e2e

import (
	"context"
	"fmt"
	"math/big"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	markettypes "github.com/gpunet/gpunet/x/market/types"

	"github.com/gpunet/gpunet/testutil/localnet"
)

// TestUpdateInPlaceKeepsLeaseVolumeAndBilling: `deploy --update` moves a
// running deployment from v1 to v2 on the same lease: the logs show v2, a
// file on the persistent volume is still there, and the escrow paid the
// lease without a gap or a second charge (one lease, billed for exactly
// the seconds from its start to its close). A v3 that crashes leaves v2
// running and the tenant told why; a file asking for other resources is
// refused by name before anything changes on chain.
func TestUpdateInPlaceKeepsLeaseVolumeAndBilling(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	chain := newChainReader(t, nw.Nodes[0])
	h0 := chain.height()
	volumes := volumeClassDir(t)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"storage_classes: {}": fmt.Sprintf("storage_classes: {beta2: {path: %s, size: 2Gi}}", volumes),
	}})
	owner := nw.Keys["tenant"]
	version := func(args string) string {
		s := strings.Replace(workloadSDL("1Gi", "", svcDef{"app", args, ""}),
			"        storage:\n          size: 1Gi", "        storage:\n          - size: 1Gi\n          - name: data\n            size: 64Mi\n            attributes: {persistent: true, class: beta2}", 1)
		return strings.Replace(s, "    args: ["+args+"]", "    args: ["+args+"]\n    params:\n      storage:\n        data: {mount: /data}", 1)
	}
	res, out, err := deploy(t, nw, writeSDL(t, version(`"-print", "version one", "-sleep", "1h"`)), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy v1: %v\n%s", err, out)
	}
	dseq := strconv.FormatUint(res.DSeq, 10)
	flags := []string{"--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID}
	logs := func() string {
		t.Helper()
		out, err := nw.CLI(context.Background(), append([]string{"lease", "logs", dseq}, flags...)...)
		if err != nil {
			t.Fatalf("lease logs: %v\n%s", err, out)
		}
		return out
	}
	inApp := func(args ...string) string {
		t.Helper()
		c := serviceContainer(t, owner, res.DSeq, "app")
		out, _ := exec.Command("docker", append([]string{"exec", c.ID, "/app"}, args...)...).CombinedOutput()
		return string(out)
	}
	if said := inApp("-write-mib", "8", "-write-path", "/data/keep"); !strings.Contains(said, "wrote 8 MiB") {
		t.Fatalf("write to the volume: %s", said)
	}
	before, _ := deploymentLeases(t, nw, owner, res.DSeq)
	v1Container := serviceContainer(t, owner, res.DSeq, "app").ID

	// v2, in place.
	upd, out, err := deploy(t, nw, writeSDL(t, version(`"-print", "version two", "-sleep", "1h"`)), "--update", dseq)
	if err != nil {
		t.Fatalf("deploy --update v2: %v\n%s", err, out)
	}
	if len(upd.Leases) != 1 || upd.Leases[0].ID != res.Leases[0].ID {
		t.Fatalf("the update reports leases %+v, want %s", upd.Leases, res.Leases[0].ID)
	}
	if c := serviceContainer(t, owner, res.DSeq, "app"); c.ID == v1Container || c.State.Status != "running" {
		t.Fatalf("after the update the container is %s (%s), v1's was %s", c.ID, c.State.Status, v1Container)
	}
	if l := logs(); !strings.Contains(l, "version two") || strings.Contains(l, "version one") {
		t.Fatalf("logs after the update:\n%s", l)
	}
	if said := inApp("-stat", "/data/keep"); !strings.Contains(said, "size=8388608") {
		t.Fatalf("the volume's file after the update: %s", said)
	}
	after, _ := deploymentLeases(t, nw, owner, res.DSeq)
	if len(before) != 1 || len(after) != 1 || after[0].ID != before[0].ID || after[0].CreatedAt != before[0].CreatedAt || after[0].State != "LEASE_STATE_ACTIVE" {
		t.Fatalf("leases before %+v, after %+v: want the one lease, now active", before, after)
	}

	// v3 crashes: v2 runs on, and the tenant hears why.
	_, out, err = deploy(t, nw, writeSDL(t, version(`"-print", "version three is broken", "-exit", "3"`)), "--update", dseq)
	if err == nil || !strings.Contains(out, "did not take the new version") || !strings.Contains(out, "version three is broken") {
		t.Fatalf("a crashing v3: %v\n%s", err, out)
	}
	if l := logs(); !strings.Contains(l, "version two") || strings.Contains(l, "version three") {
		t.Fatalf("logs after the failed update:\n%s", l)
	}
	status := leaseStatusText(t, nw, res.DSeq)
	if !strings.Contains(status, "failed (the version above runs on)") || !strings.Contains(status, "running") {
		t.Fatalf("lease status after the failed update:\n%s", status)
	}

	// Other resources: refused by name, nothing sent.
	hashBefore := deploymentHash(t, nw, owner, res.DSeq)
	bigger := strings.Replace(version(`"-print", "version four", "-sleep", "1h"`), "size: 256Mi", "size: 512Mi", 1)
	_, out, err = deploy(t, nw, writeSDL(t, bigger), "--update", dseq)
	if err == nil || !strings.Contains(out, `service "app" of group "local": memory (bytes) 268435456 is leased, the file asks for 536870912`) {
		t.Fatalf("an update asking for more memory: %v\n%s", err, out)
	}
	if h := deploymentHash(t, nw, owner, res.DSeq); h != hashBefore {
		t.Fatalf("a refused update changed the deployment's manifest hash: %s → %s", hashBefore, h)
	}

	// Close: the one lease was billed for exactly the seconds it ran.
	if out, err := nw.CLI(context.Background(), "tx", "market", "close-deployment", dseq, "--from", "tenant", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close: %v\n%s", err, out)
	}
	var bs []block
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		bs = chain.blocks(h0+1, chain.height())
		if h, _ := leaseEventHeight(bs, isAccountClosed(owner, res.DSeq)); h > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the escrow account did not close")
		}
	}
	createH, _ := leaseEventHeight(bs, isAccountCreated(owner, res.DSeq))
	startH, _ := leaseEventHeight(bs, isLeaseStarted(owner, res.DSeq))
	closeH, _ := leaseEventHeight(bs, isAccountClosed(owner, res.DSeq))
	created, started, closed := blockAt(bs, createH).Time, blockAt(bs, startH).Time, blockAt(bs, closeH).Time
	clock := created.Add(started.Sub(created).Truncate(time.Second))
	secs := int64(closed.Sub(clock) / time.Second)
	rate, _ := new(big.Rat).SetString(strings.TrimSuffix(res.Leases[0].Price, "ugpn"))
	cost := new(big.Rat).Quo(new(big.Rat).Mul(rate, big.NewRat(secs, 1)), big.NewRat(3600, 1))
	want := new(big.Int).Quo(cost.Num(), cost.Denom()).Int64()
	var starts int
	for _, b := range bs {
		for _, ev := range b.Events {
			if e, ok := ev.(*markettypes.EventLeaseStarted); ok && e.Id.Order.Owner == owner && e.Id.Order.Dseq == res.DSeq {
				starts++
			}
		}
	}
	if got := sumPayouts(bs, owner, res.DSeq, ""); got.Gross != want || starts != 1 {
		t.Fatalf("escrow paid %d for the lease over %d s at %s/h (started %d times), want %d: a gap or a double charge", got.Gross, secs, rate.FloatString(0), starts, want)
	}
	prov.waitLog(20*time.Second, "lease closed")
}

// deploymentHash is the manifest hash the chain holds for a deployment.
func deploymentHash(t *testing.T, nw *localnet.Network, owner string, dseq uint64) string {
	t.Helper()
	out, err := nw.CLI(context.Background(), "query", "market", "deployment", owner, strconv.FormatUint(dseq, 10), "--output", "json")
	if err != nil {
		t.Fatalf("query deployment: %v\n%s", err, out)
	}
	i := strings.Index(out, `"manifest_hash"`)
	if i < 0 {
		t.Fatalf("no manifest_hash in %s", out)
	}
	return strings.SplitN(out[i:], ",", 2)[0]
}
