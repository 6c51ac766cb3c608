package app_test

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"cosmossdk.io/core/header"
	errorsmod "cosmossdk.io/errors"
	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	gogoproto "github.com/cosmos/gogoproto/proto"

	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/testutil/apptest"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// fuzzWorld is one chain per fuzzing process, with something for every
// handler to act on: two registered providers, a deployment whose order is
// open with a bid, and a deployment with a running lease.
var (
	fuzzOnce  sync.Once
	fuzzChain *apptest.Chain
	// fuzzDseqs are the world's two deployments: the leased one and the
	// open one.
	fuzzDseqs [2]uint64
)

func fuzzWorld(t testing.TB) *apptest.Chain {
	fuzzOnce.Do(func() {
		c := apptest.NewSeeded(t, 4, 1)
		tenant, prov := c.Accounts[0], c.Accounts[1]
		r := rand.New(rand.NewSource(1))
		deliver := func(signer int, msgs ...sdk.Msg) (dseq uint64) {
			seq := c.App.AccountKeeper.GetAccount(c.Query(), c.Accounts[signer]).GetSequence()
			var txs [][]byte
			for k, m := range msgs {
				txs = append(txs, signTx(t, c, r, signer, seq+uint64(k), m))
			}
			for i, r := range c.DeliverTxs(time.Second, txs) {
				if r.Code != 0 {
					t.Fatalf("fuzz world setup tx %d: %s", i, r.Log)
				}
				for _, ev := range r.Events {
					if msg, err := chain.ParseEvent(ev); err == nil {
						if e, ok := msg.(*markettypes.EventDeploymentCreated); ok {
							dseq = e.Dseq
						}
					}
				}
			}
			return dseq
		}
		for _, p := range []int{1, 2} {
			deliver(p, benchProvider(c.Accounts[p]))
		}
		hash := sha256.Sum256([]byte("fuzz"))
		group := benchGroup()
		for i := range fuzzDseqs {
			fuzzDseqs[i] = deliver(0, &markettypes.MsgCreateDeployment{Owner: tenant.String(), Groups: []markettypes.GroupSpec{group},
				ManifestHash: hash[:], Deposit: sdk.NewInt64Coin("ugpn", 50_000_000), BidWindow: 1})
		}
		bid := func(dseq uint64) *markettypes.MsgCreateBid {
			return &markettypes.MsgCreateBid{Provider: prov.String(), Order: markettypes.OrderID{Owner: tenant.String(), Dseq: dseq, Gseq: 1, Oseq: 1},
				Price: sdk.NewDecCoin("ugpn", sdkmath.NewInt(1_000_000)), Deposit: sdk.NewInt64Coin("ugpn", 1_000_000)}
		}
		deliver(1, bid(fuzzDseqs[0]))
		c.NextBlock(time.Second) // deployment 1's auction closes: a pending lease
		deliver(1, &markettypes.MsgStartLease{Provider: prov.String(), Lease: markettypes.BidID{Order: bid(fuzzDseqs[0]).Order, Provider: prov.String()}})
		deliver(1, bid(fuzzDseqs[1])) // deployment 2's order stays open (no auction without a bid before its window), with this bid
		fuzzChain = c
	})
	if fuzzChain == nil {
		t.Fatal("fuzz world setup failed in an earlier input")
	}
	return fuzzChain
}

// fuzzTemplates are the gpunet messages, one of which each input becomes.
var fuzzTemplates = []sdk.Msg{
	&providertypes.MsgRegisterProvider{}, &providertypes.MsgUpdateProvider{}, &providertypes.MsgBond{},
	&providertypes.MsgUnbond{}, &providertypes.MsgDeregisterProvider{}, &providertypes.MsgUpdateParams{},
	&markettypes.MsgCreateDeployment{}, &markettypes.MsgUpdateDeployment{}, &markettypes.MsgCloseDeployment{},
	&markettypes.MsgCreateBid{}, &markettypes.MsgCloseBid{}, &markettypes.MsgAcceptBid{}, &markettypes.MsgStartLease{},
	&markettypes.MsgCloseLease{}, &markettypes.MsgWithdrawLease{}, &markettypes.MsgUpdateParams{}, &markettypes.MsgDisputeLease{},
	&escrowtypes.MsgDeposit{}, &escrowtypes.MsgWithdrawPayment{}, &escrowtypes.MsgUpdateParams{},
	&escrowtypes.MsgSetAutoTopUp{}, &escrowtypes.MsgCancelAutoTopUp{},
	&markettypes.MsgRetryParked{}, &escrowtypes.MsgRetryParked{}, &providertypes.MsgRetryParked{},
	&audittypes.MsgSignProviderAttributes{}, &audittypes.MsgDeleteProviderAttributes{},
}

// FuzzMsgServer decodes arbitrary bytes into each gpunet message, points
// its signer field at one of the world's accounts (so the handlers get past
// the signer check and into their logic), and runs it through the app's
// message router on a branch of the world's state. No input may panic; every
// refusal must be a registered error (a code a client can act on); and any
// message the handler accepts must leave every invariant intact.
func FuzzMsgServer(f *testing.F) {
	w := fuzzWorld(f)
	for i, m := range fuzzSeeds(w) {
		bz, err := gogoproto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), uint8(0), bz)
	}
	f.Add(uint8(0), uint8(9), []byte{})
	f.Fuzz(func(t *testing.T, kind, signer uint8, raw []byte) {
		c := fuzzWorld(t)
		msg := gogoproto.Clone(fuzzTemplates[int(kind)%len(fuzzTemplates)])
		if err := gogoproto.Unmarshal(raw, msg); err != nil {
			return // not this message's wire form: the tx decoder refuses it first
		}
		switch {
		case int(signer) < len(c.Accounts):
			setSigner(msg, c.Accounts[signer].String())
		case int(signer) == len(c.Accounts):
			setAuthority(msg, c)
		}
		handler := c.App.MsgServiceRouter().Handler(msg)
		if handler == nil {
			t.Fatalf("no handler for %T", msg)
		}
		h, tm := c.Height+1, c.Time.Add(time.Second)
		ctx, _ := c.Query().WithBlockHeight(h).WithBlockTime(tm).WithHeaderInfo(header.Info{Height: h, Time: tm, ChainID: apptest.ChainID}).CacheContext()
		_, err := handler(ctx, msg)
		if err != nil {
			if codespace, code, _ := errorsmod.ABCIInfo(err, false); code == 1 || codespace == errorsmod.UndefinedCodespace {
				t.Fatalf("%T refused with an unregistered error: %v", msg, err)
			}
			return
		}
		if err := c.App.CheckInvariants(ctx); err != nil {
			t.Fatalf("%T accepted and broke an invariant: %v\n%v", msg, err, msg)
		}
	})
}

// setAuthority makes an update-params message come from its module's
// authority, so the fuzzer reaches the params validation.
func setAuthority(msg sdk.Msg, c *apptest.Chain) {
	switch m := msg.(type) {
	case *providertypes.MsgUpdateParams:
		m.Authority = c.App.ProviderKeeper.Authority()
	case *markettypes.MsgUpdateParams:
		m.Authority = c.App.MarketKeeper.Authority()
	case *escrowtypes.MsgUpdateParams:
		m.Authority = c.App.EscrowKeeper.Authority()
	case *providertypes.MsgRetryParked:
		m.Authority = c.App.ProviderKeeper.Authority()
	case *markettypes.MsgRetryParked:
		m.Authority = c.App.MarketKeeper.Authority()
	case *escrowtypes.MsgRetryParked:
		m.Authority = c.App.EscrowKeeper.Authority()
	}
}

// setSigner sets the message's signer field.
func setSigner(msg sdk.Msg, addr string) {
	switch m := msg.(type) {
	case *providertypes.MsgRegisterProvider:
		m.Owner = addr
	case *providertypes.MsgUpdateProvider:
		m.Owner = addr
	case *providertypes.MsgBond:
		m.Owner = addr
	case *providertypes.MsgUnbond:
		m.Owner = addr
	case *providertypes.MsgDeregisterProvider:
		m.Owner = addr
	case *markettypes.MsgCreateDeployment:
		m.Owner = addr
	case *markettypes.MsgUpdateDeployment:
		m.Owner = addr
	case *markettypes.MsgCloseDeployment:
		m.Owner = addr
	case *markettypes.MsgCreateBid:
		m.Provider = addr
	case *markettypes.MsgCloseBid:
		m.Provider = addr
	case *markettypes.MsgAcceptBid:
		m.Owner = addr
	case *markettypes.MsgStartLease:
		m.Provider = addr
	case *markettypes.MsgCloseLease:
		m.Sender = addr
	case *markettypes.MsgWithdrawLease:
		m.Provider = addr
	case *escrowtypes.MsgDeposit:
		m.Depositor = addr
	case *audittypes.MsgSignProviderAttributes:
		m.Auditor = addr
	case *audittypes.MsgDeleteProviderAttributes:
		m.Auditor = addr
	case *escrowtypes.MsgWithdrawPayment:
		m.Provider = addr
	}
}

// fuzzSeeds are well-formed messages about the world's objects, in the
// order of fuzzTemplates, for the fuzzer to mutate.
func fuzzSeeds(c *apptest.Chain) []sdk.Msg {
	// Signers are set per input from the signer byte.
	tenant, prov := c.Accounts[0].String(), c.Accounts[1].String()
	leased, opened := fuzzDseqs[0], fuzzDseqs[1]
	order := markettypes.OrderID{Owner: tenant, Dseq: leased, Gseq: 1, Oseq: 1}
	open := markettypes.OrderID{Owner: tenant, Dseq: opened, Gseq: 1, Oseq: 1}
	lease := markettypes.BidID{Order: order, Provider: prov}
	coin := sdk.NewInt64Coin("ugpn", 1_000_000)
	hash := sha256.Sum256([]byte("fuzz"))
	return []sdk.Msg{
		&providertypes.MsgRegisterProvider{HostUri: "https://p.example.com:8443", TlsCertSha256: fmt.Sprintf("%x", hash), Bond: sdk.NewInt64Coin("ugpn", 600_000_000),
			Gpus: []providertypes.GPU{{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Count: 1}}, Capacity: providertypes.Capacity{CpuMillis: 1000, MemoryBytes: 1 << 30, StorageBytes: 1 << 30}},
		&providertypes.MsgUpdateProvider{HostUri: "https://q.example.com:8443", TlsCertSha256: fmt.Sprintf("%x", hash)},
		&providertypes.MsgBond{Amount: coin}, &providertypes.MsgUnbond{Amount: coin}, &providertypes.MsgDeregisterProvider{},
		&providertypes.MsgUpdateParams{Params: providertypes.DefaultParams()},
		&markettypes.MsgCreateDeployment{Groups: []markettypes.GroupSpec{benchGroup()}, ManifestHash: hash[:], Deposit: sdk.NewInt64Coin("ugpn", 5_000_000), BidWindow: 1},
		&markettypes.MsgUpdateDeployment{Dseq: opened, ManifestHash: hash[:]}, &markettypes.MsgCloseDeployment{Dseq: opened},
		&markettypes.MsgCreateBid{Order: open, Price: sdk.NewDecCoin("ugpn", sdkmath.NewInt(1000)), Deposit: coin},
		&markettypes.MsgCloseBid{Order: open}, &markettypes.MsgAcceptBid{Bid: markettypes.BidID{Order: open, Provider: prov}},
		&markettypes.MsgStartLease{Lease: lease}, &markettypes.MsgCloseLease{Lease: lease}, &markettypes.MsgWithdrawLease{Lease: lease},
		&markettypes.MsgUpdateParams{Params: markettypes.DefaultParams()},
		&escrowtypes.MsgDeposit{Account: escrowtypes.AccountID{Owner: tenant, Dseq: leased}, Amount: coin},
		&escrowtypes.MsgWithdrawPayment{Payment: escrowtypes.PaymentID{Account: escrowtypes.AccountID{Owner: tenant, Dseq: leased}, Gseq: 1, Oseq: 1, Provider: prov}},
		&escrowtypes.MsgUpdateParams{Params: escrowtypes.DefaultParams()},
	}
}
