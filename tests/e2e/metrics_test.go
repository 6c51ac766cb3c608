package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads one metric's value from the node's Prometheus endpoint
// (-1 when absent).
func scrape(t *testing.T, url, metric string) float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	labels := ""
	if !strings.Contains(metric, "{") {
		labels = `(\{[^}]*\})?` // any labels (CometBFT's carry chain_id)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + labels + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(string(body))
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[len(m)-1], 64)
	return v
}

// TestMetricsGaugesMoveWhenALeaseOpens: the node's Prometheus endpoint
// serves CometBFT's metrics and gpunet's gauges, and the gauges follow the
// chain: an open order while the auction runs, then an active lease, an
// escrow account holding the deposit, and the bonded provider.
func TestMetricsGaugesMoveWhenALeaseOpens(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	url := nw.Nodes[0].MetricsURL()
	if url == "" {
		t.Fatal("the test network runs without metrics")
	}
	if v := scrape(t, url, `gpunet_leases{state="active"}`); v != 0 {
		t.Fatalf("active leases before any deployment: %v", v)
	}
	if v := scrape(t, url, "cometbft_consensus_height"); v <= 0 {
		t.Fatalf("CometBFT's own metrics are missing (height %v)", v)
	}
	startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000"})
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(leaseStatusText(t, nw, res.DSeq), "state active"); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("lease not active")
		}
	}
	// A reading serves scrapes for 10 s: wait for one taken after the start.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		if scrape(t, url, `gpunet_leases{state="active"}`) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gpunet_leases{state=\"active\"} never reached 1")
		}
	}
	if v := scrape(t, url, "gpunet_escrow_accounts"); v != 1 {
		t.Errorf("gpunet_escrow_accounts = %v, want 1", v)
	}
	if v := scrape(t, url, "gpunet_escrow_balance_ugpn"); v <= 0 || v > 50_000_000 {
		t.Errorf("gpunet_escrow_balance_ugpn = %v, want the deposit less what the lease paid", v)
	}
	if v := scrape(t, url, `gpunet_providers{bonded="true"}`); v != 1 {
		t.Errorf(`gpunet_providers{bonded="true"} = %v, want 1`, v)
	}
	if v := scrape(t, url, `gpunet_sweep_backlog{module="escrow",queue="depletions"}`); v != 0 {
		t.Errorf("escrow depletion backlog = %v, want 0", v)
	}
	if v := scrape(t, url, "gpunet_open_orders"); v != 0 {
		t.Errorf("open orders after the auction = %v, want 0", v)
	}
}
