package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/collections"
	sdkmath "cosmossdk.io/math"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	simtestutil "github.com/cosmos/cosmos-sdk/testutil/sims"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// The full-app simulation: random but sensible signed transactions for every
// gpunet message, through FinalizeBlock like a node, with every invariant
// checked after every block. `make test-sim` runs the short version (also in
// CI), `make test-sim-long` many more blocks and seeds.
var (
	simBlocks = flag.Int("sim.blocks", 200, "blocks per simulation")
	simSeeds  = flag.String("sim.seeds", "1,2,3", "comma-separated seeds")
	simTxs    = flag.Int("sim.txs", 12, "most transactions per block")
)

func seeds(t *testing.T) []int64 {
	var out []int64
	for _, s := range strings.Split(*simSeeds, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("-sim.seeds: %v", err)
		}
		out = append(out, v)
	}
	return out
}

// TestSimulation runs the simulation for each seed: invariants after every
// block, an export half way that must import into a fresh app with equal
// stores, and at the end every message kind must have succeeded at least
// once (a simulation that never reaches a handler proves nothing about it).
func TestSimulation(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			s := newSim(t, seed)
			for b := 0; b < *simBlocks; b++ {
				s.block()
				if err := s.c.App.CheckInvariants(s.c.Query()); err != nil {
					t.Fatalf("block %d: %v", s.c.Height, err)
				}
				if b == *simBlocks/2 {
					checkImportExport(t, s.c)
				}
			}
			t.Log(s.report())
			if *simBlocks >= 100 {
				for _, kind := range simKinds {
					if s.ok[kind] == 0 {
						t.Errorf("%s never succeeded in %d blocks (%d tries)", kind, *simBlocks, s.failed[kind])
					}
				}
			}
		})
	}
}

// TestSimulationDeterminism runs each seed twice: every block's app hash
// must be the same in both runs.
func TestSimulationDeterminism(t *testing.T) {
	blocks := max(*simBlocks/2, 20)
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			var runs [2][][]byte
			for i := range runs {
				s := newSim(t, seed)
				for range blocks {
					s.block()
					runs[i] = append(runs[i], s.c.AppHash)
				}
			}
			for h := range runs[0] {
				if !bytes.Equal(runs[0][h], runs[1][h]) {
					t.Fatalf("block %d: app hash %X in one run, %X in the other", h+2, runs[0][h], runs[1][h])
				}
			}
		})
	}
}

// checkImportExport exports the chain, starts a fresh app from the export
// and compares the stores of gpunet's modules and bank key by key.
func checkImportExport(t *testing.T, c *apptest.Chain) {
	t.Helper()
	exp := c.Export()
	imported := apptest.Import(t, exp, c.Time.Add(time.Second))
	a, b := c.Query(), imported.App.NewContextLegacy(false, cmtHeader(exp.Height))
	for _, name := range []string{"market", "escrow", "provider", "bank"} {
		ka, kb := c.App.UnsafeFindStoreKey(name), imported.App.UnsafeFindStoreKey(name)
		ia, ib := a.KVStore(ka).Iterator(nil, nil), b.KVStore(kb).Iterator(nil, nil)
		n := 0
		for ; ia.Valid() && ib.Valid(); ia.Next() {
			if !bytes.Equal(ia.Key(), ib.Key()) || !bytes.Equal(ia.Value(), ib.Value()) {
				t.Fatalf("store %s differs after import at entry %d: key %X vs %X", name, n, ia.Key(), ib.Key())
			}
			ib.Next()
			n++
		}
		if ia.Valid() || ib.Valid() {
			t.Fatalf("store %s: %d equal entries, then one store has more (exported side %v, imported side %v)", name, n, ia.Valid(), ib.Valid())
		}
		ia.Close()
		ib.Close()
	}
}

// simKinds are the messages the simulation sends, and simWeights how
// often: the market's happy path most, the exits least, so deployments
// live long enough to be bid on, leased, started and paid.
var (
	simKinds = []string{
		"register-provider", "update-provider", "bond", "unbond", "deregister-provider",
		"create-deployment", "update-deployment", "deposit", "close-deployment",
		"create-bid", "close-bid", "accept-bid", "start-lease", "close-lease",
		"withdraw-lease", "withdraw-payment", "bank-send", "dispute-lease",
		"audit-sign", "audit-revoke", "auto-topup", "cancel-auto-topup",
		"attest",
	}
	simWeights = []int{
		3, 1, 1, 1, 1,
		4, 1, 2, 1,
		8, 3, 3, 5, 2,
		2, 2, 2, 4,
		2, 1, 2, 1,
		4,
	}
)

func (s *sim) kind() string {
	total := 0
	for _, w := range simWeights {
		total += w
	}
	n := s.r.Intn(total)
	for i, w := range simWeights {
		if n < w {
			return simKinds[i]
		}
		n -= w
	}
	return simKinds[len(simKinds)-1]
}

type sim struct {
	t      *testing.T
	r      *rand.Rand
	c      *apptest.Chain
	seqs   map[int]uint64
	ok     map[string]int
	failed map[string]int
}

const simAccounts = 14 // 0–6 tenants, 7–13 providers

func newSim(t *testing.T, seed int64) *sim {
	s := &sim{t: t, r: rand.New(rand.NewSource(seed)), c: apptest.NewSeeded(t, simAccounts, seed),
		ok: map[string]int{}, failed: map[string]int{}}
	// Short timeouts, as on a local network, so pending leases reach
	// manifest_missing closes and disputes within a short run.
	s.c.Do(time.Second, func(ctx sdk.Context) {
		p, err := s.c.App.MarketKeeper.Params.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.StartTimeout, p.ManifestTimeout, p.DisputeWindow = 20, 5, 30
		if _, err := marketkeeper.NewMsgServerImpl(s.c.App.MarketKeeper).UpdateParams(ctx, &markettypes.MsgUpdateParams{Authority: s.c.App.MarketKeeper.Authority(), Params: p}); err != nil {
			t.Fatal(err)
		}
		// Providers attest at random: some leases are attested down and
		// closed for it, some providers fall silent past the grace.
		setLiveness(t, ctx, s.c, func(p *providertypes.Params) { p.AttestInterval, p.AttestGrace, p.MaxDownAttestations = 3, 20, 2 })
	})
	return s
}

func (s *sim) report() string {
	var lines []string
	for _, k := range simKinds {
		lines = append(lines, fmt.Sprintf("%s %d/%d", k, s.ok[k], s.ok[k]+s.failed[k]))
	}
	return "succeeded/sent: " + strings.Join(lines, ", ")
}

// block builds and delivers one block of random transactions. Blocks are
// 1–7 s apart so escrow accrues and runs dry at uneven times.
func (s *sim) block() {
	s.seqs = map[int]uint64{}
	var txs [][]byte
	var kinds []string
	for range s.r.Intn(*simTxs + 1) {
		kind := s.kind()
		signer, msg := s.msg(kind)
		if msg == nil {
			continue // nothing to act on yet
		}
		txs = append(txs, s.sign(signer, msg))
		kinds = append(kinds, kind)
	}
	res := s.c.DeliverTxs(time.Duration(1+s.r.Intn(7))*time.Second, txs)
	for i, r := range res {
		if r.Code == 0 {
			s.ok[kinds[i]]++
		} else {
			s.failed[kinds[i]]++
			if r.Codespace == "undefined" || r.Code == 1 {
				s.t.Fatalf("%s failed with an unregistered error (%s/%d): %s", kinds[i], r.Codespace, r.Code, r.Log)
			}
		}
	}
}

func (s *sim) sign(i int, msg sdk.Msg) []byte {
	seq, ok := s.seqs[i]
	if !ok {
		seq = s.c.App.AccountKeeper.GetAccount(s.c.Query(), s.c.Accounts[i]).GetSequence()
	}
	s.seqs[i] = seq + 1
	return signTx(s.t, s.c, s.r, i, seq, msg)
}

// signTx signs msg as account i of c with sequence seq, paying a fixed fee.
func signTx(t testing.TB, c *apptest.Chain, r *rand.Rand, i int, seq uint64, msg sdk.Msg) []byte {
	acc := c.App.AccountKeeper.GetAccount(c.Query(), c.Accounts[i])
	tx, err := simtestutil.GenSignedMockTx(r, c.App.TxConfig(), []sdk.Msg{msg},
		sdk.NewCoins(sdk.NewInt64Coin("ugpn", 20_000)), 800_000, apptest.ChainID,
		[]uint64{acc.GetAccountNumber()}, []uint64{seq}, []cryptotypes.PrivKey{c.Keys[i]}...)
	if err != nil {
		t.Fatal(err)
	}
	bz, err := c.App.TxConfig().TxEncoder()(tx)
	if err != nil {
		t.Fatal(err)
	}
	return bz
}

func (s *sim) tenant() int   { return s.r.Intn(7) }
func (s *sim) provider() int { return 7 + s.r.Intn(7) }
func (s *sim) addr(i int) string {
	return s.c.Accounts[i].String()
}
func (s *sim) index(addr string) int {
	for i, a := range s.c.Accounts {
		if a.String() == addr {
			return i
		}
	}
	s.t.Fatalf("unknown account %s", addr)
	return -1
}

// A small share of messages carry a mistake (wrong signer's object, an
// amount too small): the chain must refuse them cleanly.
func (s *sim) mistake() bool { return s.r.Intn(10) == 0 }

var simModels = []string{"h100", "a100", "l4"}
var simRegions = []string{"eu", "us"}

func (s *sim) coin(lo, hi int64) sdk.Coin {
	return sdk.NewInt64Coin("ugpn", lo+s.r.Int63n(hi-lo+1))
}

// msg returns a random message of kind and its signer's index, or nil when
// the state has nothing for it.
func (s *sim) msg(kind string) (int, sdk.Msg) {
	q := s.c.Query()
	switch kind {
	case "bank-send":
		from := s.r.Intn(simAccounts)
		return from, banktypes.NewMsgSend(s.c.Accounts[from], s.c.Accounts[s.r.Intn(simAccounts)], sdk.NewCoins(s.coin(1, 5_000_000)))
	case "register-provider", "update-provider":
		p := s.provider()
		gpus := []providertypes.GPU{{Vendor: "nvidia", Model: simModels[s.r.Intn(len(simModels))], MemoryMib: 81_559, Count: uint32(1 + s.r.Intn(8))}}
		attrs := []providertypes.Attribute{{Key: "region", Value: simRegions[s.r.Intn(len(simRegions))]}}
		capacity := providertypes.Capacity{CpuMillis: 64_000, MemoryBytes: 256 << 30, StorageBytes: 1 << 40}
		cert := fmt.Sprintf("%x", sha256.Sum256([]byte(s.addr(p))))
		if kind == "update-provider" {
			return p, &providertypes.MsgUpdateProvider{Owner: s.addr(p), HostUri: "https://p.example.com:8443", TlsCertSha256: cert, Attributes: attrs, Gpus: gpus, Capacity: capacity}
		}
		bond := s.coin(500_000_000, 900_000_000)
		if s.mistake() {
			bond = s.coin(1, 499_999_999) // below min_bond
		}
		return p, &providertypes.MsgRegisterProvider{Owner: s.addr(p), HostUri: "https://p.example.com:8443", TlsCertSha256: cert,
			Attributes: attrs, Gpus: gpus, Capacity: capacity, Bond: bond}
	case "bond":
		p := s.provider()
		return p, &providertypes.MsgBond{Owner: s.addr(p), Amount: s.coin(1, 200_000_000)}
	case "unbond":
		p := s.provider()
		return p, &providertypes.MsgUnbond{Owner: s.addr(p), Amount: s.coin(1, 150_000_000)}
	case "deregister-provider":
		p := s.provider()
		return p, &providertypes.MsgDeregisterProvider{Owner: s.addr(p)}
	case "audit-sign", "audit-revoke":
		// Mostly account 0, the auditor orders name: its signatures matter.
		auditor, p := 0, s.provider()
		if s.r.Intn(4) == 0 {
			auditor = s.tenant()
		}
		if kind == "audit-revoke" {
			var keys []string
			if s.r.Intn(2) == 0 {
				keys = []string{"region"}
			}
			return auditor, &audittypes.MsgDeleteProviderAttributes{Auditor: s.addr(auditor), Owner: s.addr(p), Keys: keys}
		}
		attrs := []providertypes.Attribute{{Key: "region", Value: simRegions[s.r.Intn(len(simRegions))]}}
		if s.mistake() {
			attrs = nil // nothing to sign
		}
		return auditor, &audittypes.MsgSignProviderAttributes{Auditor: s.addr(auditor), Owner: s.addr(p), Attributes: attrs}
	case "create-deployment":
		t := s.tenant()
		var groups []markettypes.GroupSpec
		for g := range 1 + s.r.Intn(3) {
			units := uint32(s.r.Intn(3))
			gpu := markettypes.GPUSpec{Units: units}
			if units > 0 {
				gpu.Models = []string{simModels[s.r.Intn(len(simModels))]}
				gpu.MinMemoryMib = 40_000
			}
			groups = append(groups, markettypes.GroupSpec{
				Name:         fmt.Sprintf("g%d", g),
				Requirements: []providertypes.Attribute{{Key: "region", Value: simRegions[s.r.Intn(len(simRegions))]}},
				Resources: []markettypes.ResourceUnit{{Count: uint32(1 + s.r.Intn(2)), CpuMillis: uint64(500 + s.r.Intn(8_000)),
					MemoryBytes: uint64(1+s.r.Intn(32)) << 30, StorageBytes: uint64(1+s.r.Intn(100)) << 30, Gpu: gpu}},
				MaxPrice: sdk.NewDecCoin("ugpn", sdkmath.NewInt(1_000_000+s.r.Int63n(50_000_000_000))),
			})
			if s.r.Intn(8) == 0 { // served only by providers account 0 vouched for
				groups[len(groups)-1].SignedBy = markettypes.SignedBy{AnyOf: []string{s.addr(0)}}
			}
		}
		hash := sha256.Sum256([]byte{byte(s.r.Intn(256))})
		deposit := s.coin(5_000_000, 60_000_000)
		if s.mistake() {
			deposit = s.coin(1, 4_999_999) // below min_deposit
		}
		return t, &markettypes.MsgCreateDeployment{Owner: s.addr(t), Groups: groups, ManifestHash: hash[:], Deposit: deposit, BidWindow: uint64(1 + s.r.Intn(10))}
	case "update-deployment", "deposit", "close-deployment":
		d, ok := pick(s, q, s.c.App.MarketKeeper.Deployments)
		if !ok {
			return 0, nil
		}
		owner := s.index(d.Owner)
		if s.mistake() {
			owner = s.tenant()
		}
		switch kind {
		case "update-deployment":
			hash := sha256.Sum256([]byte{byte(s.r.Intn(256)), 1})
			return owner, &markettypes.MsgUpdateDeployment{Owner: s.addr(owner), Dseq: d.Dseq, ManifestHash: hash[:]}
		case "deposit":
			return owner, &escrowtypes.MsgDeposit{Depositor: s.addr(owner), Account: escrowtypes.AccountID{Owner: d.Owner, Dseq: d.Dseq}, Amount: s.coin(1, 20_000_000)}
		}
		return owner, &markettypes.MsgCloseDeployment{Owner: s.addr(owner), Dseq: d.Dseq}
	case "auto-topup":
		d, ok := pick(s, q, s.c.App.MarketKeeper.Deployments)
		if !ok {
			return 0, nil
		}
		// The owner mostly, else a sponsor; a mistake asks for a limit
		// below one refill.
		payer := s.index(d.Owner)
		if s.r.Intn(3) == 0 {
			payer = s.tenant()
		}
		amount := s.coin(1_000_000, 10_000_000)
		limit := sdk.NewCoin(amount.Denom, amount.Amount.MulRaw(int64(1+s.r.Intn(5))))
		if s.mistake() {
			limit = sdk.NewCoin(amount.Denom, amount.Amount.QuoRaw(2))
		}
		return payer, &escrowtypes.MsgSetAutoTopUp{Payer: s.addr(payer), Account: escrowtypes.AccountID{Owner: d.Owner, Dseq: d.Dseq}, Amount: amount, Limit: limit}
	case "cancel-auto-topup":
		tu, ok := pick(s, q, s.c.App.EscrowKeeper.AutoTopUps)
		if !ok {
			return 0, nil
		}
		sender := s.index(tu.Id.Owner)
		if s.r.Intn(2) == 0 {
			sender = s.index(tu.Payer)
		}
		if s.mistake() {
			sender = s.tenant() // mostly a stranger: refused
		}
		return sender, &escrowtypes.MsgCancelAutoTopUp{Sender: s.addr(sender), Account: tu.Id}
	case "create-bid":
		o, ok := pick(s, q, s.c.App.MarketKeeper.Orders, func(o markettypes.Order) bool { return o.State == markettypes.ORDER_STATE_OPEN })
		if !ok {
			return 0, nil
		}
		// Mostly a registered provider whose inventory and attributes
		// match the order, as a provider daemon would bid.
		p := s.provider()
		if !s.mistake() {
			prov, ok := pick(s, q, s.c.App.ProviderKeeper.Providers, func(p providertypes.Provider) bool {
				bonded, err := s.c.App.ProviderKeeper.HasMinBond(q, p)
				return err == nil && bonded && markettypes.MatchSpec(o.Spec, p) == nil
			})
			if ok {
				p = s.index(prov.Owner)
			}
		}
		price := o.Spec.MaxPrice.Amount.MulInt64(int64(1 + s.r.Intn(100))).QuoInt64(100)
		if s.mistake() {
			price = o.Spec.MaxPrice.Amount.MulInt64(2) // above the tenant's max
		}
		if !price.IsPositive() {
			price = sdkmath.LegacyOneDec()
		}
		return p, &markettypes.MsgCreateBid{Provider: s.addr(p), Order: o.Id, Price: sdk.NewDecCoinFromDec("ugpn", price), Deposit: s.coin(1_000_000, 2_000_000)}
	case "close-bid", "accept-bid":
		b, ok := pick(s, q, s.c.App.MarketKeeper.Bids)
		if !ok {
			return 0, nil
		}
		if kind == "close-bid" {
			p := s.index(b.Id.Provider)
			if s.mistake() {
				p = s.provider()
			}
			return p, &markettypes.MsgCloseBid{Provider: s.addr(p), Order: b.Id.Order}
		}
		owner := s.index(b.Id.Order.Owner)
		if s.mistake() {
			owner = s.tenant()
		}
		return owner, &markettypes.MsgAcceptBid{Owner: s.addr(owner), Bid: b.Id}
	case "start-lease", "close-lease", "withdraw-lease", "withdraw-payment":
		want := markettypes.LEASE_STATE_ACTIVE
		if kind == "start-lease" {
			want = markettypes.LEASE_STATE_PENDING
		}
		var l markettypes.Lease
		ok := false
		if kind == "close-lease" && s.r.Intn(3) == 0 {
			// A pending lease past the manifest timeout, so that
			// manifest_missing closes (and their disputes) happen at all.
			l, ok = pick(s, q, s.c.App.MarketKeeper.Leases, func(l markettypes.Lease) bool {
				return l.State == markettypes.LEASE_STATE_PENDING && s.c.Height >= l.CreatedAt+5
			})
		}
		if !ok {
			l, ok = pick(s, q, s.c.App.MarketKeeper.Leases, func(l markettypes.Lease) bool { return kind == "close-lease" || l.State == want })
		}
		if !ok {
			return 0, nil
		}
		p := s.index(l.Id.Provider)
		if s.mistake() {
			p = s.provider()
		}
		switch kind {
		case "start-lease":
			return p, &markettypes.MsgStartLease{Provider: s.addr(p), Lease: l.Id}
		case "withdraw-lease":
			return p, &markettypes.MsgWithdrawLease{Provider: s.addr(p), Lease: l.Id}
		case "withdraw-payment":
			return p, &escrowtypes.MsgWithdrawPayment{Provider: s.addr(p), Payment: escrowtypes.PaymentID{
				Account: escrowtypes.AccountID{Owner: l.Id.Order.Owner, Dseq: l.Id.Order.Dseq}, Gseq: l.Id.Order.Gseq, Oseq: l.Id.Order.Oseq, Provider: l.Id.Provider}}
		}
		sender := p
		if s.r.Intn(2) == 0 {
			sender = s.index(l.Id.Order.Owner)
		}
		msg := &markettypes.MsgCloseLease{Sender: s.addr(sender), Lease: l.Id}
		if sender == p {
			// Every reason a provider may give, fitting or not: a
			// tenant-fault reason on a running lease, workload_* on a
			// pending one, manifest_missing too early are refused.
			msg.Reason = simProviderReasons[s.r.Intn(len(simProviderReasons))]
			if l.State == markettypes.LEASE_STATE_PENDING && s.c.Height >= l.CreatedAt+5 && s.r.Intn(2) == 0 {
				msg.Reason = markettypes.CLOSE_REASON_MANIFEST_MISSING // a tenant that never sent it
			}
		}
		return sender, msg
	case "attest":
		l, ok := pick(s, q, s.c.App.MarketKeeper.Leases, func(l markettypes.Lease) bool { return l.State == markettypes.LEASE_STATE_ACTIVE })
		if !ok {
			return 0, nil
		}
		p := s.index(l.Id.Provider)
		msg := &markettypes.MsgAttest{Provider: l.Id.Provider}
		if err := s.c.App.MarketKeeper.Leases.Walk(q, nil, func(_ marketkeeper.BidKey, v markettypes.Lease) (bool, error) {
			if v.State == markettypes.LEASE_STATE_ACTIVE && v.Id.Provider == l.Id.Provider {
				msg.Leases++
				switch s.r.Intn(6) {
				case 0:
					msg.Down = append(msg.Down, v.Id.Order)
				case 1:
					msg.Degraded = append(msg.Degraded, v.Id.Order)
				}
			}
			return false, nil
		}); err != nil {
			s.t.Fatal(err)
		}
		if s.mistake() {
			msg.Leases++ // a daemon that miscounts is refused
		}
		return p, msg
	case "dispute-lease":
		d, ok := pick(s, q, s.c.App.MarketKeeper.Disputable)
		if !ok {
			return 0, nil
		}
		owner, signer := s.index(d.Lease.Order.Owner), s.index(d.Lease.Provider)
		if s.mistake() {
			signer = s.provider() // a forged receipt
		}
		rc := markettypes.ManifestReceipt{Lease: d.Lease, ManifestHash: d.ManifestHash, IssuedAt: s.c.Time.Unix()}
		sig, err := s.c.Keys[signer].Sign(markettypes.ReceiptSignBytes(apptest.ChainID, d.Lease, d.ManifestHash, rc.IssuedAt))
		if err != nil {
			s.t.Fatal(err)
		}
		rc.Signature = sig
		return owner, &markettypes.MsgDisputeLease{Owner: s.addr(owner), Receipt: rc}
	}
	s.t.Fatalf("unknown kind %s", kind)
	return 0, nil
}

var simProviderReasons = []markettypes.CloseReason{
	markettypes.CLOSE_REASON_PROVIDER, markettypes.CLOSE_REASON_WORKLOAD_COMPLETED, markettypes.CLOSE_REASON_WORKLOAD_FAILED,
	markettypes.CLOSE_REASON_MANIFEST_MISSING, markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE, markettypes.CLOSE_REASON_WORKLOAD_INVALID,
}

// pick returns a random value of a small map (the simulation's state stays
// small; the walk is fine for a test) for which every keep holds.
func pick[K, V any](s *sim, ctx sdk.Context, m interface {
	Walk(ctx context.Context, ranger collections.Ranger[K], walkFunc func(key K, value V) (stop bool, err error)) error
}, keep ...func(V) bool,
) (V, bool) {
	var all []V
	if err := m.Walk(ctx, nil, func(_ K, v V) (bool, error) {
		for _, k := range keep {
			if !k(v) {
				return false, nil
			}
		}
		all = append(all, v)
		return false, nil
	}); err != nil {
		s.t.Fatal(err)
	}
	var zero V
	if len(all) == 0 {
		return zero, false
	}
	return all[s.r.Intn(len(all))], true
}
