package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	goruntime "runtime"
	rtmetrics "runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// The lease state machine, driven through its inputs with fake chain,
// sender and runtime: every phase and transition a lease can take.

// manage puts the order of lease l on the fake chain and returns its
// manager, started by the daemon.
func (w *world) manage(l markettypes.Lease, spec markettypes.GroupSpec) *leaseManager {
	w.t.Helper()
	w.chain.mu.Lock()
	w.chain.orders[orderKey(l.Id.Order)] = markettypes.Order{Id: l.Id.Order, State: markettypes.ORDER_STATE_MATCHED, Spec: spec}
	w.chain.mu.Unlock()
	m, err := w.d.leaseManager(context.Background(), l)
	if err != nil {
		w.t.Fatal(err)
	}
	if !w.d.serves(l.Id.Order.Owner) {
		w.t.Fatal("the API does not serve the owner of a managed lease")
	}
	return m
}

func (w *world) phase(m *leaseManager, want Phase) {
	w.t.Helper()
	eventually(w.t, "phase "+want.String(), func() bool { return m.view().Phase == want })
}

func (w *world) closedAs(want markettypes.CloseReason) {
	w.t.Helper()
	eventually(w.t, "close as "+want.ReasonString(), func() bool {
		for _, c := range sentOf[*markettypes.MsgCloseLease](w.tx) {
			if c.Reason == want {
				return true
			}
		}
		return false
	})
}

func (w *world) started(n int) {
	w.t.Helper()
	eventually(w.t, "start sent", func() bool { return len(sentOf[*markettypes.MsgStartLease](w.tx)) >= n })
}

// finish delivers the chain's close and waits for the teardown.
func (w *world) finish(m *leaseManager, reason string) {
	w.t.Helper()
	m.send(inClosed{reason: reason})
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		w.t.Fatal("manager did not finish")
	}
	if _, ok := w.d.managed(m.key); ok {
		w.t.Error("a finished lease is still managed")
	}
	if _, held := w.d.engine.Get(m.key); held {
		w.t.Error("a finished lease still holds its reservation")
	}
	w.d.mu.Lock()
	live := w.d.owners[m.ref.Order.Owner]
	w.d.mu.Unlock()
	if len(w.d.leaseManagers()) == 0 && live > 0 {
		w.t.Error("the owner of a finished lease still counts as holding a live one")
	}
	if !w.d.serves(m.ref.Order.Owner) {
		w.t.Error("the API refuses the owner of a lease that just ended: it cannot read why")
	}
}

func TestLeaseBeforeManifestThenJobCompletes(t *testing.T) {
	w := newWorld(t)
	spec, man, _ := testDeployment(t, true, 1)
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	if dec := w.d.engine.EvaluateAndReserve(orderKey(l.Id.Order), spec); !dec.Bid {
		t.Fatal(dec.Reason)
	}
	m := w.manage(l, spec)
	m.send(inChain{lease: l})
	w.phase(m, PhaseAwaitingManifest)
	if d, _, _ := w.rt.counts(); d != 0 {
		t.Fatal("deployed without a manifest")
	}
	g, err := groupFor(man, spec)
	if err != nil {
		t.Fatal(err)
	}
	m.send(inManifest{group: g})
	w.started(1)
	eventually(t, "job watched", func() bool { _, _, checks := w.rt.counts(); return checks == 1 })
	// The start is sent before the manager hears back that it landed (and
	// the job is asked whether it has ended as it starts): wait for the
	// lease to read as running rather than catch the moment in between.
	eventually(t, "running", func() bool {
		v := m.view()
		return v.State == markettypes.LEASE_STATE_ACTIVE && v.Phase == PhaseRunning && v.HasManifest
	})
	w.rt.mu.Lock()
	gpus := w.rt.deployed[0].GPUs
	w.rt.mu.Unlock()
	if len(gpus) != 1 {
		t.Errorf("deployed with GPUs %v, want the reservation's one", gpus)
	}
	// Its exit: the engine now says the job has ended.
	w.rt.endJob(runtime.JobResult{Succeeded: true})
	m.send(inExited{ev: runtime.ContainerEvent{Kind: "exited", Service: "app", Final: true}})
	w.closedAs(markettypes.CLOSE_REASON_WORKLOAD_COMPLETED)
	w.phase(m, PhaseClosing)
	w.finish(m, "workload_completed")
	if _, removed, _ := w.rt.counts(); removed != 1 {
		t.Errorf("containers removed %d times, want once", removed)
	}
}

// A running job holds no goroutine and costs the engine nothing while it
// runs: reconciles that count its container running do not ask about it.
// An exit that comes while the engine is being asked is not lost: it is
// asked again once the answer (from before the exit) is in.
func TestRunningJobIsFollowedByItsExits(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, true, 0)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	l := testLease(1, markettypes.LEASE_STATE_ACTIVE)
	gate := make(chan struct{})
	w.rt.mu.Lock()
	w.rt.jobGate = gate
	w.rt.mu.Unlock()
	m := w.manage(l, spec)
	m.send(inChain{lease: l, containers: true, counted: true, running: 1})
	eventually(t, "job asked about", func() bool { _, _, checks := w.rt.counts(); return checks == 1 })
	// The first answer was taken while it ran; it exits before the answer
	// is in.
	w.rt.endJob(runtime.JobResult{Succeeded: true})
	m.send(inExited{ev: runtime.ContainerEvent{Kind: "exited", Service: "app", Final: true}})
	close(gate)
	w.closedAs(markettypes.CLOSE_REASON_WORKLOAD_COMPLETED)
	if _, _, checks := w.rt.counts(); checks != 2 {
		t.Errorf("asked %d times about the job, want 2: at its start and after its exit", checks)
	}

	// Another job, still running: reconciles leave it alone.
	w2 := newWorld(t)
	_ = w2.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	m2 := w2.manage(l, spec)
	for range 5 {
		m2.send(inChain{lease: l, containers: true, counted: true, running: 1})
	}
	eventually(t, "job asked about", func() bool { _, _, checks := w2.rt.counts(); return checks == 1 })
	m2.send(inChain{lease: l, containers: true, counted: true, running: 1})
	w2.phase(m2, PhaseRunning)
	time.Sleep(100 * time.Millisecond)
	if _, _, checks := w2.rt.counts(); checks != 1 {
		t.Errorf("a running job was asked about %d times by reconciles counting it running, want once at its start", checks)
	}
	if v := m2.view(); v.Busy {
		t.Errorf("following a running job keeps its lease busy: %+v", v)
	}
}

// A reconcile that read the chain before the start was committed reports
// the lease pending; the manager, which saw the start, does not send it again.
func TestStaleReconcileDoesNotStartTwice(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, false, 0)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec)
	m.send(inChain{lease: l})
	w.started(1)
	eventually(t, "active", func() bool { return m.view().State == markettypes.LEASE_STATE_ACTIVE })
	m.send(inChain{lease: l, containers: true}) // the stale snapshot
	m.send(inChain{lease: testLease(1, markettypes.LEASE_STATE_ACTIVE), containers: true})
	time.Sleep(300 * time.Millisecond) // a second start, if any, goes to the fake sender at once
	if n := len(sentOf[*markettypes.MsgStartLease](w.tx)); n != 1 || m.view().State != markettypes.LEASE_STATE_ACTIVE {
		t.Fatalf("%d starts sent, state %s; want 1, active", n, m.view().State)
	}
	w.finish(m, "tenant")
}

func TestManifestBeforeLeaseDeploysOnSight(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, false, 0)
	if err := w.d.store.saveManifest(deploymentKey(testOwner, 7), raw); err != nil {
		t.Fatal(err)
	}
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec)
	if !m.view().HasManifest {
		t.Fatal("the stored manifest was not read")
	}
	m.send(inChain{lease: l})
	w.started(1)
	w.phase(m, PhaseRunning)
	if _, _, checks := w.rt.counts(); checks != 0 {
		t.Error("a service (not a job) is watched for its exit")
	}
	w.finish(m, "tenant")
}

func TestTenantFaultsCloseWithTheirReason(t *testing.T) {
	for name, c := range map[string]struct {
		err  error
		want markettypes.CloseReason
	}{
		"image":    {runtime.ErrImageUnavailable, markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE},
		"workload": {runtime.ErrWorkloadInvalid, markettypes.CLOSE_REASON_WORKLOAD_INVALID},
		"gpu":      {runtime.ErrGPUUnavailable, markettypes.CLOSE_REASON_PROVIDER},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			spec, man, _ := testDeployment(t, false, 0)
			w.rt.deployErrs = []error{c.err}
			l := testLease(1, markettypes.LEASE_STATE_PENDING)
			m := w.manage(l, spec)
			g, _ := groupFor(man, spec)
			m.send(inManifest{group: g})
			w.closedAs(c.want)
			if n := len(sentOf[*markettypes.MsgStartLease](w.tx)); n != 0 {
				t.Errorf("started %d times", n)
			}
			w.finish(m, c.want.ReasonString())
		})
	}
}

func TestProviderSideDeployFailureIsRetried(t *testing.T) {
	w := newWorld(t)
	spec, man, _ := testDeployment(t, false, 0)
	w.rt.deployErrs = []error{errOutage}
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec)
	g, _ := groupFor(man, spec)
	m.send(inManifest{group: g})
	eventually(t, "first deploy", func() bool { d, _, _ := w.rt.counts(); return d == 1 })
	w.phase(m, PhaseAwaitingManifest)
	// Even past manifest_timeout, a lease whose manifest came is never
	// blamed on the tenant.
	m.send(inManifestDue{height: 1_000})
	m.send(inChain{lease: l}) // the next reconcile
	w.started(1)
	if n := len(sentOf[*markettypes.MsgCloseLease](w.tx)); n != 0 {
		t.Errorf("closed %d times", n)
	}
}

func TestStartRefusedIsRetriedAtReconcile(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, false, 0)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	w.tx.failNext(&markettypes.MsgStartLease{}, errOutage)
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec)
	m.send(inChain{lease: l})
	w.started(1)
	w.phase(m, PhaseRunning)
	if v := m.view(); v.State != markettypes.LEASE_STATE_PENDING {
		t.Fatalf("state after a refused start: %s", v.State)
	}
	m.send(inChain{lease: l, containers: true})
	w.started(2)
	eventually(t, "active", func() bool { return m.view().State == markettypes.LEASE_STATE_ACTIVE })
	if d, _, _ := w.rt.counts(); d != 1 {
		t.Errorf("deployed %d times, want once", d)
	}
}

func TestManifestMissingClosesAndOutageIsRetried(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 0)
	w.tx.failNext(&markettypes.MsgCloseLease{}, errOutage)
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec)
	m.send(inChain{lease: l})
	w.phase(m, PhaseAwaitingManifest)
	// The daemon sends the due notice only manifest_timeout after the win.
	w.d.sendDue(context.Background(), l.CreatedAt+int64(markettypes.DefaultParams().ManifestTimeout)-1)
	time.Sleep(20 * time.Millisecond)
	if n := len(sentOf[*markettypes.MsgCloseLease](w.tx)); n != 0 {
		t.Fatalf("closed before manifest_timeout (%d)", n)
	}
	w.d.sendDue(context.Background(), l.CreatedAt+int64(markettypes.DefaultParams().ManifestTimeout))
	w.closedAs(markettypes.CLOSE_REASON_MANIFEST_MISSING)
	w.phase(m, PhaseCloseFailed) // the chain was away
	m.send(inChain{lease: l})    // the next reconcile retries with the same reason
	eventually(t, "close retried", func() bool { return len(sentOf[*markettypes.MsgCloseLease](w.tx)) == 2 })
	if c := sentOf[*markettypes.MsgCloseLease](w.tx)[1]; c.Reason != markettypes.CLOSE_REASON_MANIFEST_MISSING {
		t.Errorf("retried as %s", c.Reason.ReasonString())
	}
	w.phase(m, PhaseClosing)
	w.finish(m, "manifest_missing")
}

func TestCrashRecoveryAdoptsContainers(t *testing.T) {
	spec, _, raw := testDeployment(t, true, 0)
	started := time.Unix(1_700_000_000, 0)
	complete := runtime.LeaseStatus{Services: map[string][]runtime.ReplicaStatus{"app": {{Service: "app", State: "running", StartedAt: started}}}}

	t.Run("active lease: kept, job watched again", func(t *testing.T) {
		w := newWorld(t)
		_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
		l := testLease(1, markettypes.LEASE_STATE_ACTIVE)
		m := w.manage(l, spec)
		m.send(inChain{lease: l, containers: true})
		eventually(t, "job watched", func() bool { _, _, checks := w.rt.counts(); return checks == 1 })
		if d, r, _ := w.rt.counts(); d != 0 || r != 0 {
			t.Errorf("adoption deployed %d and removed %d times", d, r)
		}
		// The job ends with no exit seen (the events stream was down): the
		// next reconcile, finding none of its containers running, asks.
		w.rt.endJob(runtime.JobResult{Succeeded: false, ExitCodes: map[string]int{"app/0": 2}})
		m.send(inChain{lease: l, containers: true, counted: true, running: 0})
		w.closedAs(markettypes.CLOSE_REASON_WORKLOAD_FAILED)
	})
	t.Run("pending lease, every replica ran: started", func(t *testing.T) {
		w := newWorld(t)
		_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
		l := testLease(1, markettypes.LEASE_STATE_PENDING)
		w.rt.status[l.Id.Order.Name()] = complete
		m := w.manage(l, spec)
		m.send(inChain{lease: l, containers: true})
		w.started(1)
		if d, r, _ := w.rt.counts(); d != 0 || r != 0 {
			t.Errorf("adoption deployed %d and removed %d times", d, r)
		}
	})
	t.Run("pending lease cut off mid-deploy: removed and run again", func(t *testing.T) {
		w := newWorld(t)
		_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
		l := testLease(1, markettypes.LEASE_STATE_PENDING)
		m := w.manage(l, spec)
		m.send(inChain{lease: l, containers: true}) // a network, no replica ever started
		w.started(1)
		if d, r, _ := w.rt.counts(); d != 1 || r != 1 {
			t.Errorf("deployed %d and removed %d times, want once each", d, r)
		}
	})
}

func TestCloseDuringDeployStopsIt(t *testing.T) {
	w := newWorld(t)
	spec, man, _ := testDeployment(t, false, 0)
	w.rt.deployGate = make(chan struct{}) // never opens: a slow pull
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec)
	g, _ := groupFor(man, spec)
	m.send(inManifest{group: g})
	w.phase(m, PhaseDeploying)
	w.finish(m, "tenant")
	if _, removed, _ := w.rt.counts(); removed != 1 {
		t.Errorf("removed %d times", removed)
	}
	if n := len(sentOf[*markettypes.MsgStartLease](w.tx)); n != 0 {
		t.Errorf("a closed lease was started")
	}
}

// slottedWorld is a world whose daemon has slots engine slots, with the
// order spec and manifest group of a one-service deployment.
func slottedWorld(t *testing.T, slots int) (*world, markettypes.GroupSpec, sdl.ManifestGroup) {
	t.Helper()
	w := newWorld(t)
	w.d.env.engineSlots = make(chan struct{}, slots)
	spec, man, _ := testDeployment(t, false, 0)
	g, err := groupFor(man, spec)
	if err != nil {
		t.Fatal(err)
	}
	return w, spec, g
}

// deployLease manages the pending lease of deployment dseq and sends it
// its manifest.
func (w *world) deployLease(dseq uint64, spec markettypes.GroupSpec, g sdl.ManifestGroup) *leaseManager {
	w.t.Helper()
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	l.Id.Order.Dseq = dseq
	m := w.manage(l, spec)
	m.send(inManifest{group: g})
	return m
}

// TestDeploysWaitForAnEngineSlot: with parallel_deploys 2, six leases
// whose manifests arrive together are deployed two at a time while the
// others wait their turn; a lease closed while it waits is torn down and
// never deployed; once the engine answers, the rest run and start.
func TestDeploysWaitForAnEngineSlot(t *testing.T) {
	w, spec, g := slottedWorld(t, 2)
	gate := make(chan struct{})
	w.rt.mu.Lock()
	w.rt.deployGate = gate // the engine does not answer yet
	w.rt.mu.Unlock()
	var ms []*leaseManager
	for i := range 6 {
		ms = append(ms, w.deployLease(uint64(200+i), spec, g))
	}
	for _, m := range ms {
		w.phase(m, PhaseDeploying)
	}
	deploying := func() map[string]bool {
		w.rt.mu.Lock()
		defer w.rt.mu.Unlock()
		return maps.Clone(w.rt.deploying)
	}
	eventually(t, "two deploys at the engine", func() bool { return len(deploying()) == 2 })
	time.Sleep(200 * time.Millisecond) // room for a third, were the slots not held
	var waiting *leaseManager
	for _, m := range ms {
		if !deploying()[m.key] {
			waiting = m
			break
		}
	}
	w.finish(waiting, "tenant")
	close(gate)
	for _, m := range ms {
		if m != waiting {
			w.phase(m, PhaseRunning)
		}
	}
	w.started(5)
	w.rt.mu.Lock()
	defer w.rt.mu.Unlock()
	if w.rt.maxDeploys != 2 || len(w.rt.deployed) != 5 {
		t.Fatalf("%d deploys at once at most, %d deployed; want 2 and 5", w.rt.maxDeploys, len(w.rt.deployed))
	}
	for _, d := range w.rt.deployed {
		if d.Lease.Order.Name() == waiting.key {
			t.Fatalf("%s was deployed after it closed", waiting.key)
		}
	}
}

// TestSlowPullHoldsNoEngineSlot: with one engine slot, a lease whose image
// pull hangs (a registry trickling its bytes) does not keep another
// tenant's lease from deploying and starting; once its pull fails, the
// lease closes as the tenant's fault, as before.
func TestSlowPullHoldsNoEngineSlot(t *testing.T) {
	w, spec, g := slottedWorld(t, 1)
	const slow = 300
	release := make(chan struct{})
	w.rt.mu.Lock()
	w.rt.pull = func(ctx context.Context, wl runtime.Workload) error {
		if wl.Lease.Order.Dseq != slow {
			return nil
		}
		select {
		case <-release:
			return fmt.Errorf("pull %s: %w", wl.Group.Services[0].Image, runtime.ErrImageUnavailable)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.rt.mu.Unlock()
	w.phase(w.deployLease(slow, spec, g), PhaseDeploying)
	w.phase(w.deployLease(slow+1, spec, g), PhaseRunning)
	w.started(1)
	close(release)
	w.closedAs(markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE)
	if d, _, _ := w.rt.counts(); d != 1 {
		t.Fatalf("%d deploys, want the fast lease's only", d)
	}
}

// TestPullCutNearTheStartDeadline: a pending lease whose image pull never
// ends (a tenant's registry that never sends the image) has the pull cut
// pullMargin blocks before its start deadline and closes as
// image_unavailable, the tenant's fault, not left for the chain to close
// as the provider's start timeout. A lease whose images are in but which
// waits for the engine is the provider's to start: it is not cut.
func TestPullCutNearTheStartDeadline(t *testing.T) {
	w, spec, g := slottedWorld(t, 1)
	const stalled = 300
	gate := make(chan struct{})
	w.rt.mu.Lock()
	w.rt.deployGate = gate // the engine does not answer yet
	w.rt.pull = func(ctx context.Context, wl runtime.Workload) error {
		if wl.Lease.Order.Dseq != stalled {
			return nil
		}
		select {
		case <-wl.ImagesDue: // nil for a lease that has started: never
			return fmt.Errorf("%w: %s: the registry had not sent it", runtime.ErrImageUnavailable, wl.Group.Services[0].Image)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.rt.mu.Unlock()
	m := w.deployLease(stalled, spec, g)
	holding := w.deployLease(stalled+1, spec, g) // at the engine, in the slot
	waiting := w.deployLease(stalled+2, spec, g) // images in, waiting for the slot
	for _, l := range []*leaseManager{m, holding, waiting} {
		w.phase(l, PhaseDeploying)
	}
	eventually(t, "a deploy at the engine", func() bool {
		w.rt.mu.Lock()
		defer w.rt.mu.Unlock()
		return len(w.rt.deploying) == 1
	})
	deadline := testLease(1, markettypes.LEASE_STATE_PENDING).StartDeadline
	due := deadline - pullMargin(markettypes.DefaultParams())
	w.d.sendDue(context.Background(), due-1)
	time.Sleep(50 * time.Millisecond)
	if n := len(sentOf[*markettypes.MsgCloseLease](w.tx)); n != 0 {
		t.Fatalf("closed %d leases before the margin", n)
	}
	w.d.sendDue(context.Background(), due)
	w.closedAs(markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE)
	if c := sentOf[*markettypes.MsgCloseLease](w.tx); len(c) != 1 || c[0].Lease.Order.Dseq != stalled {
		t.Fatalf("closes %+v, want the stalled lease's only", c)
	}
	w.finish(m, "image_unavailable")
	close(gate)
	w.phase(holding, PhaseRunning)
	w.phase(waiting, PhaseRunning)
	w.started(2)
	if n := len(sentOf[*markettypes.MsgCloseLease](w.tx)); n != 1 {
		t.Fatalf("%d closes, want the stalled lease's only", n)
	}
}

// A lease nothing happens to holds no goroutine: 50 running leases, job
// and service alike, cost the daemon no more goroutines than none, and
// each still answers its next input.
func TestIdleLeasesHoldNoGoroutine(t *testing.T) {
	w := newWorld(t)
	serviceSpec, _, serviceRaw := testDeployment(t, false, 0)
	jobSpec, _, jobRaw := testDeployment(t, true, 0)
	before := goruntime.NumGoroutine()
	var ms []*leaseManager
	for i := range 50 {
		spec, raw := serviceSpec, serviceRaw
		if i%2 == 0 {
			spec, raw = jobSpec, jobRaw
		}
		ms = append(ms, w.adoptRunning(uint64(100+i), spec, raw))
	}
	for _, m := range ms {
		w.phase(m, PhaseRunning)
	}
	eventually(t, "the leases' goroutines gone", func() bool { return goruntime.NumGoroutine() <= before+5 })
	w.finish(ms[0], "tenant")
	w.finish(ms[1], "tenant")
}

// TestReconcileOfIdleLeasesStartsNoGoroutines: a reconcile tells every
// live lease what the chain and the engine hold; leases that need nothing
// from it are told on the reconcile's own goroutine, not woken on one each
// (with 1,000 leases that was as many stacks at once, every reconcile).
func TestReconcileOfIdleLeasesStartsNoGoroutines(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, false, 0)
	const n = 300
	var ms []*leaseManager
	for i := range n {
		m := w.adoptRunning(uint64(100+i), spec, raw)
		ms = append(ms, m)
		w.chain.mu.Lock()
		w.chain.leases = append(w.chain.leases, testLeaseOf(m.ref.Order.Dseq))
		w.chain.mu.Unlock()
		w.rt.mu.Lock()
		w.rt.running[m.ref.Order.Name()] = m.ref
		w.rt.mu.Unlock()
	}
	for _, m := range ms {
		w.phase(m, PhaseRunning)
	}
	created := func() uint64 {
		s := []rtmetrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
		rtmetrics.Read(s)
		if s[0].Value.Kind() != rtmetrics.KindUint64 {
			t.Fatalf("this Go runtime has no %s", s[0].Name)
		}
		return s[0].Value.Uint64()
	}
	for round := range 2 {
		before := created()
		if err := w.d.reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := created() - before; got > 20 {
			t.Errorf("reconcile %d of %d idle leases started %d goroutines", round+1, n, got)
		}
	}
	for _, m := range ms {
		if v := m.view(); v.Phase != PhaseRunning || v.State != markettypes.LEASE_STATE_ACTIVE {
			t.Fatalf("lease %s after the reconciles: %+v, want it running", m.key, v)
		}
	}
	if deployed, _, _ := w.rt.counts(); deployed != 0 {
		t.Errorf("the reconciles deployed %d leases that were running", deployed)
	}
}

// adoptRunning manages the active lease of deployment dseq, whose
// manifest (raw) the daemon stored and whose container runs, and tells it
// so, as a restarted daemon's reconcile does.
func (w *world) adoptRunning(dseq uint64, spec markettypes.GroupSpec, raw []byte) *leaseManager {
	w.t.Helper()
	l := testLeaseOf(dseq)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, dseq), raw)
	m := w.manage(l, spec)
	m.send(inChain{lease: l, containers: true, counted: true, running: 1})
	return m
}

// testLeaseOf is the active lease of deployment dseq.
func testLeaseOf(dseq uint64) markettypes.Lease {
	l := testLease(1, markettypes.LEASE_STATE_ACTIVE)
	l.Id.Order.Dseq = dseq
	return l
}

// A manager made as the daemon stops (its context already ended) stops
// at once, and the daemon's wait for its managers ends.
func TestManagerAttachedAfterShutdownStops(t *testing.T) {
	w := newWorld(t)
	spec, _, _ := testDeployment(t, false, 0)
	w.stop()
	m := w.manage(testLease(1, markettypes.LEASE_STATE_ACTIVE), spec)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a manager attached after shutdown did not stop")
	}
	w.d.wg.Wait()
}

func TestShutdownLeavesContainersRunning(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, false, 0)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	l := testLease(1, markettypes.LEASE_STATE_ACTIVE)
	m := w.manage(l, spec)
	m.send(inChain{lease: l})
	w.phase(m, PhaseRunning)
	w.stop()
	w.d.wg.Wait()
	if _, removed, _ := w.rt.counts(); removed != 0 {
		t.Error("a shutdown removed containers")
	}
	select {
	case <-m.done:
	default:
		t.Error("manager still running after shutdown")
	}
}

func TestPhaseNames(t *testing.T) {
	for p := PhaseAwaitingManifest; p <= PhaseClosed; p++ {
		if s := p.String(); s == "" || s == "unknown" || strings.Contains(s, " ") {
			t.Errorf("phase %d is %q", p, s)
		}
	}
	if Phase(99).String() != "unknown" {
		t.Error("out-of-range phase")
	}
}

// TestUpdateInPlace: a new manifest for a running service lease is run by
// the runtime's Update and becomes the lease's version; one that fails
// leaves the old version and says why; the same version again, or a job,
// is not updated; after a restart, containers running another version
// than the stored manifest are updated to it.
func TestUpdateInPlace(t *testing.T) {
	spec, man, raw := testDeployment(t, false, 0)
	v1 := man.Groups[0]
	v2 := v1
	v2.Services = append([]sdl.ManifestService(nil), v1.Services...)
	v2.Services[0].Image = "app:2"

	w := newWorld(t)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	m := w.manage(l, spec)
	m.send(inChain{lease: l})
	w.started(1)
	w.phase(m, PhaseRunning)

	m.send(inManifest{group: v2})
	eventually(t, "v2 runs", func() bool { return m.view().Manifest == v2.Hash() })
	if w.rt.updated[0].Group.Services[0].Image != "app:2" || m.view().UpdateError != "" {
		t.Fatalf("update ran %+v, error %q", w.rt.updated, m.view().UpdateError)
	}

	w.rt.mu.Lock()
	w.rt.updateErrs = []error{errors.New(`service "app" replica 0 exited with code 3`)}
	w.rt.mu.Unlock()
	m.send(inManifest{group: v1})
	eventually(t, "the failed update reported", func() bool { return strings.Contains(m.view().UpdateError, "exited with code 3") })
	if v := m.view(); v.Manifest != v2.Hash() || v.Phase != PhaseRunning {
		t.Fatalf("after a failed update: %+v", v)
	}
	m.send(inManifest{group: v2}) // the version it runs
	time.Sleep(100 * time.Millisecond)
	if len(w.rt.updated) != 2 {
		t.Fatalf("%d updates, want 2 (the running version is not updated again)", len(w.rt.updated))
	}
	if _, r, _ := w.rt.counts(); r != 0 {
		t.Fatalf("an update removed the lease %d times", r)
	}

	// A restart: the stored manifest is v2, a container still runs v1.
	w2 := newWorld(t)
	_ = w2.d.store.saveManifest(deploymentKey(testOwner, 7), mustJSON(t, sdl.Manifest{Version: man.Version, Groups: []sdl.ManifestGroup{v2}}))
	l2 := testLease(1, markettypes.LEASE_STATE_ACTIVE)
	w2.rt.status[l2.Id.Order.Name()] = runtime.LeaseStatus{Services: map[string][]runtime.ReplicaStatus{"app": {{Service: "app", State: "running", Manifest: v1.Hash()}}}}
	m2 := w2.manage(l2, spec)
	m2.send(inChain{lease: l2, containers: true})
	eventually(t, "the cut-off update is run again", func() bool {
		w2.rt.mu.Lock()
		defer w2.rt.mu.Unlock()
		return len(w2.rt.updated) == 1 && w2.rt.updated[0].Group.Hash() == v2.Hash()
	})

	// A job is not updated in place.
	jspec, jman, jraw := testDeployment(t, true, 0)
	w3 := newWorld(t)
	_ = w3.d.store.saveManifest(deploymentKey(testOwner, 7), jraw)
	l3 := testLease(1, markettypes.LEASE_STATE_PENDING)
	m3 := w3.manage(l3, jspec)
	m3.send(inChain{lease: l3})
	w3.started(1)
	j2 := jman.Groups[0]
	j2.Services = append([]sdl.ManifestService(nil), j2.Services...)
	j2.Services[0].Image = "app:2"
	m3.send(inManifest{group: j2})
	eventually(t, "a job's update refused", func() bool { return strings.Contains(m3.view().UpdateError, "not updated in place") })
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCrashLoopClosesAsWorkloadFailed: crashRestarts failed exits of a
// service replica within the window close the lease as workload_failed,
// with the exit code and last output in its events; clean exits, exits of
// another version and exits spread beyond the window do not; an exit the
// engine will not restart does at once.
func TestCrashLoopClosesAsWorkloadFailed(t *testing.T) {
	spec, man, raw := testDeployment(t, false, 0)
	run := func(t *testing.T) (*world, *leaseManager) {
		w := newWorld(t)
		w.d.env.crashRestarts, w.d.env.crashWindow = 3, time.Minute
		_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
		l := testLease(1, markettypes.LEASE_STATE_PENDING)
		m := w.manage(l, spec)
		m.send(inChain{lease: l})
		w.started(1)
		w.phase(m, PhaseRunning)
		return w, m
	}
	v := man.Groups[0].Hash()
	exit := func(m *leaseManager, at time.Time, code int, manifest string, final bool) {
		m.send(inExited{ev: runtime.ContainerEvent{Time: at, Kind: "exited", Service: "app", ExitCode: code, Manifest: manifest, Final: final}})
	}
	t0 := time.Unix(1_800_000_000, 0)

	t.Run("three crashes within the window", func(t *testing.T) {
		w, m := run(t)
		exit(m, t0, 0, v, false)                        // clean: not a crash
		exit(m, t0.Add(time.Second), 2, "other", false) // another version's
		exit(m, t0.Add(2*time.Second), 2, v, false)
		exit(m, t0.Add(3*time.Second), 2, v, false)
		time.Sleep(50 * time.Millisecond)
		if len(sentOf[*markettypes.MsgCloseLease](w.tx)) != 0 {
			t.Fatal("closed after two crashes")
		}
		exit(m, t0.Add(4*time.Second), 3, v, false)
		w.closedAs(markettypes.CLOSE_REASON_WORKLOAD_FAILED)
		eventually(t, "crash_loop event", func() bool {
			for _, ev := range w.d.leaseLog.events(m.key) {
				if ev.Kind == "crash_loop" && ev.ExitCode != nil && *ev.ExitCode == 3 && strings.Contains(ev.Message, "app-0 crashed 3 times") {
					return true
				}
			}
			return false
		})
	})
	t.Run("crashes spread beyond the window", func(t *testing.T) {
		w, m := run(t)
		for i := range 5 {
			exit(m, t0.Add(time.Duration(i)*40*time.Second), 1, v, false)
		}
		time.Sleep(50 * time.Millisecond)
		if len(sentOf[*markettypes.MsgCloseLease](w.tx)) != 0 {
			t.Fatal("closed although no window held three crashes")
		}
	})
	t.Run("not restarted", func(t *testing.T) {
		w, m := run(t)
		exit(m, t0, 137, v, true)
		w.closedAs(markettypes.CLOSE_REASON_WORKLOAD_FAILED)
	})
}

// TestEngineSlotsFollowTheRuntime: the daemon bounds deploys on Docker by
// runtime.parallel_deploys (16 when unset) and not on Kubernetes, whose
// rollouts wait on the cluster; there doEngine runs the operation at once.
func TestEngineSlotsFollowTheRuntime(t *testing.T) {
	st, err := newStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	slots := func(kind string, n int) chan struct{} {
		cfg := &config.Config{}
		cfg.Runtime.Kind, cfg.Runtime.ParallelDeploys = kind, n
		return newDaemon(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), newFakeChain(), testProvider, st, nil, inventory.Inventory{}).env.engineSlots
	}
	if s := slots("", 0); cap(s) != config.DefaultParallelDeploys {
		t.Errorf("docker, parallel_deploys unset: %d slots, want %d", cap(s), config.DefaultParallelDeploys)
	}
	if s := slots("", 3); cap(s) != 3 {
		t.Errorf("docker, parallel_deploys 3: %d slots", cap(s))
	}
	if s := slots(config.RuntimeKubernetes, 3); s != nil {
		t.Errorf("kubernetes: %d slots, want none", cap(s))
	}

	w, spec, g := slottedWorld(t, 1)
	w.d.env.engineSlots = nil // as on Kubernetes
	gate := make(chan struct{})
	w.rt.mu.Lock()
	w.rt.deployGate = gate
	w.rt.mu.Unlock()
	for i := range 3 {
		w.deployLease(uint64(400+i), spec, g)
	}
	eventually(t, "three deploys at once", func() bool {
		w.rt.mu.Lock()
		defer w.rt.mu.Unlock()
		return len(w.rt.deploying) == 3
	})
	close(gate)
	w.started(3)
}
