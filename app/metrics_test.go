package app_test

import (
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gpunet/gpunet/testutil/apptest"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// The node's gauges read the committed state: a bonded provider, and a
// deployment whose order is open for bids, with its escrow account.
func TestMetricsReadTheCommittedState(t *testing.T) {
	c := apptest.New(t, 2)
	tenant, prov := c.Accounts[0], c.Accounts[1]
	reg := prometheus.NewRegistry()
	if err := c.App.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	c.Do(time.Second, func(ctx sdk.Context) { registerBenchProvider(t, ctx, c, prov) })
	c.Do(time.Second, func(ctx sdk.Context) {
		hash := [32]byte{7}
		if _, err := marketkeeper.NewMsgServerImpl(c.App.MarketKeeper).CreateDeployment(ctx, &markettypes.MsgCreateDeployment{Owner: tenant.String(),
			Groups: []markettypes.GroupSpec{benchGroup()}, ManifestHash: hash[:], Deposit: sdk.NewInt64Coin("ugpn", 50_000_000), BidWindow: 5}); err != nil {
			t.Fatal(err)
		}
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"gpunet_open_orders":                                  1,
		"gpunet_escrow_accounts":                              1,
		"gpunet_escrow_balance_ugpn":                          50_000_000,
		"gpunet_leases,state=active":                          0,
		"gpunet_providers,bonded=true":                        1,
		"gpunet_sweep_backlog,module=escrow,queue=depletions": 0,
		"gpunet_sweep_parked,module=market":                   0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if got["gpunet_metrics_height"] < 2 {
		t.Errorf("read at height %v", got["gpunet_metrics_height"])
	}
}
