package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/gogoproto/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gpunet/gpunet/provider/bidengine"
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	audittypes "github.com/gpunet/gpunet/x/audit/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Fakes of the daemon's three ports, for unit tests of its logic. Each
// records what it was asked and answers what the test scripted.

// fakeChain is x/market's state as the test sets it.
type fakeChain struct {
	markettypes.QueryClient // nil: a query the test did not expect panics
	mu                      sync.Mutex
	params                  markettypes.Params
	paramsErr               error
	orders                  map[string]markettypes.Order // order key → order
	deployments             map[string]*markettypes.QueryDeploymentResponse
	leases                  []markettypes.Lease
	bids                    []markettypes.Bid
	open                    []markettypes.Order
	pubKeys                 map[string][]byte
	signed                  []audittypes.AuditedAttributes
	reliability             sdkmath.LegacyDec // nil: 1
	providerParams          providertypes.Params
	height                  int64 // the node's latest height
	heightErr               error
}

func (c *fakeChain) LatestHeight(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.height, c.heightErr
}

func (c *fakeChain) ProviderParams(context.Context) (providertypes.Params, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.providerParams, nil
}

func (c *fakeChain) Reliability(context.Context, string) (sdkmath.LegacyDec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reliability.IsNil() {
		return sdkmath.LegacyOneDec(), nil
	}
	return c.reliability, nil
}

func (c *fakeChain) SignedAttributes(_ context.Context, owner string) ([]audittypes.AuditedAttributes, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []audittypes.AuditedAttributes
	for _, a := range c.signed {
		if a.Owner == owner {
			out = append(out, a)
		}
	}
	return out, nil
}

func newFakeChain() *fakeChain {
	p := markettypes.DefaultParams()
	return &fakeChain{params: p, orders: map[string]markettypes.Order{}, deployments: map[string]*markettypes.QueryDeploymentResponse{}, pubKeys: map[string][]byte{}}
}

func notFound(what string) error { return status.Error(codes.NotFound, what+" not found") }

func (c *fakeChain) Params(context.Context, *markettypes.QueryParamsRequest, ...grpc.CallOption) (*markettypes.QueryParamsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paramsErr != nil {
		return nil, c.paramsErr
	}
	return &markettypes.QueryParamsResponse{Params: c.params}, nil
}

func (c *fakeChain) Order(_ context.Context, r *markettypes.QueryOrderRequest, _ ...grpc.CallOption) (*markettypes.QueryOrderResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.orders[orderKey(markettypes.OrderID{Owner: r.Owner, Dseq: r.Dseq, Gseq: r.Gseq, Oseq: r.Oseq})]
	if !ok {
		return nil, notFound("order")
	}
	return &markettypes.QueryOrderResponse{Order: o}, nil
}

func (c *fakeChain) Deployment(_ context.Context, r *markettypes.QueryDeploymentRequest, _ ...grpc.CallOption) (*markettypes.QueryDeploymentResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.deployments[deploymentKey(r.Owner, r.Dseq)]
	if !ok {
		return nil, notFound("deployment")
	}
	return d, nil
}

func (c *fakeChain) LeasesByProvider(context.Context, *markettypes.QueryByProviderRequest, ...grpc.CallOption) (*markettypes.QueryLeasesResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &markettypes.QueryLeasesResponse{Leases: append([]markettypes.Lease(nil), c.leases...)}, nil
}

func (c *fakeChain) BidsByProvider(context.Context, *markettypes.QueryByProviderRequest, ...grpc.CallOption) (*markettypes.QueryBidsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &markettypes.QueryBidsResponse{Bids: append([]markettypes.Bid(nil), c.bids...)}, nil
}

func (c *fakeChain) BidsByOrder(_ context.Context, r *markettypes.QueryOrderRequest, _ ...grpc.CallOption) (*markettypes.QueryBidsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []markettypes.Bid
	for _, b := range c.bids {
		if b.Id.Order.Owner == r.Owner && b.Id.Order.Dseq == r.Dseq && b.Id.Order.Gseq == r.Gseq && b.Id.Order.Oseq == r.Oseq {
			out = append(out, b)
		}
	}
	return &markettypes.QueryBidsResponse{Bids: out}, nil
}

func (c *fakeChain) OpenOrders(context.Context, *markettypes.QueryOpenOrdersRequest, ...grpc.CallOption) (*markettypes.QueryOrdersResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &markettypes.QueryOrdersResponse{Orders: append([]markettypes.Order(nil), c.open...)}, nil
}

func (c *fakeChain) AccountPubKey(_ context.Context, addr string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pubKeys[addr], nil
}

// fakeSender records transactions; errs scripts failures by message type.
type fakeSender struct {
	mu   sync.Mutex
	sent []sdk.Msg
	errs map[string][]error // proto message name → errors for the next sends
}

func newFakeSender() *fakeSender { return &fakeSender{errs: map[string][]error{}} }

func (s *fakeSender) result(msgs []sdk.Msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, msgs...)
	name := proto.MessageName(msgs[0])
	if q := s.errs[name]; len(q) > 0 {
		s.errs[name] = q[1:]
		return q[0]
	}
	return nil
}

func (s *fakeSender) failNext(msg sdk.Msg, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := proto.MessageName(msg)
	s.errs[name] = append(s.errs[name], err)
}

func (s *fakeSender) Submit(msgs ...sdk.Msg) <-chan chain.Result {
	ch := make(chan chain.Result, 1)
	ch <- chain.Result{TxHash: "TX", Err: s.result(msgs)}
	return ch
}

func (s *fakeSender) Send(_ context.Context, msgs ...sdk.Msg) (string, error) {
	return "TX", s.result(msgs)
}

func (s *fakeSender) SendAndWait(_ context.Context, _ time.Duration, msgs ...sdk.Msg) (*sdk.TxResponse, error) {
	if err := s.result(msgs); err != nil {
		return nil, err
	}
	return &sdk.TxResponse{TxHash: "TX"}, nil
}

// msgs returns the messages of type T sent so far.
func sentOf[T sdk.Msg](s *fakeSender) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []T
	for _, m := range s.sent {
		if t, ok := m.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// fakeRuntime is an engine in memory: Deploy records workloads and answers
// the scripted errors; a job's exit is released by the test.
type fakeRuntime struct {
	mu         sync.Mutex
	deployed   []runtime.Workload
	deployErrs []error
	deployGate chan struct{}                                       // when set, Deploy waits for it (or ctx)
	deploying  map[string]bool                                     // leases in Deploy now
	maxDeploys int                                                 // the most leases in Deploy at once
	pull       func(ctx context.Context, w runtime.Workload) error // PullImages (nil: the images are there)
	removed    []runtime.LeaseRef
	status     map[string]runtime.LeaseStatus
	running    map[string]runtime.LeaseRef
	jobEnded   *runtime.JobResult // nil: the job runs
	jobGate    chan struct{}      // when set, JobState answers once it is closed
	jobChecks  int                // JobState calls
	updated    []runtime.Workload
	updateErrs []error
	uncounted  bool // List names the leases but cannot count their containers (a cluster's pod listing failed)
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{status: map[string]runtime.LeaseStatus{}, running: map[string]runtime.LeaseRef{}}
}

func (r *fakeRuntime) PullImages(ctx context.Context, w runtime.Workload) error {
	r.mu.Lock()
	pull := r.pull
	r.mu.Unlock()
	if pull != nil {
		return pull(ctx, w)
	}
	return nil
}

func (r *fakeRuntime) Deploy(ctx context.Context, w runtime.Workload) (runtime.LeaseStatus, error) {
	key := w.Lease.Order.Name()
	r.mu.Lock()
	gate := r.deployGate
	if r.deploying == nil {
		r.deploying = map[string]bool{}
	}
	r.deploying[key] = true
	r.maxDeploys = max(r.maxDeploys, len(r.deploying))
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.deploying, key)
		r.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return runtime.LeaseStatus{}, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deployed = append(r.deployed, w)
	if len(r.deployErrs) > 0 {
		err := r.deployErrs[0]
		r.deployErrs = r.deployErrs[1:]
		if err != nil {
			return runtime.LeaseStatus{}, err
		}
	}
	r.running[w.Lease.Order.Name()] = w.Lease
	return runtime.LeaseStatus{}, nil
}

func (r *fakeRuntime) Update(_ context.Context, w runtime.Workload) (runtime.LeaseStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updated = append(r.updated, w)
	if len(r.updateErrs) > 0 {
		err := r.updateErrs[0]
		r.updateErrs = r.updateErrs[1:]
		return runtime.LeaseStatus{}, err
	}
	return runtime.LeaseStatus{}, nil
}

func (r *fakeRuntime) WatchEvents(ctx context.Context, _ func(runtime.LeaseRef, runtime.ContainerEvent)) {
	<-ctx.Done()
}

func (r *fakeRuntime) Exec(context.Context, runtime.LeaseRef, runtime.ExecRequest) (runtime.Shell, error) {
	return nil, runtime.ErrNotRunning
}

func (r *fakeRuntime) Usage(context.Context, runtime.LeaseRef) (map[string]runtime.ContainerUsage, error) {
	return nil, nil
}

func (r *fakeRuntime) Status(_ context.Context, l runtime.LeaseRef) (runtime.LeaseStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status[l.Order.Name()], nil
}

func (r *fakeRuntime) Remove(_ context.Context, l runtime.LeaseRef) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, l)
	delete(r.running, l.Order.Name())
	return nil
}

// JobState answers from the job's state when it is called; with jobGate
// set, the answer comes once the gate is closed (or ctx ends).
func (r *fakeRuntime) JobState(ctx context.Context, _ runtime.LeaseRef) (runtime.JobResult, bool, error) {
	r.mu.Lock()
	r.jobChecks++
	ended, gate := r.jobEnded, r.jobGate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return runtime.JobResult{}, false, ctx.Err()
		}
	}
	if ended == nil {
		return runtime.JobResult{}, false, nil
	}
	return *ended, true, nil
}

// endJob makes the job's containers exited with res: JobState says so
// from now on (the daemon asks at its next exit event or reconcile).
func (r *fakeRuntime) endJob(res runtime.JobResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobEnded = &res
}

func (r *fakeRuntime) List(ctx context.Context) (map[string]runtime.Held, error) {
	counts, err := r.RunningContainers(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]runtime.Held{}
	for _, l := range r.running {
		out[l.Order.Name()] = runtime.Held{Ref: l, Running: counts[l.Order.Name()], Counted: !r.uncounted}
	}
	return out, nil
}

func (r *fakeRuntime) RunningContainers(context.Context) (map[string]int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for key, st := range r.status {
		if _, ok := r.running[key]; !ok {
			continue
		}
		for _, reps := range st.Services {
			for _, rep := range reps {
				if rep.State == "running" {
					out[key]++
				}
			}
		}
	}
	return out, nil
}

func (r *fakeRuntime) Logs(ctx context.Context, _ runtime.LeaseRef, service string, follow bool, _ int, w io.Writer) error {
	if _, err := fmt.Fprintf(w, "[%s] hello\n", service); err != nil || !follow {
		return err
	}
	<-ctx.Done() // a quiet workload, followed until the client or the daemon ends it
	return ctx.Err()
}

// counts says how often the runtime deployed, removed and was asked
// whether a job ended.
func (r *fakeRuntime) counts() (deployed, removed, jobChecks int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deployed), len(r.removed), r.jobChecks
}

// A world: a daemon of provider "gpunet1prov" wired to the fakes, with two
// declared h100s.
type world struct {
	t     *testing.T
	d     *Daemon
	chain *fakeChain
	tx    *fakeSender
	rt    *fakeRuntime
	logw  *syncWriter
	stop  context.CancelFunc
}

const testProvider = "gpunet1prov"

func newWorld(t *testing.T) *world {
	t.Helper()
	cfg := &config.Config{}
	cfg.Chain.ID = "gpunet-test-1"
	cfg.API.MaxClockSkew = config.Duration(time.Minute)
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	prices, err := config.Pricing{GPUPerHour: map[string]string{"h100": "1000000"}, CPUCorePerHour: "10000", MemoryGiBPerHour: "1000", StorageGiBPerHour: "10"}.Table()
	if err != nil {
		t.Fatal(err)
	}
	inv := inventory.Inventory{Source: "declared", CPUMillis: 8000, MemoryBytes: 32 << 30, StorageBytes: 100 << 30, GPUs: []inventory.GPU{
		{Index: 0, UUID: "GPU-0", Model: "h100", MemoryMiB: 81559, Healthy: true},
		{Index: 1, UUID: "GPU-1", Model: "h100", MemoryMiB: 81559, Healthy: true},
	}}
	w := &world{t: t, chain: newFakeChain(), tx: newFakeSender(), rt: newFakeRuntime(), logw: &syncWriter{w: &bytes.Buffer{}}}
	logger := slog.New(slog.NewTextHandler(w.logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.d = newDaemon(cfg, logger, w.chain, testProvider, st, bidengine.New(inv, prices, nil), inv)
	w.d.tx, w.d.env.tx = w.tx, w.tx
	w.d.rt, w.d.env.rt = w.rt, w.rt
	ctx, cancel := context.WithCancel(context.Background())
	w.d.ctx, w.stop = ctx, cancel
	t.Cleanup(func() { cancel(); w.d.wg.Wait() })
	return w
}

// syncWriter makes the log buffer safe for the managers' goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// logs is what the daemon logged so far.
func (w *world) logs() string {
	w.logw.mu.Lock()
	defer w.logw.mu.Unlock()
	return w.logw.w.String()
}

// eventually polls cond until it holds or 10 s pass (a loaded machine).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Objects of the tests: one tenant's deployment 7, group 1.
const testOwner = "gpunet1tenant"

func testOrderID(oseq uint32) markettypes.OrderID {
	return markettypes.OrderID{Owner: testOwner, Dseq: 7, Gseq: 1, Oseq: oseq}
}

// testDeployment is a one-service group: a job (restart: never) or a
// service, with gpus GPUs per replica.
func testDeployment(t *testing.T, job bool, gpus int) (markettypes.GroupSpec, sdl.Manifest, []byte) {
	t.Helper()
	restart, gpuBlock := "", ""
	if job {
		restart = ", restart: never"
	}
	if gpus > 0 {
		gpuBlock = fmt.Sprintf(", gpu: {units: %d, attributes: {vendor: {nvidia: [{model: h100}]}}}", gpus)
	}
	raw := fmt.Sprintf(`version: "2.0"
services:
  app: {image: "app:1"%s}
profiles:
  compute:
    small: {resources: {cpu: {units: 1}, memory: {size: 1Gi}, storage: {size: 1Gi}%s}}
  placement:
    dc: {pricing: {small: {denom: ugpn, amount: 1000000000}}}
deployment:
  app: {dc: {profile: small, count: 1}}
`, restart, gpuBlock)
	d, err := sdl.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := d.Manifest.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return d.Groups[0], d.Manifest, canonical
}

func testLease(oseq uint32, state markettypes.LeaseState) markettypes.Lease {
	return markettypes.Lease{
		Id: markettypes.BidID{Order: testOrderID(oseq), Provider: testProvider}, State: state,
		Price: sdk.NewDecCoinFromDec("ugpn", sdkmath.LegacyNewDec(2_000_000)), CreatedAt: 100, StartDeadline: 220,
	}
}

var errOutage = errors.New("rpc error: connection refused")
