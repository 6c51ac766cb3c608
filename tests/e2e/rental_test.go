package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gpunet/gpunet/provider/leaseauth"
	"io"
	"math/big"
	"net/http"
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
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// jobSDL is a job of the sample image: half a core, 256 MiB, and one GPU
// of gpuModel unless that is empty.
func jobSDL(image, args string, gpuModel string) string {
	gpuBlock := ""
	if gpuModel != "" {
		gpuBlock = `
        gpu:
          units: 1
          attributes:
            vendor:
              nvidia:
                - model: ` + gpuModel
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
// 2000 + 1 GiB storage × 100 (provider.yaml prices, per hour); with one GPU
// at startProvider's 2000000000 ugpn/h on top.
const (
	cpuJobPrice = "10600ugpn"
	gpuJobPrice = "2000010600ugpn"
)

// TestRentalEndToEnd rents a slot from a real provider daemon on a real
// chain and runs it in a real Docker engine: a GPU job that completes and
// settles with every ugpn found in the bank balances, a running workload
// with the SDL's limits and owner-only logs, a missing image that costs the
// tenant nothing, and an escrow that runs dry and is closed in the block
// its deposit ran out.
func TestRentalEndToEnd(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	tenant := nw.Keys["tenant"]
	node := nw.Nodes[0]

	t.Run("job completes and settles", func(t *testing.T) {
		// A GPU job worth millions of ugpn, so that the 2% take is not
		// rounded away and the bank balances show every flow.
		chain := newChainReader(t, node)
		feeCollector, distribution := moduleAddress(t, nw, "fee_collector"), moduleAddress(t, nw, "distribution")
		h0 := chain.height()
		tenantBefore, provBefore := chain.balanceAt(tenant, h0), chain.balanceAt(prov.addr, h0)
		const deposit = 50_000_000 // 90 s of the lease: the job ends long before
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "3", "-interval", "2s"`, prov.gpuModel)), "--follow", "--deposit", fmt.Sprintf("%dugpn", deposit))
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		if len(res.Bids) != 1 || res.Bids[0].Provider != prov.addr || res.Bids[0].Price != gpuJobPrice {
			t.Fatalf("bids %+v, want one from %s at %s", res.Bids, prov.addr, gpuJobPrice)
		}
		if len(res.Leases) != 1 || res.Leases[0].Price != gpuJobPrice {
			t.Fatalf("leases %+v", res.Leases)
		}
		for _, want := range []string{"step 3/3", "done in"} {
			if !strings.Contains(out, want) {
				t.Errorf("deploy output lacks the job's %q:\n%s", want, out)
			}
		}
		checkJobSawGPU(t, prov, out)
		if len(res.Closed) != 1 || res.Closed[0].Reason != "workload_completed" {
			t.Fatalf("closed %+v, want workload_completed", res.Closed)
		}
		s := res.Settlement
		if s == nil {
			t.Fatal("no settlement")
		}
		paid, earned, take, refund := mustInt(t, s.TenantPaid.Amount), mustInt(t, s.ProviderEarned.Amount), mustInt(t, s.StakersTake.Amount), mustInt(t, s.Refunded.Amount)
		if paid <= 0 || take <= 0 || paid != earned+take || refund != deposit-paid {
			t.Fatalf("settlement paid %d earned %d take %d refund %d (deposit %d)", paid, earned, take, refund, deposit)
		}
		fee := mustInt(t, strings.TrimSuffix(res.Fee, "ugpn"))
		waitNoContainers(t, tenant, res.DSeq)
		prov.waitLog(5*time.Second, "lease closed", "reason=workload_completed")

		// The bank balances over every block from before the deployment to
		// after its closing (deploy --follow has seen it): the tenant's
		// outflow is its fee and what it paid; the provider's inflow is what
		// it earned, less the fees of its own transactions (the bid deposit
		// has come back); the fee collector holds at each block's end
		// exactly that block's fees and takes, and the next block hands it
		// on to distribution (validators and community pool).
		h1 := chain.height() + 1
		chain.waitHeight(h1)
		bs := chain.blocks(h0+1, h1)
		var tenantFees, provFees int64
		for _, b := range bs {
			tenantFees += b.FeesBy[tenant]
			provFees += b.FeesBy[prov.addr]
		}
		if tenantFees != fee {
			t.Errorf("tenant paid %d ugpn in fees over blocks %d-%d, deploy reports %d", tenantFees, h0+1, h1, fee)
		}
		if got := tenantBefore - chain.balanceAt(tenant, h1); got != fee+paid {
			t.Errorf("tenant balance fell by %d, want fee %d + paid %d", got, fee, paid)
		}
		if all, lease := sumPayouts(bs, "", 0, ""), sumPayouts(bs, tenant, res.DSeq, prov.addr); all != lease || lease != (payouts{Gross: paid, Take: take, Net: earned}) {
			t.Errorf("escrow payouts on chain: all %+v, this lease %+v; settlement says gross %d take %d net %d", all, lease, paid, take, earned)
		}
		if provFees <= 0 {
			t.Errorf("provider paid no fees over blocks %d-%d: its bid and lease transactions are missing", h0+1, h1)
		}
		if got := chain.balanceAt(prov.addr, h1) - provBefore; got+provFees != earned {
			t.Errorf("provider balance rose by %d and it paid %d in fees: %d, want earned %d", got, provFees, got+provFees, earned)
		}
		var taken int64
		for i, b := range bs {
			blockTake := sumPayouts(bs[i:i+1], "", 0, "").Take
			fc := chain.balanceAt(feeCollector, b.Height)
			if fc != b.TotalFees+blockTake {
				t.Errorf("fee collector holds %d after block %d, want its fees %d + take %d", fc, b.Height, b.TotalFees, blockTake)
			}
			if blockTake == 0 {
				continue
			}
			if i+1 == len(bs) {
				t.Errorf("take %d in block %d, the last one read", blockTake, b.Height)
				continue
			}
			taken += blockTake
			next := bs[i+1]
			if got := chain.balanceAt(distribution, next.Height) - chain.balanceAt(distribution, b.Height); got != fc+next.Minted {
				t.Errorf("distribution gained %d in block %d, want the fee collector's %d + minted %d", got, next.Height, fc, next.Minted)
			}
		}
		if taken != take {
			t.Errorf("takes seen moving to distribution: %d, want %d", taken, take)
		}
		t.Logf("blocks %d-%d: tenant paid fee %d + lease %d; provider earned %d and paid %d in fees; take %d to the fee collector and on to distribution",
			h0+1, h1, fee, paid, earned, provFees, take)
		for _, m := range []string{"escrow", "market"} {
			if b := moduleBalance(t, nw, m); b != 0 {
				t.Errorf("%s module holds %d ugpn after the only deployment closed", m, b)
			}
		}
	})

	t.Run("running workload has the SDL limits and owner-only logs", func(t *testing.T) {
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, "")), "--deposit", "5000000ugpn")
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
		// signs a request for the tenant's lease: refused before its body
		// is read or its nonce kept, as it holds no lease here.
		other := exportKey(t, nw, "validator")
		cl := api.NewClient(prov.apiURL, nw.Config.ChainID, prov.addr, providerCert(t, nw, prov.addr), nw.Keys["validator"], other)
		err = cl.Logs(context.Background(), tenant, res.DSeq, 1, 1, "", false, 0, &strings.Builder{})
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != 404 || !strings.Contains(se.Message, "holds no live lease") {
			t.Fatalf("logs as another account: %v, want 404", err)
		}
		// The tenant's own address with another key: refused too.
		forged := api.NewClient(prov.apiURL, nw.Config.ChainID, prov.addr, providerCert(t, nw, prov.addr), tenant, other)
		if err := forged.Logs(context.Background(), tenant, res.DSeq, 1, 1, "", false, 0, &strings.Builder{}); !errors.As(err, &se) || se.Code != 401 {
			t.Fatalf("logs with a forged signer: %v, want 401", err)
		}

		if _, err := nw.CLI(context.Background(), append([]string{"tx", "market", "close-deployment", dseq, "--fees", "10000ugpn", "--gas", "400000", "--yes"}, flags...)...); err != nil {
			t.Fatal(err)
		}
		waitNoContainers(t, tenant, res.DSeq)
		prov.waitLog(10*time.Second, "lease closed", "reason=tenant")
	})

	t.Run("image not on the provider closes the lease for the reservation fee", func(t *testing.T) {
		before := balanceCLI(t, nw, node, tenant)
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL("gpunet/no-such-image:1", `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--wait", "30s")
		if err == nil {
			t.Fatalf("deploy of a missing image succeeded:\n%s", out)
		}
		prov.waitLog(10*time.Second, "image unavailable")
		prov.waitLog(10*time.Second, "lease closed", "reason=image_unavailable")
		waitBlocks(t, nw, 2)
		// A tenant fault: the tenant pays the transaction fee and the
		// reservation fee (to the community pool), nothing else.
		fee := mustInt(t, strings.TrimSuffix(res.Fee, "ugpn"))
		if got, want := before-balanceCLI(t, nw, node, tenant), fee+reservationFee(t, cpuJobPrice); got != want {
			t.Errorf("tenant spent %d, want the fee %d and the reservation fee %d", got, fee, want-fee)
		}
		if cs := leaseContainers(t, tenant, res.DSeq); len(cs) != 0 {
			t.Errorf("containers left: %+v", cs)
		}
	})

	t.Run("a failing job closes as workload_failed and the public endpoints say so", func(t *testing.T) {
		// The sample image refuses an unknown flag and exits 2.
		res, out, _ := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-no-such-flag"`, "")), "--deposit", "5000000ugpn", "--follow")
		if len(res.Closed) != 1 || res.Closed[0].Reason != "workload_failed" {
			t.Fatalf("closed %+v, want workload_failed\n%s", res.Closed, out)
		}
		prov.waitLog(10*time.Second, "lease closed", fmt.Sprintf("/%d/1/1", res.DSeq), "reason=workload_failed")
		waitNoContainers(t, tenant, res.DSeq)

		// Anyone may read health, inventory and metrics over the pinned
		// certificate; no signature needed.
		hc := leaseauth.PinnedClient(providerCert(t, nw, prov.addr), 10*time.Second)
		get := func(path string) string {
			r, err := hc.Get(prov.apiURL + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer r.Body.Close()
			body, _ := io.ReadAll(r.Body)
			if r.StatusCode != 200 {
				t.Fatalf("GET %s: %d %s", path, r.StatusCode, body)
			}
			return string(body)
		}
		var health struct {
			Status          string `json:"status"`
			Provider        string `json:"provider"`
			ProcessedHeight int64  `json:"processed_height"`
		}
		if err := json.Unmarshal([]byte(get("/healthz")), &health); err != nil || health.Status != "ok" || health.Provider != prov.addr || health.ProcessedHeight < res.Height {
			t.Fatalf("healthz %+v (%v), want ok for %s past height %d", health, err, prov.addr, res.Height)
		}
		var inv struct {
			Source string `json:"source"`
			GPUs   []any  `json:"gpus"`
		}
		if err := json.Unmarshal([]byte(get("/v1/inventory")), &inv); err != nil || inv.Source != prov.inv.Source || len(inv.GPUs) != len(prov.inv.GPUs) {
			t.Fatalf("inventory %+v (%v), want source %q with %d GPUs", inv, err, prov.inv.Source, len(prov.inv.GPUs))
		}
		// Metrics are not public: not on the API, on their own address.
		if r, err := hc.Get(prov.apiURL + "/metrics"); err != nil || r.StatusCode != http.StatusNotFound {
			t.Fatalf("metrics on the public API: %v %v", r, err)
		}
		mr, err := http.Get(prov.metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		mbody, _ := io.ReadAll(mr.Body)
		mr.Body.Close()
		metrics := string(mbody)
		for _, want := range []string{
			`gpunet_provider_leases_closed_total{reason="workload_failed"} 1`,
			`gpunet_provider_bids_total{outcome="placed"}`,
			"gpunet_provider_leases_won_total",
			"gpunet_provider_chain_lag_blocks",
			"gpunet_provider_earnings_ugpn_total",
			// The config's collector settings (gc_percent, memory_limit).
			"\ngo_gc_gogc_percent 50\n",
			"\ngo_gc_gomemlimit_bytes 6.7108864e+07\n",
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q:\n%s", want, metrics)
			}
		}
	})

	t.Run("escrow running dry closes the lease and removes the container", func(t *testing.T) {
		// One GPU at 2000 GPN/h: a 5 GPN deposit lasts 8 whole seconds.
		chain := newChainReader(t, node)
		h0 := chain.height()
		tenantBefore := chain.balanceAt(tenant, h0)
		const deposit = 5_000_000
		res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, prov.gpuModel)), "--deposit", fmt.Sprintf("%dugpn", deposit))
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, out)
		}
		if cs := leaseContainers(t, tenant, res.DSeq); len(cs) != 1 || cs[0].State.Status != "running" {
			t.Fatalf("containers %+v", cs)
		}
		if len(res.Leases) != 1 || res.Leases[0].Price != gpuJobPrice {
			t.Fatalf("leases %+v, want one at %s", res.Leases, gpuJobPrice)
		}
		prov.waitLog(40*time.Second, "lease closed", "reason=insufficient_funds")
		waitNoContainers(t, tenant, res.DSeq)

		// x/escrow/README.md: the account's clock starts at the deployment's
		// block and advances in whole seconds, so when the lease starts it
		// reads the start block's time less the sub-second rest; the deposit
		// pays for the largest s with floor(rate·s/3600) ≤ deposit, and the
		// account runs dry s+1 seconds after that. The first block whose time
		// is at or past it closes the lease, pays the provider for s seconds
		// and refunds the rest.
		h1 := chain.height()
		bs := chain.blocks(h0+1, h1)
		createH, _ := leaseEventHeight(bs, isAccountCreated(tenant, res.DSeq))
		startH, _ := leaseEventHeight(bs, isLeaseStarted(tenant, res.DSeq))
		closeH, closed := leaseEventHeight(bs, isLeaseClosed(tenant, res.DSeq))
		accH, accClosed := leaseEventHeight(bs, isAccountClosed(tenant, res.DSeq))
		if createH == 0 || startH == 0 || closeH == 0 || accH != closeH {
			t.Fatalf("blocks %d-%d: account created at %d, lease started at %d, closed at %d, account closed at %d", h0+1, h1, createH, startH, closeH, accH)
		}
		if r := closed.(*markettypes.EventLeaseClosed).Reason; r != markettypes.CLOSE_REASON_INSUFFICIENT_FUNDS {
			t.Fatalf("lease closed as %s", r.ReasonString())
		}
		rate, ok := new(big.Rat).SetString(strings.TrimSuffix(res.Leases[0].Price, "ugpn"))
		if !ok {
			t.Fatalf("lease price %q", res.Leases[0].Price)
		}
		secs, paid := fundable(deposit, rate)
		created, started := blockAt(bs, createH).Time, blockAt(bs, startH).Time
		clock := created.Add(started.Sub(created).Truncate(time.Second))
		dry := clock.Add(time.Duration(secs+1) * time.Second)
		var want int64
		for _, b := range bs {
			if b.Height > startH && !b.Time.Before(dry) {
				want = b.Height
				break
			}
		}
		if closeH != want {
			var times []string
			for _, b := range bs {
				if b.Height >= startH {
					times = append(times, fmt.Sprintf("%d@%s", b.Height, b.Time.Format("15:04:05.000")))
				}
			}
			t.Fatalf("deposit %d at %s ugpn/h pays %d s from %s: dry at %s, so block %d should close the lease; it closed in block %d (blocks %s)",
				deposit, rate.FloatString(0), secs, clock.Format("15:04:05.000"), dry.Format("15:04:05.000"), want, closeH, strings.Join(times, " "))
		}
		t.Logf("lease started in block %d, deposit pays %d s (%d ugpn) from %s, dry at %s: closed in block %d at %s",
			startH, secs, paid, clock.Format("15:04:05.000"), dry.Format("15:04:05.000"), closeH, blockAt(bs, closeH).Time.Format("15:04:05.000"))
		acc := accClosed.(*escrowtypes.EventAccountClosed)
		if acc.Reason != "insufficient_funds" || acc.Refund.Amount.Int64() != deposit-paid {
			t.Errorf("account closed as %q refunding %s, want insufficient_funds refunding %d", acc.Reason, acc.Refund, deposit-paid)
		}
		if got := sumPayouts(bs, tenant, res.DSeq, ""); got.Gross != paid || got.Take+got.Net != paid {
			t.Errorf("escrow paid %+v for the lease, want gross %d", got, paid)
		}
		fee := mustInt(t, strings.TrimSuffix(res.Fee, "ugpn"))
		if got := tenantBefore - chain.balanceAt(tenant, h1); got != fee+paid {
			t.Errorf("tenant balance fell by %d, want fee %d + %d s of the lease %d: the dust %d should have come back", got, fee, secs, paid, deposit-paid)
		}
		for _, m := range []string{"escrow", "market"} {
			if b := moduleBalance(t, nw, m); b != 0 {
				t.Errorf("%s module holds %d ugpn after every deployment closed", m, b)
			}
		}
	})
}

// fundable returns how many whole seconds a deposit pays for at rate per
// hour — the largest s with floor(rate·s/3600) ≤ deposit, i.e. the s with
// rate·s < (deposit+1)·3600 — and what those seconds cost.
func fundable(deposit int64, rate *big.Rat) (int64, int64) {
	limit := new(big.Rat).Quo(new(big.Rat).SetInt64((deposit+1)*3600), rate)
	// s = ceil(limit) − 1: the largest integer strictly below limit.
	s := new(big.Int).Quo(new(big.Int).Add(limit.Num(), new(big.Int).Sub(limit.Denom(), big.NewInt(1))), limit.Denom())
	s.Sub(s, big.NewInt(1))
	cost := new(big.Rat).Quo(new(big.Rat).Mul(rate, new(big.Rat).SetInt(s)), big.NewRat(3600, 1))
	return s.Int64(), new(big.Int).Quo(cost.Num(), cost.Denom()).Int64()
}

// checkJobSawGPU asserts what the sample job reports about its GPU: the
// device NVML detected on this host, or, with declared GPUs, the declared
// one it was given and that no device is attached.
func checkJobSawGPU(t *testing.T, prov *providerProc, out string) {
	t.Helper()
	if prov.inv.Source == "declared" {
		for _, want := range []string{"lease holds declared GPU(s) declared-h100-", "no GPU visible to this container"} {
			if !strings.Contains(out, want) {
				t.Errorf("job output with a declared GPU lacks %q:\n%s", want, out)
			}
		}
		return
	}
	if strings.Contains(out, "no GPU visible") || strings.Contains(out, "declared GPU") {
		t.Errorf("job on a host with NVIDIA GPUs saw none:\n%s", out)
	}
	for _, g := range prov.inv.GPUs {
		if g.Healthy && strings.Contains(out, "GPU: ") && strings.Contains(out, g.UUID) {
			return
		}
	}
	t.Errorf("job output names none of the host's GPUs %+v:\n%s", prov.inv.GPUs, out)
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
