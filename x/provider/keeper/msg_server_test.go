package keeper_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"

	"github.com/gpunet/gpunet/x/provider/keeper"
	"github.com/gpunet/gpunet/x/provider/types"
)

func TestRegisterProvider(t *testing.T) {
	f := newFixture(t)
	before := f.bank.balance(f.addrs[0])
	f.register(0)

	if got := f.bank.balance(f.addrs[0]); got != before-1_000_000_000 {
		t.Errorf("owner balance %d, want %d", got, before-1_000_000_000)
	}
	if got := moduleBalance(f); got != 1_000_000_000 {
		t.Errorf("module balance %d, want the bond", got)
	}
	res, err := f.q.Provider(f.ctx, &types.QueryProviderRequest{Owner: f.addr(0)})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Provider.Provider
	if p.Status != types.PROVIDER_STATUS_ACTIVE || !p.Bond.Equal(coin(1_000_000_000)) || p.HostUri != "https://gpu.example.com:8443" {
		t.Errorf("stored provider = %+v", p)
	}
	if !res.Provider.Reliability.Equal(sdkmath.LegacyNewDecWithPrec(25, 2)) {
		t.Errorf("new provider reliability = %s, want 0.25", res.Provider.Reliability)
	}
	if ok, err := f.eligible(0); err != nil || !ok {
		t.Errorf("registered provider not eligible: %v %v", ok, err)
	}
	events := f.ctx.EventManager().Events()
	if len(events) == 0 || events[len(events)-1].Type != "gpunet.provider.v1.EventProviderRegistered" {
		t.Errorf("no EventProviderRegistered: %v", events)
	}
	f.checkInvariant()
}

func TestRegisterProviderRejectsBadInput(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*types.MsgRegisterProvider)
		want   error
		text   string
	}{
		{"bad owner", func(m *types.MsgRegisterProvider) { m.Owner = "gpunet1nope" }, types.ErrInvalidAddress, "owner"},
		{"http uri", func(m *types.MsgRegisterProvider) { m.HostUri = "http://gpu.example.com" }, types.ErrInvalidHostURI, "must use https"},
		{"uri without host", func(m *types.MsgRegisterProvider) { m.HostUri = "https://" }, types.ErrInvalidHostURI, "no host"},
		{"uri with credentials", func(m *types.MsgRegisterProvider) { m.HostUri = "https://a:b@gpu.example.com" }, types.ErrInvalidHostURI, "credentials"},
		{"empty uri", func(m *types.MsgRegisterProvider) { m.HostUri = "" }, types.ErrInvalidHostURI, "empty"},
		{"short cert hash", func(m *types.MsgRegisterProvider) { m.TlsCertSha256 = "abcd" }, types.ErrInvalidCertHash, "64 hex digits"},
		{"upper-case cert hash", func(m *types.MsgRegisterProvider) { m.TlsCertSha256 = strings.ToUpper(m.TlsCertSha256) }, types.ErrInvalidCertHash, "lower-case"},
		{"non-hex cert hash", func(m *types.MsgRegisterProvider) { m.TlsCertSha256 = strings.Repeat("z", 64) }, types.ErrInvalidCertHash, "not hex"},
		{"zero gpu count", func(m *types.MsgRegisterProvider) { m.Gpus[0].Count = 0 }, types.ErrInvalidGPU, "count must be"},
		{"zero gpu memory", func(m *types.MsgRegisterProvider) { m.Gpus[0].MemoryMib = 0 }, types.ErrInvalidGPU, "memory_mib"},
		{"gpu name not slug", func(m *types.MsgRegisterProvider) { m.Gpus[0].Model = "NVIDIA H100 80GB HBM3" }, types.ErrInvalidGPU, `did you mean "h100"`},
		{"duplicate gpu", func(m *types.MsgRegisterProvider) { m.Gpus = append(m.Gpus, m.Gpus[0]) }, types.ErrInvalidGPU, "duplicate"},
		{"duplicate attribute", func(m *types.MsgRegisterProvider) { m.Attributes = append(m.Attributes, m.Attributes[0]) }, types.ErrInvalidAttributes, "duplicate key"},
		{"bad attribute key", func(m *types.MsgRegisterProvider) { m.Attributes[0].Key = "Region Name" }, types.ErrInvalidAttributes, "key"},
		{"no cpu", func(m *types.MsgRegisterProvider) { m.Capacity.CpuMillis = 0 }, types.ErrInvalidCapacity, "cpu_millis"},
		{"bad email", func(m *types.MsgRegisterProvider) { m.Info.Email = "not an email" }, types.ErrInvalidInfo, "email"},
		{"foreign bond denom", func(m *types.MsgRegisterProvider) { m.Bond = sdk.NewInt64Coin("uatom", 1_000_000_000) }, types.ErrInvalidDenom, `"uatom"`},
		{"bond below minimum", func(m *types.MsgRegisterProvider) { m.Bond = coin(499_999_999) }, types.ErrBondBelowMinimum, "below the minimum 500000000ugpn"},
		{"bond beyond funds", func(m *types.MsgRegisterProvider) { m.Bond = coin(20_000_000_000) }, sdkerrors.ErrInsufficientFunds, "smaller than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.bank.balance(f.addrs[0])
			msg := validRegister(f.addr(0))
			c.mutate(msg)
			_, err := f.msgs.RegisterProvider(f.ctx, msg)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("got %v, want %v containing %q", err, c.want, c.text)
			}
			if got := f.bank.balance(f.addrs[0]); got != before {
				t.Errorf("balance moved to %d on a refused registration", got)
			}
			if has, _ := f.k.Providers.Has(f.ctx, f.addrs[0]); has {
				t.Error("refused registration left a provider record")
			}
		})
	}
}

func TestRegisterTwiceRefused(t *testing.T) {
	f := newFixture(t)
	f.register(0)
	_, err := f.msgs.RegisterProvider(f.ctx, validRegister(f.addr(0)))
	if !errors.Is(err, types.ErrProviderExists) {
		t.Fatalf("got %v, want ErrProviderExists", err)
	}
	if got := moduleBalance(f); got != 1_000_000_000 {
		t.Errorf("second registration moved a bond: module holds %d", got)
	}
}

func TestUpdateProvider(t *testing.T) {
	f := newFixture(t)
	upd := &types.MsgUpdateProvider{
		Owner: f.addr(0), HostUri: "https://new.example.com", TlsCertSha256: strings.Repeat("ab", 32),
		Gpus:     []types.GPU{{Vendor: "nvidia", Model: "rtx4090", MemoryMib: 24564, Interface: "pcie", Count: 2}},
		Capacity: types.Capacity{CpuMillis: 16_000, MemoryBytes: 64 << 30},
	}
	if _, err := f.msgs.UpdateProvider(f.ctx, upd); !errors.Is(err, types.ErrProviderNotFound) {
		t.Fatalf("update of unknown provider: got %v", err)
	}
	f.register(0)
	if _, err := f.msgs.UpdateProvider(f.ctx, upd); err != nil {
		t.Fatal(err)
	}
	p, err := f.k.GetProvider(f.ctx, f.addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.HostUri != "https://new.example.com" || !p.Bond.Equal(coin(1_000_000_000)) || len(p.Attributes) != 0 {
		t.Errorf("updated provider = %+v", p)
	}
	for model, want := range map[string]int{"h100": 0, "rtx4090": 1} {
		res, err := f.q.ProvidersByGPU(f.ctx, &types.QueryProvidersByGPURequest{Model: model})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Providers) != want {
			t.Errorf("providers with %s: %d, want %d", model, len(res.Providers), want)
		}
	}
	bad := *upd
	bad.HostUri = "ftp://x"
	if _, err := f.msgs.UpdateProvider(f.ctx, &bad); !errors.Is(err, types.ErrInvalidHostURI) {
		t.Fatalf("bad update: got %v", err)
	}
}

func TestBondAndUnbond(t *testing.T) {
	f := newFixture(t)
	if _, err := f.msgs.Bond(f.ctx, &types.MsgBond{Owner: f.addr(0), Amount: coin(1)}); !errors.Is(err, types.ErrProviderNotFound) {
		t.Fatalf("bond of unknown provider: got %v", err)
	}
	f.register(0)
	if _, err := f.msgs.Bond(f.ctx, &types.MsgBond{Owner: f.addr(0), Amount: sdk.NewInt64Coin("uatom", 5)}); !errors.Is(err, types.ErrInvalidDenom) {
		t.Fatalf("foreign denom bond: got %v", err)
	}
	if _, err := f.msgs.Bond(f.ctx, &types.MsgBond{Owner: f.addr(0), Amount: coin(0)}); !errors.Is(err, types.ErrInvalidAmount) {
		t.Fatalf("zero bond: got %v", err)
	}
	if _, err := f.msgs.Bond(f.ctx, &types.MsgBond{Owner: f.addr(0), Amount: coin(250_000_000)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(0), Amount: coin(1_250_000_001)}); !errors.Is(err, types.ErrInsufficientBond) {
		t.Fatalf("unbond beyond bond: got %v", err)
	}
	// Unbond below min_bond: allowed, but the provider may no longer bid.
	res, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(0), Amount: coin(1_000_000_000)})
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(types.DefaultUnbondingPeriod).Unix(); res.CompletionTimeUnix != want {
		t.Errorf("completion %d, want %d", res.CompletionTimeUnix, want)
	}
	p, _ := f.k.GetProvider(f.ctx, f.addrs[0])
	if !p.Bond.Equal(coin(250_000_000)) || p.Status != types.PROVIDER_STATUS_UNDERBONDED {
		t.Errorf("after unbond: bond %s status %s", p.Bond, p.Status)
	}
	if ok, _ := f.eligible(0); ok {
		t.Error("underbonded provider is eligible")
	}
	f.checkInvariant()

	before := f.bank.balance(f.addrs[0])
	f.nextBlock(types.DefaultUnbondingPeriod - time.Second)
	if got := f.bank.balance(f.addrs[0]); got != before {
		t.Fatalf("unbonding paid %d early", got-before)
	}
	f.nextBlock(time.Second)
	if got := f.bank.balance(f.addrs[0]); got != before+1_000_000_000 {
		t.Fatalf("unbonding at maturity: balance %d, want %d", got, before+1_000_000_000)
	}
	entries, _ := f.k.OwnerUnbondings(f.ctx, f.addrs[0])
	if len(entries) != 0 {
		t.Errorf("matured entry still queued: %+v", entries)
	}
	f.checkInvariant()
}

func TestUnbondingQueueIsBoundedPerBlock(t *testing.T) {
	f := newFixture(t)
	params, _ := f.k.Params.Get(f.ctx)
	params.MaxUnbondingsPerBlock = 2
	params.UnbondingPeriod = time.Minute
	if _, err := f.msgs.UpdateParams(f.ctx, &types.MsgUpdateParams{Authority: f.authority, Params: params}); err != nil {
		t.Fatal(err)
	}
	f.register(0)
	for range 5 {
		if _, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(0), Amount: coin(10)}); err != nil {
			t.Fatal(err)
		}
	}
	start := f.bank.balance(f.addrs[0])
	paid := func() int64 { return f.bank.balance(f.addrs[0]) - start }

	f.nextBlock(2 * time.Minute) // all five are due; two per block
	if paid() != 20 {
		t.Fatalf("first block paid %d, want 20", paid())
	}
	f.nextBlock(time.Second)
	if paid() != 40 {
		t.Fatalf("second block paid %d in all, want 40", paid())
	}
	f.nextBlock(time.Second)
	if paid() != 50 {
		t.Fatalf("third block paid %d in all, want 50", paid())
	}
	f.nextBlock(time.Second)
	if paid() != 50 {
		t.Fatalf("paid %d after the queue emptied", paid())
	}
	f.checkInvariant()
}

func TestUnbondingEntriesPerProviderAreCapped(t *testing.T) {
	f := newFixture(t)
	f.register(0)
	for range keeper.MaxUnbondingEntries {
		if _, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(0), Amount: coin(10)}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := f.k.GetProvider(f.ctx, f.addrs[0])
	if _, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(0), Amount: coin(10)}); !errors.Is(err, types.ErrTooManyUnbondings) {
		t.Fatalf("unbond beyond the cap: %v, want ErrTooManyUnbondings", err)
	}
	after, _ := f.k.GetProvider(f.ctx, f.addrs[0])
	if !after.Bond.Equal(before.Bond) {
		t.Fatalf("refused unbond moved the bond: %s → %s", before.Bond, after.Bond)
	}
	f.checkInvariant()
}

// TestUnbondingSweepSkipsAStaleEntry: a queue entry without its unbonding
// record is dropped and logged instead of failing EndBlock (which would
// halt the chain); the sound entry due in the same block is paid.
func TestUnbondingSweepSkipsAStaleEntry(t *testing.T) {
	f := newFixture(t)
	params, _ := f.k.Params.Get(f.ctx)
	params.UnbondingPeriod = time.Minute
	if _, err := f.msgs.UpdateParams(f.ctx, &types.MsgUpdateParams{Authority: f.authority, Params: params}); err != nil {
		t.Fatal(err)
	}
	f.register(0)
	if _, err := f.msgs.Unbond(f.ctx, &types.MsgUnbond{Owner: f.addr(0), Amount: coin(10)}); err != nil {
		t.Fatal(err)
	}
	stale := collections.Join(f.ctx.HeaderInfo().Time, uint64(9_999))
	if err := f.k.UnbondingQueue.Set(f.ctx, stale); err != nil {
		t.Fatal(err)
	}
	start := f.bank.balance(f.addrs[0])
	f.nextBlock(2 * time.Minute)
	if got := f.bank.balance(f.addrs[0]) - start; got != 10 {
		t.Fatalf("paid %d, want the sound entry's 10", got)
	}
	if has, err := f.k.UnbondingQueue.Has(f.ctx, stale); err != nil || has {
		t.Fatalf("stale entry still queued (err %v)", err)
	}
	f.checkInvariant()
}

func TestDeregisterProvider(t *testing.T) {
	f := newFixture(t)
	if _, err := f.msgs.DeregisterProvider(f.ctx, &types.MsgDeregisterProvider{Owner: f.addr(0)}); !errors.Is(err, types.ErrProviderNotFound) {
		t.Fatalf("deregister unknown: got %v", err)
	}
	f.register(0)
	market := &fakeMarket{busy: map[string]bool{f.addrs[0].String(): true}}
	f.k.SetMarketKeeper(market)
	if _, err := f.msgs.DeregisterProvider(f.ctx, &types.MsgDeregisterProvider{Owner: f.addr(0)}); !errors.Is(err, types.ErrProviderBusy) {
		t.Fatalf("deregister with live leases: got %v", err)
	}
	if has, _ := f.k.Providers.Has(f.ctx, f.addrs[0]); !has {
		t.Fatal("busy provider was removed")
	}
	market.busy = nil
	if _, err := f.msgs.DeregisterProvider(f.ctx, &types.MsgDeregisterProvider{Owner: f.addr(0)}); err != nil {
		t.Fatal(err)
	}
	if has, _ := f.k.Providers.Has(f.ctx, f.addrs[0]); has {
		t.Fatal("deregistered provider still stored")
	}
	res, err := f.q.ProvidersByGPU(f.ctx, &types.QueryProvidersByGPURequest{Model: "h100"})
	if err != nil || len(res.Providers) != 0 {
		t.Fatalf("deregistered provider still indexed by gpu: %v %v", res, err)
	}
	entries, _ := f.k.OwnerUnbondings(f.ctx, f.addrs[0])
	if len(entries) != 1 || !entries[0].Amount.Equal(coin(1_000_000_000)) {
		t.Fatalf("whole bond should be unbonding, got %+v", entries)
	}
	f.checkInvariant()
	before := f.bank.balance(f.addrs[0])
	f.nextBlock(types.DefaultUnbondingPeriod)
	if got := f.bank.balance(f.addrs[0]); got != before+1_000_000_000 {
		t.Fatalf("bond did not come back: %d", got-before)
	}
}

type fakeMarket struct{ busy map[string]bool }

func (m *fakeMarket) ProviderHasLiveWork(_ context.Context, owner sdk.AccAddress) (bool, error) {
	return m.busy[owner.String()], nil
}

func TestUpdateParams(t *testing.T) {
	f := newFixture(t)
	p := types.DefaultParams()
	if _, err := f.msgs.UpdateParams(f.ctx, &types.MsgUpdateParams{Authority: f.addr(0), Params: p}); !errors.Is(err, types.ErrUnauthorized) {
		t.Fatalf("non-authority: got %v", err)
	}
	bad := p
	bad.StartFailureSlash = sdkmath.LegacyNewDec(2)
	if _, err := f.msgs.UpdateParams(f.ctx, &types.MsgUpdateParams{Authority: f.authority, Params: bad}); !errors.Is(err, types.ErrInvalidParams) {
		t.Fatalf("slash > 1: got %v", err)
	}
	bad = p
	bad.MinBond = sdk.NewInt64Coin("uatom", 1)
	if _, err := f.msgs.UpdateParams(f.ctx, &types.MsgUpdateParams{Authority: f.authority, Params: bad}); !errors.Is(err, types.ErrInvalidParams) {
		t.Fatalf("denom change: got %v", err)
	}
	f.register(0)
	p.MinBond = coin(2_000_000_000)
	if _, err := f.msgs.UpdateParams(f.ctx, &types.MsgUpdateParams{Authority: f.authority, Params: p}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.eligible(0); ok {
		t.Error("raising min_bond above a provider's bond left it eligible")
	}
}

// eligible reports whether provider i is registered and bonded at min_bond,
// i.e. may bid.
func (f *fixture) eligible(i int) (bool, error) {
	p, err := f.k.Providers.Get(f.ctx, f.addrs[i])
	if errors.Is(err, collections.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return f.k.HasMinBond(f.ctx, p)
}
