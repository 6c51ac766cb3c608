package keeper_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/core/header"

	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"
	"github.com/cosmos/cosmos-sdk/runtime"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	"github.com/cosmos/cosmos-sdk/testutil"
	sdk "github.com/cosmos/cosmos-sdk/types"
	moduletestutil "github.com/cosmos/cosmos-sdk/types/module/testutil"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/testutil/fakebank"
	"github.com/gpunet/gpunet/x/escrow"
	"github.com/gpunet/gpunet/x/escrow/keeper"
	"github.com/gpunet/gpunet/x/escrow/types"
)

const denom = "ugpn"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeBank adds the test's shorthand to the shared map-backed bank.
type fakeBank struct{ *fakebank.Bank }

func (b *fakeBank) of(addr sdk.AccAddress) int64 { return b.Of(addr, denom) }

// fakeMarket records depletion callbacks; it fails for the account of
// dseq failFor.
type fakeMarket struct {
	depleted []types.PaymentID
	failFor  uint64
	// billable[provider] is the provider's last attestation; overdue
	// providers are capped on close too.
	billable map[string]time.Time
	overdue  map[string]bool
}

func (m *fakeMarket) BillableUntil(_ context.Context, provider string, closing bool) (time.Time, bool, error) {
	t, ok := m.billable[provider]
	if !ok || (closing && !m.overdue[provider]) {
		return time.Time{}, false, nil
	}
	return t, true, nil
}

func (m *fakeMarket) OnAccountDepleted(_ context.Context, id types.AccountID, ps []types.PaymentID) error {
	if m.failFor != 0 && id.Dseq == m.failFor {
		return fmt.Errorf("market cannot close deployment %d", id.Dseq)
	}
	m.depleted = append(m.depleted, ps...)
	return nil
}

type fixture struct {
	t         testing.TB
	ctx       sdk.Context
	commit    func()
	k         *keeper.Keeper
	msgs      types.MsgServer
	q         types.QueryServer
	bank      *fakeBank
	market    *fakeMarket
	addrs     []sdk.AccAddress
	authority string
	ac        interface{ BytesToString([]byte) (string, error) }
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	key := storetypes.NewKVStoreKey(types.StoreKey)
	tc := testutil.DefaultContextWithDB(t, key, storetypes.NewTransientStoreKey("transient"))
	ctx := tc.Ctx.WithHeaderInfo(header.Info{Height: 1, Time: t0}).WithBlockTime(t0)
	enc := moduletestutil.MakeTestEncodingConfig(escrow.AppModule{})
	ac := addresscodec.NewBech32Codec("gpunet")
	authority, _ := ac.BytesToString(authtypes.NewModuleAddress("gov"))
	bank := &fakeBank{fakebank.New()}
	k, err := keeper.NewKeeper(enc.Codec, ac, runtime.NewKVStoreService(key), runtime.EventService{}, runtime.ProvideHeaderInfoService(nil), bank, bank, authtypes.FeeCollectorName, authority)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.InitGenesis(ctx, *types.DefaultGenesis()); err != nil {
		t.Fatal(err)
	}
	market := &fakeMarket{}
	k.SetHooks(market)
	f := &fixture{t: t, ctx: ctx, commit: func() { tc.CMS.Commit() }, k: k, msgs: keeper.NewMsgServerImpl(k), q: keeper.NewQueryServerImpl(k), bank: bank, market: market, authority: authority, ac: ac}
	for i := range 6 {
		addr := sdk.AccAddress(fmt.Appendf(nil, "escrow-test-addr-%03d", i))
		f.addrs = append(f.addrs, addr)
		bank.Fund(addr, sdk.NewInt64Coin(denom, 1_000_000_000_000), sdk.NewInt64Coin("uatom", 1000))
	}
	return f
}

func (f *fixture) addr(i int) string {
	s, err := f.ac.BytesToString(f.addrs[i])
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) accountID(owner int, dseq uint64) types.AccountID {
	return types.AccountID{Owner: f.addr(owner), Dseq: dseq}
}

func (f *fixture) paymentID(owner int, dseq uint64, provider int) types.PaymentID {
	return types.PaymentID{Account: f.accountID(owner, dseq), Gseq: 1, Oseq: 1, Provider: f.addr(provider)}
}

// advance moves the block clock by dt and runs EndBlock.
func (f *fixture) advance(dt time.Duration) {
	f.t.Helper()
	info := f.ctx.HeaderInfo()
	info.Height++
	info.Time = info.Time.Add(dt)
	f.ctx = f.ctx.WithHeaderInfo(info).WithBlockTime(info.Time).WithBlockHeight(info.Height)
	if err := f.k.EndBlocker(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) checkInvariant() {
	f.t.Helper()
	msg, err := f.k.BalanceInvariant(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if msg != "" {
		f.t.Fatal(msg)
	}
}

func coin(n int64) sdk.Coin { return sdk.NewInt64Coin(denom, n) }

func feeCollector(f *fixture) int64 {
	return f.bank.of(authtypes.NewModuleAddress(authtypes.FeeCollectorName))
}

// The balance invariant sees coins in the module when no account owes
// them, in any denom: with no account at all there used to be no denom to
// compare, so ugpn nobody owned passed unseen.
func TestBalanceInvariantSeesCoinsNoAccountOwes(t *testing.T) {
	f := newFixture(t)
	f.checkInvariant()
	for _, c := range []sdk.Coin{coin(1), sdk.NewInt64Coin("uother", 5)} {
		g := newFixture(t)
		g.bank.Fund(authtypes.NewModuleAddress(types.ModuleName), c)
		msg, err := g.k.BalanceInvariant(g.ctx)
		if err != nil || !strings.Contains(msg, "escrow module account holds "+c.String()) {
			t.Errorf("module holding %s with no account: %q (%v)", c, msg, err)
		}
	}
}
