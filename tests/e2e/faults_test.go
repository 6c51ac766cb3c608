package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/tenant"
	"github.com/gpunet/gpunet/testutil/localnet"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// TestValidatorFaults runs four validators on loopback, every peer link
// through a proxy the test can cut, under a steady load of transfers and
// of whole market cycles (deployment, bid, auction, start, close and
// settlement). In turn it kills one validator (SIGKILL, then starts it
// again), freezes another (SIGSTOP, SIGCONT), restarts a third (SIGTERM,
// start) and cuts one off from the others. Throughout, the chain must keep
// making blocks and the marketplace keep completing cycles; at the end
// every node has the same app hash at the same height and every committed
// transaction.
func TestValidatorFaults(t *testing.T) {
	proxies := newPeerProxies(t)
	nw := startNetworkWith(t, localnet.Options{Validators: 4, PeerAddr: proxies.route})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	l := newFaultLoad(t, nw)
	if err := l.registerProvider(ctx); err != nil {
		t.Fatal(err)
	}
	l.wg.Add(2)
	go l.transfers(ctx)
	go l.market(ctx)

	phase := func(name string, faulty int, begin, end func() error) {
		t.Helper()
		l.exclude(faulty)
		h0 := l.height(ctx)
		cycles0 := l.cycles.Load()
		if err := begin(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		time.Sleep(15 * time.Second)
		h1 := l.height(ctx)
		// The fault took effect: the faulty node is unreachable or behind.
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		if fh, err := nw.Nodes[faulty].Height(qctx); err == nil && fh >= h1 {
			t.Errorf("%s: %s is at height %d with the others at %d: the fault did not cut it off", name, nw.Nodes[faulty].Moniker, fh, h1)
		}
		qcancel()
		if err := end(); err != nil {
			t.Fatalf("%s: end: %v", name, err)
		}
		if err := l.awaitCaughtUp(ctx, nw.Nodes[faulty], time.Minute); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l.exclude(-1)
		// Let the market cycle that the fault slowed finish.
		deadline := time.Now().Add(90 * time.Second)
		for l.cycles.Load() == cycles0 && time.Now().Before(deadline) {
			time.Sleep(time.Second)
		}
		t.Logf("%s: %d blocks during the fault, %d market cycles completed in the phase", name, h1-h0, l.cycles.Load()-cycles0)
		// Blocks take about 2 s under this load, and a frozen proposer
		// costs its turns a propose timeout: 3 blocks in 15 s is a live
		// chain, fewer is a stall.
		if h1-h0 < 3 {
			t.Errorf("%s: the chain made %d blocks in 15 s with the fault", name, h1-h0)
		}
		if l.cycles.Load() == cycles0 {
			t.Errorf("%s: no market cycle completed", name)
		}
	}
	node := nw.Nodes
	phase("kill validator 1", 1,
		func() error { return node[1].Signal(syscall.SIGKILL) },
		func() error { return nw.StartNode(node[1], false) })
	phase("pause validator 2", 2,
		func() error { return node[2].Signal(syscall.SIGSTOP) },
		func() error { return node[2].Signal(syscall.SIGCONT) })
	phase("restart validator 3", 3,
		func() error { return nw.StopNode(node[3]) },
		func() error { return nw.StartNode(node[3], false) })
	phase("partition validator 1", 1,
		func() error { proxies.cut(1); return nil },
		func() error { proxies.heal(1); return nil })

	cancel()
	l.wg.Wait()
	// A transaction whose node failed mid-flight is retried elsewhere, and
	// a retry of one that did land is refused: such errors are expected
	// under faults; the phases' progress checks are what must hold.
	if err := l.firstErr(); err != nil {
		t.Logf("load: %v", err)
	}

	// Every node at the same height has the same app hash and has every
	// transaction the load saw committed.
	check := context.Background()
	h := l.height(check)
	if err := nw.WaitForHeight(check, h+2, time.Minute); err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, n := range nw.Nodes {
		var blk struct {
			Result struct {
				Block struct {
					Header struct {
						AppHash string `json:"app_hash"`
					} `json:"header"`
				} `json:"block"`
			} `json:"result"`
		}
		httpJSON(t, http.MethodGet, fmt.Sprintf("%s/block?height=%d", n.RPCURL(), h+1), nil, &blk)
		hashes = append(hashes, blk.Result.Block.Header.AppHash)
	}
	for i, hh := range hashes {
		if hh == "" || hh != hashes[0] {
			t.Fatalf("app hashes after height %d differ: %v (node %d)", h, hashes, i)
		}
	}
	committed := l.committedHashes()
	if len(committed) < 30 {
		t.Errorf("only %d transactions committed under load", len(committed))
	}
	for _, n := range nw.Nodes {
		missing := 0
		for _, hash := range committed {
			var res struct {
				Result *struct {
					Height string `json:"height"`
				} `json:"result"`
			}
			httpJSON(t, http.MethodGet, fmt.Sprintf("%s/tx?hash=0x%s", n.RPCURL(), hash), nil, &res)
			if res.Result == nil {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s lacks %d of the %d committed transactions", n.Moniker, missing, len(committed))
		}
	}
	t.Logf("%d transactions and %d market cycles committed; all 4 nodes at app hash %s after height %d", len(committed), l.cycles.Load(), hashes[0], h)
}

// faultLoad sends the load to whichever node is not under a fault.
type faultLoad struct {
	t        *testing.T
	nw       *localnet.Network
	clients  map[string][]*tenant.Client // key name → one client per node
	excluded atomic.Int32
	cycles   atomic.Int64

	mu     sync.Mutex
	hashes []string
	errs   []error
	wg     sync.WaitGroup
}

func newFaultLoad(t *testing.T, nw *localnet.Network) *faultLoad {
	l := &faultLoad{t: t, nw: nw, clients: map[string][]*tenant.Client{}}
	l.excluded.Store(-1)
	for _, name := range []string{"tenant", "provider", "validator"} {
		for _, n := range nw.Nodes {
			c, err := nw.TxClient(name, n)
			if err != nil {
				t.Fatal(err)
			}
			l.clients[name] = append(l.clients[name], c)
		}
	}
	return l
}

func (l *faultLoad) exclude(i int) { l.excluded.Store(int32(i)) }

// send submits msgs as name through a healthy node, trying the next one
// when a node fails, and records the committed transaction.
func (l *faultLoad) send(ctx context.Context, name string, msgs ...sdk.Msg) (*sdk.TxResponse, error) {
	var last error
	for attempt := range 8 {
		i := (attempt + rand.IntN(4)) % 4
		if int32(i) == l.excluded.Load() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := l.clients[name][i].SendTx(cctx, msgs...)
		cancel()
		if err == nil {
			l.mu.Lock()
			l.hashes = append(l.hashes, res.TxHash)
			l.mu.Unlock()
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return nil, last
}

func (l *faultLoad) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *faultLoad) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d load errors, the first: %w", len(l.errs), l.errs[0])
}

func (l *faultLoad) committedHashes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.hashes...)
}

func (l *faultLoad) addr(name string) sdk.AccAddress {
	return l.clients[name][0].Owner
}

// height is the highest height a healthy node reports.
func (l *faultLoad) height(ctx context.Context) int64 {
	var best int64
	for i, n := range l.nw.Nodes {
		if int32(i) == l.excluded.Load() {
			continue
		}
		if h, err := n.Height(ctx); err == nil && h > best {
			best = h
		}
	}
	return best
}

// awaitCaughtUp waits until node is within a block of the others.
func (l *faultLoad) awaitCaughtUp(ctx context.Context, node *localnet.Node, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		h, err := node.Height(ctx)
		if err == nil && h >= l.height(ctx)-1 {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("%s did not catch up within %s", node.Moniker, wait)
}

func (l *faultLoad) registerProvider(ctx context.Context) error {
	_, err := l.send(ctx, "provider", &providertypes.MsgRegisterProvider{
		Owner: l.addr("provider").String(), HostUri: "https://p.example.com:8443",
		TlsCertSha256: fmt.Sprintf("%x", sha256.Sum256([]byte("fault test"))),
		Attributes:    []providertypes.Attribute{{Key: "region", Value: "eu"}},
		Gpus:          []providertypes.GPU{{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Count: 8}},
		Capacity:      providertypes.Capacity{CpuMillis: 64_000, MemoryBytes: 256 << 30, StorageBytes: 1 << 40},
		Bond:          sdk.NewInt64Coin("ugpn", 600_000_000),
	})
	return err
}

// transfers sends a bank transfer every 300 ms until ctx ends.
func (l *faultLoad) transfers(ctx context.Context) {
	defer l.wg.Done()
	for ctx.Err() == nil {
		if _, err := l.send(ctx, "validator", banktypes.NewMsgSend(l.addr("validator"), l.addr("tenant"), sdk.NewCoins(sdk.NewInt64Coin("ugpn", 1_000)))); err != nil && ctx.Err() == nil {
			l.fail(fmt.Errorf("transfer: %w", err))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// market runs whole market cycles until ctx ends: the tenant opens a
// deployment, the provider bids, the auction closes, the provider starts
// the lease, rent accrues for a few seconds, the tenant closes the
// deployment and the provider is paid.
func (l *faultLoad) market(ctx context.Context) {
	defer l.wg.Done()
	for ctx.Err() == nil {
		if err := l.cycle(ctx); err != nil && ctx.Err() == nil {
			l.fail(fmt.Errorf("market cycle: %w", err))
			time.Sleep(time.Second)
		}
	}
}

func (l *faultLoad) cycle(ctx context.Context) error {
	tenantAddr, provAddr := l.addr("tenant").String(), l.addr("provider").String()
	hash := sha256.Sum256([]byte("fault test manifest"))
	res, err := l.send(ctx, "tenant", &markettypes.MsgCreateDeployment{Owner: tenantAddr, ManifestHash: hash[:],
		Groups: []markettypes.GroupSpec{{Name: "job", Requirements: []providertypes.Attribute{{Key: "region", Value: "eu"}},
			Resources: []markettypes.ResourceUnit{{Count: 1, CpuMillis: 1_000, MemoryBytes: 1 << 30, StorageBytes: 1 << 30,
				Gpu: markettypes.GPUSpec{Units: 1, Models: []string{"h100"}}}},
			MaxPrice: sdk.NewDecCoin("ugpn", sdkmath.NewInt(3_600_000_000))}},
		Deposit: sdk.NewInt64Coin("ugpn", 50_000_000), BidWindow: 2})
	if err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	var dseq uint64
	for _, ev := range res.Events {
		if m, err := chain.ParseEvent(ev); err == nil {
			if e, ok := m.(*markettypes.EventDeploymentCreated); ok {
				dseq = e.Dseq
			}
		}
	}
	if dseq == 0 {
		return fmt.Errorf("no deployment event in %s", res.TxHash)
	}
	order := markettypes.OrderID{Owner: tenantAddr, Dseq: dseq, Gseq: 1, Oseq: 1}
	if _, err := l.send(ctx, "provider", &markettypes.MsgCreateBid{Provider: provAddr, Order: order,
		Price: sdk.NewDecCoin("ugpn", sdkmath.NewInt(3_600_000)), Deposit: sdk.NewInt64Coin("ugpn", 1_000_000)}); err != nil {
		return fmt.Errorf("bid on %d: %w", dseq, err)
	}
	lease := markettypes.BidID{Order: order, Provider: provAddr}
	// The auction closes two blocks after the deployment; start the lease
	// once it exists (a start before that is refused, and retried).
	var started bool
	for range 20 {
		if _, err := l.send(ctx, "provider", &markettypes.MsgStartLease{Provider: provAddr, Lease: lease}); err == nil {
			started = true
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	if !started {
		return fmt.Errorf("lease of %d never started", dseq)
	}
	time.Sleep(3 * time.Second)
	before := l.balance(ctx, provAddr)
	if _, err := l.send(ctx, "tenant", &markettypes.MsgCloseDeployment{Owner: tenantAddr, Dseq: dseq}); err != nil {
		return fmt.Errorf("close %d: %w", dseq, err)
	}
	for wait := 0; ; wait++ {
		after := l.balance(ctx, provAddr)
		if after.GT(before) {
			break
		}
		if wait == 10 {
			return fmt.Errorf("closing %d paid the provider nothing (%s → %s)", dseq, before, after)
		}
		time.Sleep(500 * time.Millisecond)
	}
	l.cycles.Add(1)
	return nil
}

// balance reads an account's ugpn on a healthy node.
func (l *faultLoad) balance(ctx context.Context, addr string) sdkmath.Int {
	for i, n := range l.nw.Nodes {
		if int32(i) == l.excluded.Load() {
			continue
		}
		var out struct {
			Balance struct {
				Amount string `json:"amount"`
			} `json:"balance"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/cosmos/bank/v1beta1/balances/%s/by_denom?denom=ugpn", n.APIURL(), addr), nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if err := json.Unmarshal(raw, &out); err != nil {
			continue
		}
		if v, ok := sdkmath.NewIntFromString(out.Balance.Amount); ok {
			return v
		}
	}
	return sdkmath.ZeroInt()
}

// peerProxies forwards every node-to-node P2P link through its own
// loopback listener, so the test can cut one node off from the others
// without root or network namespaces.
type peerProxies struct {
	t     *testing.T
	mu    sync.Mutex
	cutOf map[int]bool
	conns map[int][]net.Conn // node index → live connections touching it
}

func newPeerProxies(t *testing.T) *peerProxies {
	return &peerProxies{t: t, cutOf: map[int]bool{}, conns: map[int][]net.Conn{}}
}

// route is localnet's PeerAddr: a new proxy for the link from → to.
func (p *peerProxies) route(from, to *localnet.Node) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { ln.Close() })
	target := fmt.Sprintf("127.0.0.1:%d", to.P2P)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(in, target, from.Index, to.Index)
		}
	}()
	return ln.Addr().String()
}

func (p *peerProxies) forward(in net.Conn, target string, a, b int) {
	p.mu.Lock()
	if p.cutOf[a] || p.cutOf[b] {
		p.mu.Unlock()
		in.Close()
		return
	}
	p.mu.Unlock()
	out, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	p.mu.Lock()
	p.conns[a] = append(p.conns[a], in, out)
	p.conns[b] = append(p.conns[b], in, out)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(out, in); out.Close(); in.Close() }()
	_, _ = io.Copy(in, out)
	in.Close()
	out.Close()
}

// cut drops every link of node i and refuses new ones until heal.
func (p *peerProxies) cut(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOf[i] = true
	for _, c := range p.conns[i] {
		c.Close()
	}
	p.conns[i] = nil
}

func (p *peerProxies) heal(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOf[i] = false
}
