package keeper_test

import (
	"context"
	"strings"
	"testing"

	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"
	"github.com/cosmos/cosmos-sdk/runtime"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"
	"github.com/cosmos/cosmos-sdk/testutil"
	sdk "github.com/cosmos/cosmos-sdk/types"
	moduletestutil "github.com/cosmos/cosmos-sdk/types/module/testutil"

	_ "github.com/gpunet/gpunet/app/params" // gpunet's bech32 prefixes
	"github.com/gpunet/gpunet/x/audit"
	"github.com/gpunet/gpunet/x/audit/keeper"
	"github.com/gpunet/gpunet/x/audit/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

type fixture struct {
	ctx  context.Context
	k    *keeper.Keeper
	msgs types.MsgServer
	q    types.QueryServer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key := storetypes.NewKVStoreKey(types.StoreKey)
	tc := testutil.DefaultContextWithDB(t, key, storetypes.NewTransientStoreKey("transient"))
	enc := moduletestutil.MakeTestEncodingConfig(audit.AppModule{})
	k, err := keeper.NewKeeper(enc.Codec, addresscodec.NewBech32Codec("gpunet"), runtime.NewKVStoreService(key), runtime.EventService{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{ctx: tc.Ctx, k: k, msgs: keeper.NewMsgServerImpl(k), q: keeper.NewQueryServerImpl(k)}
}

func addr(b byte) string { return sdk.AccAddress(append(make([]byte, 19), b)).String() }

func attrs(kv ...string) []providertypes.Attribute {
	var out []providertypes.Attribute
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, providertypes.Attribute{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestSignMergesRevokeWithdrawsAndQueriesAgree(t *testing.T) {
	f := newFixture(t)
	prov, auditor, other := addr(1), addr(2), addr(3)
	if _, err := f.msgs.SignProviderAttributes(f.ctx, &types.MsgSignProviderAttributes{Auditor: auditor, Owner: prov, Attributes: attrs("tier", "gold", "region", "eu")}); err != nil {
		t.Fatal(err)
	}
	// Signing again replaces one value and adds a key; the rest stays.
	if _, err := f.msgs.SignProviderAttributes(f.ctx, &types.MsgSignProviderAttributes{Auditor: auditor, Owner: prov, Attributes: attrs("region", "us", "gpu", "h100")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.msgs.SignProviderAttributes(f.ctx, &types.MsgSignProviderAttributes{Auditor: other, Owner: prov, Attributes: attrs("region", "us")}); err != nil {
		t.Fatal(err)
	}
	res, err := f.q.ProviderAuditorAttributes(f.ctx, &types.QueryProviderAuditorAttributesRequest{Owner: prov, Auditor: auditor})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Attributes.Attributes; len(got) != 3 || got[0].Key != "gpu" || got[1].Value != "us" || got[2].Key != "tier" {
		t.Fatalf("merged, sorted attributes: %v", got)
	}
	all, err := f.q.ProviderAttributes(f.ctx, &types.QueryProviderAttributesRequest{Owner: prov})
	if err != nil || len(all.Attributes) != 2 {
		t.Fatalf("provider's auditors: %v %v", all, err)
	}
	byAuditor, err := f.q.AuditorAttributes(f.ctx, &types.QueryAuditorAttributesRequest{Auditor: other})
	if err != nil || len(byAuditor.Attributes) != 1 || byAuditor.Attributes[0].Owner != prov {
		t.Fatalf("auditor's providers: %v %v", byAuditor, err)
	}

	// Satisfies: requirements signed by the named auditors only.
	provAddr := sdk.MustAccAddressFromBech32(prov)
	for _, c := range []struct {
		reqs         []providertypes.Attribute
		allOf, anyOf []string
		want         bool
	}{
		{attrs("region", "us"), []string{auditor, other}, nil, true},
		{attrs("region", "us", "gpu", "h100"), []string{auditor, other}, nil, false}, // other did not sign gpu
		{attrs("region", "us", "gpu", "h100"), nil, []string{other, auditor}, true},
		{attrs("region", "eu"), nil, []string{auditor}, false}, // replaced by us
		{nil, []string{auditor}, nil, true},                    // no requirements: signed anything
		{nil, []string{addr(9)}, nil, false},                   // an auditor who signed nothing
		{attrs("region", "us"), nil, nil, true},
	} {
		got, err := f.k.Satisfies(f.ctx, provAddr, c.reqs, c.allOf, c.anyOf)
		if err != nil || got != c.want {
			t.Errorf("Satisfies(%v, all %v, any %v) = %v %v, want %v", c.reqs, c.allOf, c.anyOf, got, err, c.want)
		}
	}

	// Revoking one key, then the rest, removes the entry and its index.
	if _, err := f.msgs.DeleteProviderAttributes(f.ctx, &types.MsgDeleteProviderAttributes{Auditor: auditor, Owner: prov, Keys: []string{"gpu"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.msgs.DeleteProviderAttributes(f.ctx, &types.MsgDeleteProviderAttributes{Auditor: auditor, Owner: prov}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.q.ProviderAuditorAttributes(f.ctx, &types.QueryProviderAuditorAttributesRequest{Owner: prov, Auditor: auditor}); err == nil {
		t.Fatal("revoked attributes still answered")
	}
	if _, err := f.msgs.DeleteProviderAttributes(f.ctx, &types.MsgDeleteProviderAttributes{Auditor: auditor, Owner: prov}); err == nil || !strings.Contains(err.Error(), "signed nothing") {
		t.Fatalf("revoking nothing: %v", err)
	}
	if msg, err := f.k.IndexInvariant(f.ctx); msg != "" || err != nil {
		t.Fatalf("invariant: %q %v", msg, err)
	}

	// Export and import into a fresh store give the same state.
	gs, err := f.k.ExportGenesis(f.ctx)
	if err != nil || len(gs.Attributes) != 1 {
		t.Fatalf("export %v %v", gs, err)
	}
	g := newFixture(t)
	if err := g.k.InitGenesis(g.ctx, *gs); err != nil {
		t.Fatal(err)
	}
	if msg, err := g.k.IndexInvariant(g.ctx); msg != "" || err != nil {
		t.Fatalf("invariant after import: %q %v", msg, err)
	}
}

func TestBadMessagesChangeNothing(t *testing.T) {
	f := newFixture(t)
	prov, auditor := addr(1), addr(2)
	for _, c := range []struct {
		msg  *types.MsgSignProviderAttributes
		want string
	}{
		{&types.MsgSignProviderAttributes{Auditor: prov, Owner: prov, Attributes: attrs("a", "b")}, "cannot audit itself"},
		{&types.MsgSignProviderAttributes{Auditor: auditor, Owner: prov}, "no attributes"},
		{&types.MsgSignProviderAttributes{Auditor: auditor, Owner: prov, Attributes: attrs("Bad Key", "v")}, "key"},
		{&types.MsgSignProviderAttributes{Auditor: auditor, Owner: prov, Attributes: attrs("a", "1", "a", "2")}, "duplicate"},
		{&types.MsgSignProviderAttributes{Auditor: auditor, Owner: "nope", Attributes: attrs("a", "b")}, "owner"},
	} {
		if _, err := f.msgs.SignProviderAttributes(f.ctx, c.msg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.msg, err, c.want)
		}
	}
	// Past the attribute cap in total (one key at a time).
	for i := 0; i < providertypes.MaxAttributes; i++ {
		k := "k" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := f.msgs.SignProviderAttributes(f.ctx, &types.MsgSignProviderAttributes{Auditor: auditor, Owner: prov, Attributes: attrs(k, "v")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.msgs.SignProviderAttributes(f.ctx, &types.MsgSignProviderAttributes{Auditor: auditor, Owner: prov, Attributes: attrs("one-more", "v")}); err == nil {
		t.Fatal("signed past the attribute cap")
	}
	gs, _ := f.k.ExportGenesis(f.ctx)
	if len(gs.Attributes) != 1 || len(gs.Attributes[0].Attributes) != providertypes.MaxAttributes {
		t.Fatalf("state after refusals: %d entries", len(gs.Attributes))
	}
}
