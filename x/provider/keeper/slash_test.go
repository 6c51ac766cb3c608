package keeper_test

import (
	"github.com/gpunet/gpunet/testutil/fakebank"

	"errors"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/x/provider/keeper"
	"github.com/gpunet/gpunet/x/provider/types"
)

func ints(v ...int64) []sdkmath.Int {
	out := make([]sdkmath.Int, len(v))
	for i, x := range v {
		out[i] = sdkmath.NewInt(x)
	}
	return out
}

func TestSlashAmounts(t *testing.T) {
	dec := sdkmath.LegacyMustNewDecFromStr
	cases := []struct {
		name        string
		fraction    string
		bond        int64
		unbonding   []int64
		total, from int64
		entries     []int64
	}{
		{"bond covers it", "0.05", 1000, []int64{500}, 75, 75, []int64{0}},
		{"rounds down, never creates coins", "0.05", 999, nil, 49, 49, nil}, // 49.95
		{"tiny fraction rounds to zero", "0.0001", 999, nil, 0, 0, nil},     // 0.0999
		{"spills into entries oldest first", "0.5", 100, []int64{100, 200}, 200, 100, []int64{100, 0}},
		{"whole stake", "1", 10, []int64{3, 4}, 17, 10, []int64{3, 4}},
		{"nothing bonded, only unbonding", "0.1", 0, []int64{55, 45}, 10, 0, []int64{10, 0}},
		{"zero fraction", "0", 10, []int64{5}, 0, 0, []int64{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			total, fromBond, fromEntries := keeper.SlashAmounts(dec(c.fraction), sdkmath.NewInt(c.bond), ints(c.unbonding...))
			if total.Int64() != c.total || fromBond.Int64() != c.from {
				t.Fatalf("total %s from bond %s, want %d and %d", total, fromBond, c.total, c.from)
			}
			sum := fromBond
			for i, e := range fromEntries {
				if e.Int64() != c.entries[i] {
					t.Errorf("entry %d pays %s, want %d", i, e, c.entries[i])
				}
				sum = sum.Add(e)
			}
			if !sum.Equal(total) {
				t.Errorf("parts add up to %s, total is %s", sum, total)
			}
		})
	}
}

func TestSlashPaysCommunityPoolFromBondThenUnbonding(t *testing.T) {
	f := newFixture(t)
	f.register(0)
	// 1,000,000,000 registered; unbond 600,000,000 → bond 400,000,000 + entry 600,000,000.
	if _, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(0), Amount: coin(600_000_000)}); err != nil {
		t.Fatal(err)
	}
	tenant := f.addrs[3]
	before, poolBefore := f.bank.balance(tenant), f.bank.balance(fakebank.PoolAddress)

	slashed, err := f.k.Slash(f.ctx, f.addrs[0], sdkmath.LegacyMustNewDecFromStr("0.5"), "provider_start_timeout", "lease-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slashed.Equal(coin(500_000_000)) {
		t.Fatalf("slashed %s, want 500000000ugpn", slashed)
	}
	if got := f.bank.balance(fakebank.PoolAddress); got != poolBefore+500_000_000 {
		t.Errorf("community pool received %d, want 500000000", got-poolBefore)
	}
	if got := f.bank.balance(tenant); got != before {
		t.Errorf("a counterparty received %d of the slash", got-before)
	}
	p, _ := f.k.GetProvider(f.ctx, f.addrs[0])
	if !p.Bond.IsZero() || p.Status != types.PROVIDER_STATUS_UNDERBONDED {
		t.Errorf("bond after slash %s status %s, want 0 and underbonded", p.Bond, p.Status)
	}
	entries, _ := f.k.OwnerUnbondings(f.ctx, f.addrs[0])
	if len(entries) != 1 || !entries[0].Amount.Equal(coin(500_000_000)) {
		t.Errorf("unbonding after slash = %+v, want 500000000ugpn", entries)
	}
	f.checkInvariant()

	// The reduced entry still pays out in full of what is left.
	owner := f.bank.balance(f.addrs[0])
	f.nextBlock(types.DefaultUnbondingPeriod + time.Second)
	if got := f.bank.balance(f.addrs[0]); got != owner+500_000_000 {
		t.Errorf("reduced entry paid %d", got-owner)
	}
	f.checkInvariant()
}

func TestSlashRefusesBadFraction(t *testing.T) {
	f := newFixture(t)
	f.register(0)
	for _, fr := range []string{"-0.1", "1.5"} {
		if _, err := f.k.Slash(f.ctx, f.addrs[0], sdkmath.LegacyMustNewDecFromStr(fr), "x", ""); !errors.Is(err, types.ErrInvalidSlash) {
			t.Errorf("fraction %s: got %v", fr, err)
		}
	}
	if got := moduleBalance(f); got != 1_000_000_000 {
		t.Errorf("refused slash moved coins: module holds %d", got)
	}
}

func TestStatsAndReliability(t *testing.T) {
	f := newFixture(t)
	f.register(0)
	for _, ev := range []keeper.StatEvent{keeper.StatLeaseWon, keeper.StatLeaseWon, keeper.StatStartedOnTime, keeper.StatStartFailure, keeper.StatClosedByProvider} {
		if err := f.k.RecordStat(f.ctx, f.addrs[0], ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.k.RecordStat(f.ctx, f.addrs[1], keeper.StatLeaseWon); err != nil {
		t.Fatalf("stat for an unregistered provider should be skipped, got %v", err)
	}
	res, err := f.q.Provider(f.ctx, &types.QueryProviderRequest{Owner: f.addr(0)})
	if err != nil {
		t.Fatal(err)
	}
	want := types.Stats{LeasesWon: 2, LeasesStartedOnTime: 1, StartFailures: 1, LeasesClosedByProvider: 1}
	if res.Provider.Provider.Stats != want {
		t.Errorf("stats = %+v, want %+v", res.Provider.Provider.Stats, want)
	}
	// on_time = 2/4, kept = 1/3 → 1/6
	if !res.Provider.Reliability.Equal(want.Reliability()) || want.Reliability().String() != "0.166666666666666666" {
		t.Errorf("reliability = %s (stats say %s)", res.Provider.Reliability, want.Reliability())
	}
}

func TestGenesisRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.register(0)
	f.register(1)
	if _, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(1), Amount: coin(7)}); err != nil {
		t.Fatal(err)
	}
	exported, err := f.k.ExportGenesis(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := newFixture(t)
	g.bank.Balances = f.bank.Balances // the module account's coins come with the chain
	if err := g.k.InitGenesis(g.ctx, *exported); err != nil {
		t.Fatal(err)
	}
	again, err := g.k.ExportGenesis(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exported.String() != again.String() {
		t.Fatalf("genesis changed across import:\n%s\n%s", exported, again)
	}
	g.checkInvariant()
	// Ids continue after import instead of reusing old ones.
	if _, err := g.msgs.Unbond(g.ctx, &types.MsgUnbond{Owner: g.addr(1), Amount: coin(1)}); err != nil {
		t.Fatal(err)
	}
	entries, _ := g.k.OwnerUnbondings(g.ctx, g.addrs[1])
	if len(entries) != 2 || entries[1].Id == entries[0].Id {
		t.Fatalf("entries after import = %+v", entries)
	}
}

func TestGenesisValidateRejectsInconsistentState(t *testing.T) {
	f := newFixture(t)
	f.register(0)
	gs, _ := f.k.ExportGenesis(f.ctx)
	dup := *gs
	dup.Providers = append(dup.Providers, dup.Providers[0])
	g := newFixture(t)
	if err := g.k.InitGenesis(g.ctx, dup); err == nil {
		t.Error("duplicate provider accepted")
	}
	foreign := *gs
	foreign.Providers = []types.Provider{gs.Providers[0]}
	foreign.Providers[0].Bond = sdk.NewInt64Coin("uatom", 1)
	if err := g.k.InitGenesis(g.ctx, foreign); err == nil {
		t.Error("foreign bond denom accepted")
	}
}

func TestProvidersPagination(t *testing.T) {
	f := newFixture(t)
	for i := range 4 {
		f.register(i)
	}
	seen := map[string]bool{}
	var key []byte
	for page := 0; page < 3; page++ {
		res, err := f.q.Providers(f.ctx, &types.QueryProvidersRequest{Pagination: &query.PageRequest{Key: key, Limit: 3}})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Providers {
			seen[v.Provider.Owner] = true
		}
		key = res.Pagination.NextKey
		if key == nil {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("paginated listing returned %d distinct providers, want 4", len(seen))
	}
}
