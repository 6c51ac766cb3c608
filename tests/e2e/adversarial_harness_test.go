package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/gogoproto/proto"
	"github.com/docker/docker/api/types/network"

	"github.com/gpunet/gpunet/testutil/localnet"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// The adversarial suites: one side of a lease fails or cheats, and nobody
// on the other side (nor the cheater) comes out ahead. Every test reads the
// ledger block by block: for each account, its balance change plus the
// fees it paid must be exactly what the fault rules say, and the community
// pool, escrow and market module accounts must have moved by exactly the
// slashes, forfeits and fees — nothing lost, nothing created.

// adversarialNetwork is a one-validator network with extra funded accounts
// and no community tax, so the community pool moves only by what gpunet's
// fault rules send it.
func adversarialNetwork(t *testing.T, accounts ...string) *localnet.Network {
	t.Helper()
	return startNetworkEdited(t, localnet.Options{Validators: 1}, func(c *localnet.Config) {
		for _, name := range accounts {
			c.Accounts = append(c.Accounts, localnet.Account{Name: name, Coins: "5000000000ugpn"})
		}
		appState, _ := c.Genesis["app_state"].(map[string]any)
		if appState == nil {
			appState = map[string]any{}
			c.Genesis["app_state"] = appState
		}
		appState["distribution"] = map[string]any{"params": map[string]any{"community_tax": "0.000000000000000000"}}
	})
}

// ledger is the chain between two heights: per-account balance changes and
// fees, the community pool and the typed events.
type ledger struct {
	t      *testing.T
	r      *chainReader
	h0, h1 int64
	blocks []block
}

func (r *chainReader) ledger(h0, h1 int64) *ledger {
	return &ledger{t: r.t, r: r, h0: h0, h1: h1, blocks: r.blocks(h0+1, h1)}
}

func (l *ledger) fees(addr string) int64 {
	var n int64
	for _, b := range l.blocks {
		n += b.FeesBy[addr]
	}
	return n
}

// expect checks that addr's balance moved by want, not counting the fees
// it paid.
func (l *ledger) expect(name, addr string, want int64) {
	l.t.Helper()
	moved := l.r.balanceAt(addr, l.h1) - l.r.balanceAt(addr, l.h0)
	if got := moved + l.fees(addr); got != want {
		l.t.Errorf("%s: balance moved %d with %d in fees, i.e. %d apart from fees; want %d", name, moved, l.fees(addr), got, want)
	}
}

// expectPool checks the community pool's change.
func (l *ledger) expectPool(want int64) {
	l.t.Helper()
	got := l.r.communityPool(l.h1).Sub(l.r.communityPool(l.h0))
	if !got.Equal(sdkmath.LegacyNewDec(want)) {
		l.t.Errorf("community pool moved %s, want %d", got, want)
	}
}

// events returns the events of type T.
func events[T proto.Message](l *ledger) []T {
	var out []T
	for _, b := range l.blocks {
		for _, ev := range b.Events {
			if e, ok := ev.(T); ok {
				out = append(out, e)
			}
		}
	}
	return out
}

// paid sums the escrow payouts of a deployment: gross out of escrow, net
// to the provider.
func (l *ledger) paid(owner string, dseq uint64) payouts {
	return sumPayouts(l.blocks, owner, dseq, "")
}

// communityPool is the community pool's ugpn at height h.
func (r *chainReader) communityPool(h int64) sdkmath.LegacyDec {
	r.t.Helper()
	var res struct {
		Pool []struct {
			Denom  string `json:"denom"`
			Amount string `json:"amount"`
		} `json:"pool"`
	}
	r.restAt("community pool", "/cosmos/distribution/v1beta1/community_pool", h, &res)
	for _, c := range res.Pool {
		if c.Denom == "ugpn" {
			return sdkmath.LegacyMustNewDecFromStr(c.Amount)
		}
	}
	return sdkmath.LegacyZeroDec()
}

// chainLease is a lease as `query market deployment` shows it.
type chainLease struct {
	ID struct {
		Order struct {
			Owner string  `json:"owner"`
			Dseq  flexInt `json:"dseq"`
			Gseq  int     `json:"gseq"`
			Oseq  int     `json:"oseq"`
		} `json:"order"`
		Provider string `json:"provider"`
	} `json:"id"`
	State     string  `json:"state"`
	CreatedAt flexInt `json:"created_at"`
	Deadline  flexInt `json:"start_deadline"`
}

// deploymentLeases lists a deployment's live leases; nil when it is gone.
func deploymentLeases(t *testing.T, nw *localnet.Network, owner string, dseq uint64) ([]chainLease, bool) {
	t.Helper()
	var res struct {
		Leases []chainLease `json:"leases"`
	}
	out, err := nw.CLI(context.Background(), "query", "market", "deployment", owner, fmt.Sprint(dseq), "--output", "json")
	if err != nil {
		if strings.Contains(out+err.Error(), "not found") {
			return nil, false
		}
		t.Fatalf("query deployment: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(localnet.LastJSON(out)), &res); err != nil {
		t.Fatalf("decode deployment: %v\n%s", err, out)
	}
	return res.Leases, true
}

// awaitLease waits for a lease of the deployment held by provider.
func awaitLease(t *testing.T, nw *localnet.Network, owner string, dseq uint64, provider string, timeout time.Duration) chainLease {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		leases, _ := deploymentLeases(t, nw, owner, dseq)
		for _, l := range leases {
			if l.ID.Provider == provider {
				return l
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no lease of deployment %d for %s within %s", dseq, provider, timeout)
	return chainLease{}
}

// awaitDeploymentGone waits until the deployment is closed.
func awaitDeploymentGone(t *testing.T, nw *localnet.Network, owner string, dseq uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, live := deploymentLeases(t, nw, owner, dseq); !live {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("deployment %d still open after %s", dseq, timeout)
}

// bondOf is a provider's bond in ugpn.
func bondOf(t *testing.T, nw *localnet.Network, addr string) int64 {
	t.Helper()
	var v providerView
	cli(t, nw, nw.Nodes[0], &v, "query", "provider", "provider", addr, "--output", "json")
	return mustInt(t, v.Provider.Provider.Bond.Amount)
}

// txAs sends a transaction signed by the named account and fails the test
// unless it lands with code 0.
func txAs(t *testing.T, nw *localnet.Network, from string, args ...string) txResponse {
	t.Helper()
	flags := []string{"--from", from, "--keyring-backend", "test", "--chain-id", nw.Config.ChainID, "--gas", "400000", "--fees", "10000ugpn", "--yes", "--output", "json"}
	var res txResponse
	cli(t, nw, nw.Nodes[0], &res, append(args, flags...)...)
	if res.Code != 0 {
		t.Fatalf("%s: %s", strings.Join(args[:3], " "), res.RawLog)
	}
	if res = waitTx(t, nw, nw.Nodes[0], res.TxHash); res.Code != 0 {
		t.Fatalf("%s: %s", strings.Join(args[:3], " "), res.RawLog)
	}
	return res
}

// txFails sends a transaction signed by the named account that the chain
// must refuse (in CheckTx or in its block) with a log containing want.
func txFails(t *testing.T, nw *localnet.Network, from, want string, args ...string) {
	t.Helper()
	flags := []string{"--from", from, "--keyring-backend", "test", "--chain-id", nw.Config.ChainID, "--gas", "400000", "--fees", "10000ugpn", "--yes", "--output", "json"}
	out, err := nw.CLI(context.Background(), append(args, flags...)...)
	var res txResponse
	if jerr := json.Unmarshal([]byte(localnet.LastJSON(out)), &res); jerr == nil && res.Code == 0 && res.TxHash != "" {
		res = waitTx(t, nw, nw.Nodes[0], res.TxHash)
		out = res.RawLog
	}
	if res.Code == 0 && err == nil {
		t.Errorf("%s succeeded; want a refusal with %q", strings.Join(args[:3], " "), want)
		return
	}
	if !strings.Contains(out, want) && (err == nil || !strings.Contains(err.Error(), want)) {
		t.Errorf("%s refused with %q (%v); want %q", strings.Join(args[:3], " "), out, err, want)
	}
}

// leaseFlag is the --lease JSON of an autocli market command.
func leaseFlag(owner string, dseq uint64, gseq, oseq int, provider string) string {
	return fmt.Sprintf(`{"order":{"owner":%q,"dseq":"%d","gseq":%d,"oseq":%d},"provider":%q}`, owner, dseq, gseq, oseq, provider)
}

// blockLeaseSubnets creates a Docker network over pool, so a provider whose
// lease_subnets is that pool cannot create any lease network: its deploys
// fail on its own side (never the tenant's fault) and it never starts.
func blockLeaseSubnets(t *testing.T, pool string) {
	t.Helper()
	cli := dockerClient(t)
	name := fmt.Sprintf("gpunet-e2e-blocker-%d", time.Now().UnixNano())
	if _, err := cli.NetworkCreate(context.Background(), name, network.CreateOptions{Driver: "bridge",
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: pool}}}}); err != nil {
		t.Fatalf("block subnet %s: %v", pool, err)
	}
	t.Cleanup(func() { _ = cli.NetworkRemove(context.Background(), name) })
}

// jobCommandSDL is jobSDL with a command instead of the image's entrypoint.
func jobCommandSDL(image, command string) string {
	return strings.Replace(jobSDL(image, `"-steps", "1"`, ""), "    restart: never", "    command: ["+strconv.Quote(command)+"]\n    restart: never", 1)
}

// reservationFee of a lease at price ugpn/h under the local network's
// params (the default 600 s).
func reservationFee(t *testing.T, price string) int64 {
	t.Helper()
	amt, err := sdkmath.LegacyNewDecFromStr(strings.TrimSuffix(price, "ugpn"))
	if err != nil {
		t.Fatal(err)
	}
	return markettypes.ReservationFee(sdk.NewDecCoinFromDec("ugpn", amt), markettypes.DefaultParams().ReservationFeeSeconds).Amount.Int64()
}
