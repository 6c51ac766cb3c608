package types_test

import (
	"strings"
	"testing"

	sdkmath "cosmossdk.io/math"
	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/x/market/types"
)

func validGenesis(t *testing.T) types.GenesisState {
	ac := addresscodec.NewBech32Codec("gpunet")
	addr := func(s string) string {
		a, err := ac.BytesToString([]byte(s + strings.Repeat("_", 20-len(s))))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	owner, prov := addr("owner"), addr("prov")
	price := sdk.NewDecCoin("ugpn", sdkmath.NewInt(1000))
	deposit := sdk.NewInt64Coin("ugpn", 1_000_000)
	open := types.OrderID{Owner: owner, Dseq: 3, Gseq: 1, Oseq: 1}
	matched := types.OrderID{Owner: owner, Dseq: 3, Gseq: 2, Oseq: 1}
	gs := types.DefaultGenesis()
	gs.NextDseq, gs.NextBidSeq = 4, 10
	gs.Deployments = []types.Deployment{{Owner: owner, Dseq: 3, State: types.DEPLOYMENT_STATE_ACTIVE, Groups: 2, Deposit: sdk.NewInt64Coin("ugpn", 5_000_000)}}
	gs.Orders = []types.Order{
		{Id: open, State: types.ORDER_STATE_OPEN, BidClosesAt: 10, ExpiresAt: 100},
		{Id: matched, State: types.ORDER_STATE_MATCHED},
	}
	gs.Bids = []types.Bid{{Id: types.BidID{Order: open, Provider: prov}, Price: price, Deposit: deposit, Seq: 9}}
	gs.Leases = []types.Lease{{Id: types.BidID{Order: matched, Provider: prov}, Price: price, State: types.LEASE_STATE_ACTIVE, BidDeposit: deposit}}
	gone := types.BidID{Order: types.OrderID{Owner: owner, Dseq: 2, Gseq: 1, Oseq: 1}, Provider: prov}
	gs.DisputableCloses = []types.DisputableClose{{Lease: gone, ManifestHash: make([]byte, 32), Fee: sdk.NewInt64Coin("ugpn", 1766), ClosedAt: 5, DisputeUntil: 20}}
	gs.Attestations = []types.ProviderAttestation{{Provider: prov, Attestation: types.Attestation{Height: 4, ActiveLeases: 1, Deadline: 64}}}
	gs.DownLeases = []types.GenesisDownLease{{Lease: gs.Leases[0].Id, Down: types.DownLease{Count: 1, Since: 4}}}
	return *gs
}

func TestGenesisValidate(t *testing.T) {
	ac := addresscodec.NewBech32Codec("gpunet")
	if err := validGenesis(t).Validate(ac); err != nil {
		t.Fatalf("valid genesis refused: %v", err)
	}
	if err := types.DefaultGenesis().Validate(ac); err != nil {
		t.Fatalf("default genesis refused: %v", err)
	}
	for name, c := range map[string]struct {
		edit func(*types.GenesisState)
		want string
	}{
		"next_dseq zero":            {func(g *types.GenesisState) { g.NextDseq = 0 }, "next_dseq"},
		"dseq beyond next_dseq":     {func(g *types.GenesisState) { g.NextDseq = 3 }, "dseq must be in"},
		"dseq past the key layout":  {func(g *types.GenesisState) { setDseq(g, 1<<56); g.NextDseq = 1<<56 + 1 }, "largest the store keys hold"},
		"bad owner":                 {func(g *types.GenesisState) { g.Deployments[0].Owner = "cosmos1xyz" }, "deployments[0]: owner"},
		"duplicate deployment":      {func(g *types.GenesisState) { g.Deployments = append(g.Deployments, g.Deployments[0]) }, "duplicate"},
		"closed deployment":         {func(g *types.GenesisState) { g.Deployments[0].State = types.DEPLOYMENT_STATE_UNSPECIFIED }, "only active"},
		"too many groups":           {func(g *types.GenesisState) { g.Deployments[0].Groups = 99 }, "groups, want"},
		"orphan order":              {func(g *types.GenesisState) { g.Orders[0].Id.Dseq = 2 }, "deployment does not exist"},
		"gseq beyond groups":        {func(g *types.GenesisState) { g.Orders[0].Id.Gseq = 3 }, "gseq must be in"},
		"duplicate order":           {func(g *types.GenesisState) { g.Orders = append(g.Orders, g.Orders[0]) }, "duplicate"},
		"auction after expiry":      {func(g *types.GenesisState) { g.Orders[0].BidClosesAt = 200 }, "after expires_at"},
		"bid on a matched order":    {func(g *types.GenesisState) { g.Bids[0].Id.Order.Gseq = 2 }, "not open"},
		"bid seq not below next":    {func(g *types.GenesisState) { g.Bids[0].Seq = 10 }, "next_bid_seq"},
		"zero bid price":            {func(g *types.GenesisState) { g.Bids[0].Price.Amount = sdkmath.LegacyZeroDec() }, "price"},
		"duplicate bid":             {func(g *types.GenesisState) { g.Bids = append(g.Bids, g.Bids[0]) }, "duplicate"},
		"lease on an open order":    {func(g *types.GenesisState) { g.Leases[0].Id.Order.Gseq = 1 }, "not matched"},
		"two leases on one order":   {func(g *types.GenesisState) { g.Leases = append(g.Leases, g.Leases[0]) }, "another lease"},
		"closed lease":              {func(g *types.GenesisState) { g.Leases[0].State = types.LEASE_STATE_UNSPECIFIED }, "only pending and active"},
		"matched without lease":     {func(g *types.GenesisState) { g.Leases = nil }, "no lease"},
		"bad lease provider":        {func(g *types.GenesisState) { g.Leases[0].Id.Provider = "nope" }, "provider"},
		"duplicate disputable":      {func(g *types.GenesisState) { g.DisputableCloses = append(g.DisputableCloses, g.DisputableCloses[0]) }, "duplicate"},
		"disputable without hash":   {func(g *types.GenesisState) { g.DisputableCloses[0].ManifestHash = nil }, "32-byte manifest hash"},
		"dispute window reversed":   {func(g *types.GenesisState) { g.DisputableCloses[0].DisputeUntil = 1 }, "dispute_until"},
		"disputable bad provider":   {func(g *types.GenesisState) { g.DisputableCloses[0].Lease.Provider = "nope" }, "disputable_closes[0]"},
		"attestation bad provider":  {func(g *types.GenesisState) { g.Attestations[0].Provider = "nope" }, "attestations[0]: provider"},
		"duplicate attestation":     {func(g *types.GenesisState) { g.Attestations = append(g.Attestations, g.Attestations[0]) }, "attestations[1]"},
		"down lease not active":     {func(g *types.GenesisState) { g.Leases[0].State = types.LEASE_STATE_PENDING }, "down_leases[0]"},
		"down lease counted zero":   {func(g *types.GenesisState) { g.DownLeases[0].Down.Count = 0 }, "count must be at least 1"},
		"duplicate down lease":      {func(g *types.GenesisState) { g.DownLeases = append(g.DownLeases, g.DownLeases[0]) }, "down_leases[1]"},
		"manifest timeout too long": {func(g *types.GenesisState) { g.Params.ManifestTimeout = g.Params.StartTimeout }, "manifest_timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			g := validGenesis(t)
			c.edit(&g)
			err := g.Validate(ac)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}

// setDseq moves the valid genesis's deployment, with its orders, bids and
// leases, to dseq.
func setDseq(g *types.GenesisState, dseq uint64) {
	for i := range g.Deployments {
		g.Deployments[i].Dseq = dseq
	}
	for i := range g.Orders {
		g.Orders[i].Id.Dseq = dseq
	}
	for i := range g.Bids {
		g.Bids[i].Id.Order.Dseq = dseq
	}
	for i := range g.Leases {
		g.Leases[i].Id.Order.Dseq = dseq
	}
	for i := range g.DisputableCloses {
		g.DisputableCloses[i].Lease.Order.Dseq = dseq
	}
	for i := range g.DownLeases {
		g.DownLeases[i].Lease.Order.Dseq = dseq
	}
}
