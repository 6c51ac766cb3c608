package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"encoding/hex"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// jobSDL is a CPU job of the sample image: half a core, 256 MiB.
func jobSDL(image, args string, gpu bool) string {
	gpuBlock := ""
	if gpu {
		gpuBlock = `
        gpu:
          units: 1
          attributes:
            vendor:
              nvidia:
                - model: h100`
	}
	return fmt.Sprintf(`version: "2.0"
services:
  job:
    image: %s
    args: [%s]
    restart: never
profiles:
  compute:
    small:
      resources:
        cpu:
          units: 0.5
        memory:
          size: 256Mi
        storage:
          size: 1Gi%s
  placement:
    local:
      pricing:
        small:
          denom: ugpn
          amount: 5000000000
deployment:
  job:
    local:
      profile: small
      count: 1
`, image, args, gpuBlock)
}

// The provider's price for jobSDL without a GPU: 0.5 core × 20000 + 0.25 GiB ×
// 2000 + 1 GiB storage × 100 (provider.yaml prices, per hour).
const cpuJobPrice = "10600ugpn"

// TestRentalEndToEnd rents a slot from a real provider daemon on a real
// chain and runs it in a real Docker engine: a job that completes and
// settles, a running workload with the SDL's limits and owner-only logs,
// and a missing image that costs the tenant nothing.
func TestRentalEndToEnd(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	tenant := nw.Keys["tenant"]
	node := nw.Nodes[0]

	t.Run("job completes and settles", func(t *testing.T) {
		before := balanceCLI(t, nw, node, tenant)
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "3", "-interval", "2s"`, false)), "--follow", "--deposit", "5000000ugpn")
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		if len(res.Bids) != 1 || res.Bids[0].Provider != prov.addr || res.Bids[0].Price != cpuJobPrice {
			t.Fatalf("bids %+v, want one from %s at %s", res.Bids, prov.addr, cpuJobPrice)
		}
		if len(res.Leases) != 1 || res.Leases[0].Price != cpuJobPrice {
			t.Fatalf("leases %+v", res.Leases)
		}
		for _, want := range []string{"no GPU visible to this container", "step 3/3", "done in"} {
			if !strings.Contains(out, want) {
				t.Errorf("deploy output lacks the job's %q:\n%s", want, out)
			}
		}
		if len(res.Closed) != 1 || res.Closed[0].Reason != "workload_completed" {
			t.Fatalf("closed %+v, want workload_completed", res.Closed)
		}
		s := res.Settlement
		if s == nil {
			t.Fatal("no settlement")
		}
		paid, earned, take, refund := mustInt(t, s.TenantPaid.Amount), mustInt(t, s.ProviderEarned.Amount), mustInt(t, s.StakersTake.Amount), mustInt(t, s.Refunded.Amount)
		if paid <= 0 || paid != earned+take || refund != 5_000_000-paid {
			t.Fatalf("settlement paid %d earned %d take %d refund %d (deposit 5000000)", paid, earned, take, refund)
		}
		fee := mustInt(t, strings.TrimSuffix(res.Fee, "ugpn"))
		if got := before - balanceCLI(t, nw, node, tenant); got != fee+paid {
			t.Errorf("tenant spent %d, want fee %d + paid %d", got, fee, paid)
		}
		for _, m := range []string{"escrow", "market"} {
			if b := moduleBalance(t, nw, m); b != 0 {
				t.Errorf("%s module holds %d ugpn after the only deployment closed", m, b)
			}
		}
		waitNoContainers(t, tenant, res.DSeq)
		prov.waitLog(5*time.Second, "lease closed", "reason=workload_completed")
	})

	t.Run("running workload has the SDL limits and owner-only logs", func(t *testing.T) {
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, false)), "--deposit", "5000000ugpn")
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		cs := leaseContainers(t, tenant, res.DSeq)
		if len(cs) != 1 {
			t.Fatalf("%d containers, want 1", len(cs))
		}
		hc := cs[0].HostConfig
		if cs[0].State.Status != "running" || hc.NanoCpus != 500_000_000 || hc.Memory != 256<<20 || hc.PidsLimit == nil || *hc.PidsLimit != 512 ||
			hc.Privileged || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || !strings.HasPrefix(hc.NetworkMode, "gpunet-") {
			t.Fatalf("container %+v", cs[0])
		}
		dseq := strconv.FormatUint(res.DSeq, 10)
		flags := []string{"--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID}
		logs, err := nw.CLI(context.Background(), append([]string{"lease", "logs", dseq}, flags...)...)
		if err != nil || !strings.Contains(logs, "[job-0] step 1/600") {
			t.Fatalf("owner's logs: %v\n%s", err, logs)
		}
		resent, err := nw.CLI(context.Background(), append([]string{"lease", "send-manifest", dseq}, flags...)...)
		if err != nil || !strings.Contains(resent, "accepted by "+prov.apiURL) {
			t.Fatalf("send-manifest from the local copy: %v\n%s", err, resent)
		}
		// deploy returns once the container runs; the provider's start
		// transaction lands in the next block or so.
		var status string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			status, err = nw.CLI(context.Background(), append([]string{"lease", "status", dseq}, flags...)...)
			if err == nil && strings.Contains(status, "state active") && strings.Contains(status, "running") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lease status: %v\n%s", err, status)
			}
		}

		// Another funded account (the validator, whose key is on chain)
		// signs a request for the tenant's lease: refused.
		other := exportKey(t, nw, "validator")
		cl := api.NewClient(prov.apiURL, prov.addr, providerCert(t, nw, prov.addr), nw.Keys["validator"], other)
		err = cl.Logs(context.Background(), tenant, res.DSeq, 1, 1, "", false, 0, &strings.Builder{})
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != 403 {
			t.Fatalf("logs as another account: %v, want 403", err)
		}
		// The tenant's own address with another key: refused too.
		forged := api.NewClient(prov.apiURL, prov.addr, providerCert(t, nw, prov.addr), tenant, other)
		if err := forged.Logs(context.Background(), tenant, res.DSeq, 1, 1, "", false, 0, &strings.Builder{}); !errors.As(err, &se) || se.Code != 401 {
			t.Fatalf("logs with a forged signer: %v, want 401", err)
		}

		if _, err := nw.CLI(context.Background(), append([]string{"tx", "market", "close-deployment", dseq, "--fees", "10000ugpn", "--gas", "400000", "--yes"}, flags...)...); err != nil {
			t.Fatal(err)
		}
		waitNoContainers(t, tenant, res.DSeq)
		prov.waitLog(10*time.Second, "lease closed", "reason=tenant")
	})

	t.Run("image not on the provider closes the lease and costs nothing", func(t *testing.T) {
		before := balanceCLI(t, nw, node, tenant)
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL("gpunet/no-such-image:1", `"-steps", "1"`, false)), "--deposit", "5000000ugpn", "--wait", "30s")
		if err == nil {
			t.Fatalf("deploy of a missing image succeeded:\n%s", out)
		}
		prov.waitLog(10*time.Second, "image unavailable")
		prov.waitLog(10*time.Second, "lease closed", "reason=image_unavailable")
		waitBlocks(t, nw, 2)
		fee := mustInt(t, strings.TrimSuffix(res.Fee, "ugpn"))
		if got := before - balanceCLI(t, nw, node, tenant); got != fee {
			t.Errorf("tenant spent %d, want only the fee %d", got, fee)
		}
		if cs := leaseContainers(t, tenant, res.DSeq); len(cs) != 0 {
			t.Errorf("containers left: %+v", cs)
		}
	})

	t.Run("escrow running dry closes the lease and removes the container", func(t *testing.T) {
		// One declared h100 at 2000 GPN/h: a 5 GPN deposit lasts 9 seconds.
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, true)), "--deposit", "5000000ugpn")
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		if cs := leaseContainers(t, tenant, res.DSeq); len(cs) != 1 || cs[0].State.Status != "running" {
			t.Fatalf("containers %+v", cs)
		}
		prov.waitLog(40*time.Second, "lease closed", "reason=insufficient_funds")
		waitNoContainers(t, tenant, res.DSeq)
	})
}

// waitNoContainers waits until the deployment has no containers left.
func waitNoContainers(t *testing.T, owner string, dseq uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if len(leaseContainers(t, owner, dseq)) == 0 {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("containers of deployment %d still exist: %+v", dseq, leaseContainers(t, owner, dseq))
}

// exportKey returns a signer for a key of the network's test keyring.
func exportKey(t *testing.T, nw *localnet.Network, name string) func([]byte) ([]byte, cryptotypes.PubKey, error) {
	t.Helper()
	cmd := exec.Command(gpunetd, "keys", "export", name, "--unarmored-hex", "--unsafe", "--keyring-backend", "test", "--home", nw.KeyringHome())
	cmd.Stdin = strings.NewReader("y\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("export %s: %v", name, err)
	}
	bz, err := hex.DecodeString(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("exported key: %v", err)
	}
	priv := &secp256k1.PrivKey{Key: bz}
	return func(msg []byte) ([]byte, cryptotypes.PubKey, error) {
		sig, err := priv.Sign(msg)
		return sig, priv.PubKey(), err
	}
}

// providerCert reads the provider's certificate fingerprint from the chain.
func providerCert(t *testing.T, nw *localnet.Network, addr string) string {
	t.Helper()
	var v struct {
		Provider struct {
			Provider struct {
				TLSCertSHA256 string `json:"tls_cert_sha256"`
			} `json:"provider"`
		} `json:"provider"`
	}
	cli(t, nw, nw.Nodes[0], &v, "query", "provider", "provider", addr, "--output", "json")
	return v.Provider.Provider.TLSCertSHA256
}

var _ = syscall.SIGKILL
