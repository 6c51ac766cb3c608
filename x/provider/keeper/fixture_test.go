package keeper_test

import (
	"fmt"
	"testing"
	"time"

	"cosmossdk.io/core/header"
	sdkmath "cosmossdk.io/math"

	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"
	"github.com/cosmos/cosmos-sdk/runtime"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	"github.com/cosmos/cosmos-sdk/testutil"
	sdk "github.com/cosmos/cosmos-sdk/types"
	moduletestutil "github.com/cosmos/cosmos-sdk/types/module/testutil"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/testutil/fakebank"
	"github.com/gpunet/gpunet/x/provider"
	"github.com/gpunet/gpunet/x/provider/keeper"
	"github.com/gpunet/gpunet/x/provider/types"
)

const denom = "ugpn"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeBank adds the test's shorthand to the shared map-backed bank.
type fakeBank struct{ *fakebank.Bank }

func (b *fakeBank) balance(addr sdk.AccAddress) int64 { return b.Of(addr, denom) }

type fixture struct {
	t         *testing.T
	ctx       sdk.Context
	k         *keeper.Keeper
	msgs      types.MsgServer
	q         types.QueryServer
	bank      *fakeBank
	addrs     []sdk.AccAddress
	authority string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key := storetypes.NewKVStoreKey(types.StoreKey)
	tc := testutil.DefaultContextWithDB(t, key, storetypes.NewTransientStoreKey("transient"))
	ctx := tc.Ctx.WithHeaderInfo(header.Info{Height: 10, Time: t0}).WithBlockTime(t0)
	enc := moduletestutil.MakeTestEncodingConfig(provider.AppModule{})
	ac := addresscodec.NewBech32Codec("gpunet")
	authority, err := ac.BytesToString(authtypes.NewModuleAddress("gov"))
	if err != nil {
		t.Fatal(err)
	}
	bank := &fakeBank{fakebank.New()}
	k, err := keeper.NewKeeper(enc.Codec, ac, runtime.NewKVStoreService(key), runtime.EventService{}, runtime.ProvideHeaderInfoService(nil), bank, bank, authority)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.InitGenesis(ctx, *types.DefaultGenesis()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, k: k, msgs: keeper.NewMsgServerImpl(k), q: keeper.NewQueryServerImpl(k), bank: bank, authority: authority}
	for i := range 4 {
		addr := sdk.AccAddress(fmt.Appendf(nil, "provider-address-%03d", i))
		f.addrs = append(f.addrs, addr)
		bank.Fund(addr, sdk.NewInt64Coin(denom, 10_000_000_000), sdk.NewInt64Coin("uatom", 1_000_000))
	}
	return f
}

func (f *fixture) addr(i int) string {
	s, err := addresscodec.NewBech32Codec("gpunet").BytesToString(f.addrs[i])
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func coin(amt int64) sdk.Coin { return sdk.NewInt64Coin(denom, amt) }

func validRegister(owner string) *types.MsgRegisterProvider {
	return &types.MsgRegisterProvider{
		Owner:         owner,
		HostUri:       "https://gpu.example.com:8443",
		TlsCertSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Attributes:    []types.Attribute{{Key: "region", Value: "eu-west"}, {Key: "tier", Value: "datacenter"}},
		Gpus:          []types.GPU{{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Interface: "sxm", Count: 8}},
		Capacity:      types.Capacity{CpuMillis: 64_000, MemoryBytes: 512 << 30, StorageBytes: 2 << 40},
		Info:          types.Info{Email: "ops@example.com", Website: "https://example.com"},
		Bond:          coin(1_000_000_000),
	}
}

func (f *fixture) register(i int) {
	f.t.Helper()
	if _, err := f.msgs.RegisterProvider(f.ctx, validRegister(f.addr(i))); err != nil {
		f.t.Fatal(err)
	}
}

// nextBlock moves the block clock forward by dt and runs EndBlock.
func (f *fixture) nextBlock(dt time.Duration) {
	f.t.Helper()
	info := f.ctx.HeaderInfo()
	info.Height++
	info.Time = info.Time.Add(dt)
	f.ctx = f.ctx.WithHeaderInfo(info).WithBlockTime(info.Time).WithBlockHeight(info.Height)
	if err := f.k.EndBlocker(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

// checkInvariant fails the test when the module account and the books differ.
func (f *fixture) checkInvariant() {
	f.t.Helper()
	msg, err := f.k.BondInvariant(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if msg != "" {
		f.t.Fatal(msg)
	}
}

func moduleBalance(f *fixture) int64 {
	return f.bank.balance(authtypes.NewModuleAddress(types.ModuleName))
}

var _ = sdkmath.ZeroInt
