package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpunet/gpunet/testutil/localnet"
)

type providerView struct {
	Provider struct {
		Provider struct {
			Owner   string `json:"owner"`
			HostURI string `json:"host_uri"`
			Gpus    []struct {
				Model string `json:"model"`
				Count int    `json:"count"`
			} `json:"gpus"`
			Bond struct {
				Amount string `json:"amount"`
			} `json:"bond"`
			Status string `json:"status"`
		} `json:"provider"`
		Reliability string `json:"reliability"`
		Unbonding   struct {
			Amount string `json:"amount"`
		} `json:"unbonding"`
	} `json:"provider"`
}

// TestProviderLifecycle registers a provider from YAML through the CLI on a
// real chain, queries it, updates it, unbonds part of the bond and watches
// the coins come back, then deregisters.
func TestProviderLifecycle(t *testing.T) {
	nw := startNetwork(t, 1)
	node := nw.Nodes[0]
	addr := nw.Keys["provider"]
	yamlPath := filepath.Join(repoRoot(), "examples", "provider.yaml")
	txFlags := []string{"--from", "provider", "--gas", "400000", "--fees", "10000ugpn", "--yes", "--output", "json"}

	tx := func(args ...string) txResponse {
		t.Helper()
		var res txResponse
		cli(t, nw, node, &res, append(args, txFlags...)...)
		if res.Code != 0 {
			return res
		}
		return waitTx(t, nw, node, res.TxHash)
	}
	query := func() providerView {
		t.Helper()
		var v providerView
		cli(t, nw, node, &v, "query", "provider", "provider", addr, "--output", "json")
		return v
	}

	before := balanceCLI(t, nw, node, addr)
	if res := tx("tx", "provider", "register", yamlPath, "--bond", "600000000ugpn"); res.Code != 0 {
		t.Fatalf("register failed: code %d: %s", res.Code, res.RawLog)
	}
	if got, want := balanceCLI(t, nw, node, addr), before-600_000_000-10_000; got != want {
		t.Errorf("balance after register = %d, want %d (bond and fee)", got, want)
	}
	v := query()
	p := v.Provider.Provider
	if p.HostURI != "https://gpu1.example.com:8443" || len(p.Gpus) != 1 || p.Gpus[0].Model != "h100" || p.Gpus[0].Count != 8 {
		t.Errorf("registered provider = %+v", p)
	}
	if p.Bond.Amount != "600000000" || p.Status != "PROVIDER_STATUS_ACTIVE" || v.Provider.Reliability != "0.250000000000000000" {
		t.Errorf("bond %s status %s reliability %s", p.Bond.Amount, p.Status, v.Provider.Reliability)
	}
	for _, model := range []string{"h100", "NVIDIA H100 PCIe"} {
		var list struct {
			Providers []struct{} `json:"providers"`
		}
		cli(t, nw, node, &list, "query", "provider", "by-gpu", model, "--output", "json")
		if len(list.Providers) != 1 {
			t.Errorf("by-gpu %q lists %d providers, want 1", model, len(list.Providers))
		}
	}

	// Registering twice is refused in the block with the module's own code.
	if res := tx("tx", "provider", "register", yamlPath, "--bond", "600000000ugpn"); res.Code != 3 || !strings.Contains(res.RawLog, "already registered") {
		t.Errorf("second register: code %d %q, want code 3 'already registered'", res.Code, res.RawLog)
	}
	// A malformed file is refused before anything is signed.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	raw, err := os.ReadFile(yamlPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(string(raw), "count: 8", "count: 0", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := nw.CLIOn(context.Background(), node, append([]string{"tx", "provider", "update", bad}, txFlags...)...); err == nil || !strings.Contains(err.Error(), "count must be") {
		t.Errorf("update from a file with count 0: err %v, output %s", err, out)
	}

	// Update: new host and GPUs.
	updated := filepath.Join(t.TempDir(), "provider.yaml")
	text := strings.Replace(string(raw), "gpu1.example.com", "gpu2.example.com", 1)
	text = strings.Replace(text, "model: NVIDIA H100 80GB HBM3", "model: NVIDIA GeForce RTX 4090", 1)
	if err := os.WriteFile(updated, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := tx("tx", "provider", "update", updated); res.Code != 0 {
		t.Fatalf("update failed: %s", res.RawLog)
	}
	if p := query().Provider.Provider; p.HostURI != "https://gpu2.example.com:8443" || p.Gpus[0].Model != "rtx4090" || p.Bond.Amount != "600000000" {
		t.Errorf("after update: %+v", p)
	}

	// The same record over REST.
	var rest providerView
	if code := httpJSON(t, "GET", node.APIURL()+"/gpunet/provider/v1/providers/"+addr, nil, &rest); code != 200 || rest.Provider.Provider.HostURI != "https://gpu2.example.com:8443" {
		t.Errorf("REST provider query: HTTP %d, %+v", code, rest.Provider.Provider)
	}

	// Unbond below min_bond (500 GPN): not eligible, coins back after 20 s.
	beforeUnbond := balanceCLI(t, nw, node, addr)
	if res := tx("tx", "provider", "unbond", "200000000ugpn"); res.Code != 0 {
		t.Fatalf("unbond failed: %s", res.RawLog)
	}
	v = query()
	if v.Provider.Provider.Bond.Amount != "400000000" || v.Provider.Provider.Status != "PROVIDER_STATUS_UNDERBONDED" || v.Provider.Unbonding.Amount != "200000000" {
		t.Errorf("after unbond: bond %s status %s unbonding %s", v.Provider.Provider.Bond.Amount, v.Provider.Provider.Status, v.Provider.Unbonding.Amount)
	}
	waitForBalance(t, nw, node, addr, beforeUnbond-10_000+200_000_000, 60*time.Second)

	// Deregister: the rest of the bond comes back too.
	beforeDereg := balanceCLI(t, nw, node, addr)
	if res := tx("tx", "provider", "deregister"); res.Code != 0 {
		t.Fatalf("deregister failed: %s", res.RawLog)
	}
	if _, err := nw.CLIOn(context.Background(), node, "query", "provider", "provider", addr, "--output", "json"); err == nil || !strings.Contains(err.Error(), "provider not found") {
		t.Errorf("deregistered provider still queryable: %v", err)
	}
	waitForBalance(t, nw, node, addr, beforeDereg-10_000+400_000_000, 60*time.Second)
}

func waitForBalance(t *testing.T, nw *localnet.Network, node *localnet.Node, addr string, want int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := balanceCLI(t, nw, node, addr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("balance of %s is %d, want %d after %s", addr, got, want, timeout)
		}
		time.Sleep(time.Second)
	}
}
