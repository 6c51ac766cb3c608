package app_test

import (
	"errors"
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	auditkeeper "github.com/gpunet/gpunet/x/audit/keeper"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// TestSignedByOnChain plays the provider that ignores signed_by: the chain
// refuses its bid until the named auditor signed its attributes, and an
// auditor withdrawing between the bid and the auction takes the bid out of
// the round (no lease), whatever the provider's daemon does.
func TestSignedByOnChain(t *testing.T) {
	c := apptest.New(t, 3)
	tenant, prov, auditor := c.Accounts[0], c.Accounts[1], c.Accounts[2]
	c.Do(time.Second, func(ctx sdk.Context) { registerBenchProvider(t, ctx, c, prov) })
	market := marketkeeper.NewMsgServerImpl(c.App.MarketKeeper)
	audit := auditkeeper.NewMsgServerImpl(c.App.AuditKeeper)
	group := benchGroup()
	group.SignedBy = markettypes.SignedBy{AnyOf: []string{auditor.String()}}
	hash := [32]byte{1}
	var order markettypes.OrderID
	bid := func(ctx sdk.Context) error {
		_, err := market.CreateBid(ctx, &markettypes.MsgCreateBid{Provider: prov.String(), Order: order,
			Price: group.MaxPrice, Deposit: sdk.NewInt64Coin("ugpn", 1_000_000)})
		return err
	}

	c.Do(time.Second, func(ctx sdk.Context) {
		res, err := market.CreateDeployment(ctx, &markettypes.MsgCreateDeployment{Owner: tenant.String(),
			Groups: []markettypes.GroupSpec{group}, ManifestHash: hash[:], Deposit: sdk.NewInt64Coin("ugpn", 50_000_000), BidWindow: 3})
		if err != nil {
			t.Fatal(err)
		}
		order = markettypes.OrderID{Owner: tenant.String(), Dseq: res.Dseq, Gseq: 1, Oseq: 1}
		if err := bid(ctx); !errors.Is(err, markettypes.ErrProviderNotEligible) {
			t.Fatalf("bid without the auditor's signature: %v", err)
		}
	})
	c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := audit.SignProviderAttributes(ctx, &audittypes.MsgSignProviderAttributes{Auditor: auditor.String(), Owner: prov.String(),
			Attributes: []providertypes.Attribute{{Key: "region", Value: "eu"}}}); err != nil {
			t.Fatal(err)
		}
		if err := bid(ctx); err != nil {
			t.Fatalf("bid once signed: %v", err)
		}
	})
	c.Do(time.Second, func(ctx sdk.Context) {
		if _, err := audit.DeleteProviderAttributes(ctx, &audittypes.MsgDeleteProviderAttributes{Auditor: auditor.String(), Owner: prov.String()}); err != nil {
			t.Fatal(err)
		}
	})
	for range 3 {
		c.NextBlock(time.Second) // past bid_closes_at
	}
	n := 0
	if err := c.App.MarketKeeper.Leases.Walk(c.Query(), nil, func(_ marketkeeper.BidKey, _ markettypes.Lease) (bool, error) {
		n++
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d leases after the auditor withdrew before the auction", n)
	}
	if err := c.App.CheckInvariants(c.Query()); err != nil {
		t.Fatal(err)
	}
}
