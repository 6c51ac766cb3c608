package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// A leaseManager owns one lease this provider won, from the win to the
// teardown: one goroutine (run) holds its state and takes typed inputs from
// a mailbox — chain facts from the watcher and reconcile, the manifest from
// the API, and the results of the slow operations it starts (deploy, start,
// close, adoption check, job wait), each in a goroutine it waits for. Every
// transition is in step. Nothing else changes a lease's state; the API and
// the daemon read a published snapshot (view).
type leaseManager struct {
	key       string
	ref       runtime.LeaseRef
	spec      markettypes.GroupSpec
	price     sdk.DecCoin
	createdAt int64 // height the lease was won at
	// startDeadline is the height the chain closes the lease by unless
	// it has started (0: not known).
	startDeadline int64
	env           *managerEnv
	log           *slog.Logger
	mbox          mailbox
	done          chan struct{} // closed once stopped

	// Set by attach (unwake under mbox.mu).
	ctx    context.Context
	wg     *sync.WaitGroup
	unwake func() bool

	// Owned by whichever goroutine handles the inputs (one at a time).
	stopped bool
	state   markettypes.LeaseState
	phase   Phase
	group   *sdl.ManifestGroup // the lease's group of the manifest, parsed once
	// groupHash, groupServices and groupReplicas are the group's version
	// hash, service names and container count, worked out once in
	// setGroup: every handled input publishes them.
	groupHash     string
	groupServices []string
	groupReplicas int
	job           bool // every service is restart: never
	containers    bool // the engine holds containers of this lease
	busy          bool // an operation is in flight; its result is due
	// A running job is followed by its exits, not by a goroutine: watching
	// says its exits are followed, checking that the engine is being asked
	// whether it has ended, recheck that an exit came while it was.
	watching    bool
	checking    bool
	recheck     bool
	closeReason markettypes.CloseReason
	// update is a newer version of the group waiting to take over (sent
	// while another operation ran); updateErr says why the last update
	// did not take over ("" when it did, or none was tried).
	update    *sdl.ManifestGroup
	updateErr string
	updateFor string // the hash of the version updateErr is about
	// crashes are the recent failed exits of each service replica.
	crashes  map[string][]time.Time
	opCtx    context.Context
	opCancel context.CancelFunc
	ops      sync.WaitGroup
	// imagesDue is the runtime.Workload.ImagesDue of a pending lease's
	// deploy in flight, closed by inStartDue (nil: no such deploy, or
	// closed already).
	imagesDue chan struct{}

	mu   sync.Mutex
	snap leaseView
}

// leaseView is what the daemon and the API may read of a lease.
type leaseView struct {
	State         markettypes.LeaseState
	Phase         Phase
	HasManifest   bool
	CreatedAt     int64
	StartDeadline int64
	// Manifest is the hash of the group the lease runs (or is deploying);
	// UpdateError why the last update did not take over.
	Manifest    string
	UpdateError string
	UpdateFor   string
	// Services are the names of the group's services; Replicas how many
	// containers the group runs in all.
	Services []string
	Replicas int
	// Busy: a deploy or update of the lease is in flight, its containers
	// being replaced by the daemon itself.
	Busy bool
}

// managerEnv is what every lease manager shares.
type managerEnv struct {
	provider string
	tx       Sender
	rt       Runtime
	// gpus is the reservation's GPU UUIDs for a lease (ok false: none held).
	gpus func(key string) ([]string, bool)
	// finished is called once a lease closed on chain is torn down.
	finished func(m *leaseManager, reason string)
	// txTimeout bounds waiting for a start or close transaction.
	txTimeout time.Duration
	// record keeps an event of a lease for its tenant (nil: not kept).
	record func(key string, ev api.LeaseEvent)
	// crashRestarts exits with an error within crashWindow make a
	// service replica crash-looping: the lease closes as workload_failed
	// (0: never).
	crashRestarts int
	crashWindow   time.Duration
	// engineSlots bounds the deploys, updates and adoption checks running
	// at once (runtime.parallel_deploys): one is held for each (nil: not
	// bounded, on Kubernetes).
	engineSlots chan struct{}
}

// Inputs of a lease manager.
type (
	input interface{ isInput() }
	// inChain: the lease as the chain shows it now (reconcile, or the
	// event that created it), and whether the engine has its containers.
	inChain struct {
		lease      markettypes.Lease
		containers bool
		// running is how many of its containers run, when counted.
		running int
		counted bool
	}
	// inManifest: the tenant's manifest arrived (already checked against
	// the order by the API).
	inManifest struct{ group sdl.ManifestGroup }
	// inStarted: the chain started the lease.
	inStarted struct{}
	// inClosed: the lease is closed on chain (or gone from it): tear down.
	inClosed struct{ reason string }
	// inManifestDue: manifest_timeout has passed since the win.
	inManifestDue struct{ height int64 }
	// inStartDue: the start deadline is pullMargin blocks away or
	// closer; an image still not on the engine then is the tenant's
	// registry's fault.
	inStartDue struct{ height int64 }
	// inExited: a container of the lease exited.
	inExited struct{ ev runtime.ContainerEvent }
	// inStop: the daemon is stopping (its context ended).
	inStop struct{}

	deployDone   struct{ err error }
	startDone    struct{ err error }
	closeDone    struct{ err error }
	adoptChecked struct {
		complete bool
		// stale: some containers run another version of the group than
		// the stored manifest (an update cut off by a restart).
		stale bool
		err   error
	}
	updateDone struct {
		group sdl.ManifestGroup
		err   error
	}
	// jobChecked: what the engine said of a job's containers.
	jobChecked struct {
		res   runtime.JobResult
		ended bool
		err   error
	}
	// opDropped: an engine operation given up while it waited for its
	// slot, the lease closing or the daemon stopping (nothing to apply).
	opDropped struct{}
)

func (inChain) isInput()       {}
func (inManifest) isInput()    {}
func (inStarted) isInput()     {}
func (inClosed) isInput()      {}
func (inManifestDue) isInput() {}
func (inStartDue) isInput()    {}
func (deployDone) isInput()    {}
func (startDone) isInput()     {}
func (closeDone) isInput()     {}
func (adoptChecked) isInput()  {}
func (jobChecked) isInput()    {}
func (updateDone) isInput()    {}
func (inExited) isInput()      {}
func (inStop) isInput()        {}
func (opDropped) isInput()     {}

// mailbox is an unbounded queue: senders never block, so the watcher and
// the API are never held up by a busy lease. It also says whether a
// goroutine is handling the queue: a manager has one only while it has
// inputs.
type mailbox struct {
	mu       sync.Mutex
	queue    []input
	draining bool
}

// put queues in and reports whether a goroutine must start to handle it
// (none is handling the queue).
func (b *mailbox) put(in input) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, in)
	if b.draining {
		return false
	}
	b.draining = true
	return true
}

// take returns the queued inputs; when there are none it returns nil and
// the goroutine handling the queue must end.
func (b *mailbox) take() []input {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queue
	b.queue = nil
	if len(q) == 0 {
		b.draining = false
		return nil
	}
	return q
}

// newLeaseManager builds the manager of a lease; stored is the manifest the
// daemon kept for its deployment (nil: none yet).
func newLeaseManager(env *managerEnv, l markettypes.Lease, spec markettypes.GroupSpec, stored []byte, logger *slog.Logger) *leaseManager {
	m := &leaseManager{
		key: orderKey(l.Id.Order), ref: l.Id, spec: spec, price: l.Price, createdAt: l.CreatedAt, startDeadline: l.StartDeadline,
		env: env, state: l.State, phase: PhaseAwaitingManifest,
		done: make(chan struct{}),
	}
	m.log = logger.With("lease", m.key)
	if stored != nil {
		var man sdl.Manifest
		if err := json.Unmarshal(stored, &man); err != nil {
			m.log.Error("stored manifest unreadable; waiting for the tenant to send it again", "err", err)
		} else if g, err := groupFor(man, spec); err != nil {
			m.log.Error("stored manifest does not fit the lease; waiting for the tenant to send it again", "err", err)
		} else {
			m.setGroup(g)
		}
	}
	m.publish()
	return m
}

// event records what happened to the lease, for its tenant.
func (m *leaseManager) event(kind, msg string) {
	if m.env.record != nil {
		m.env.record(m.key, api.LeaseEvent{Kind: kind, Message: msg})
	}
}

// send queues an input; a goroutine starts to handle it unless one is
// handling the queue already.
func (m *leaseManager) send(in input) {
	if m.mbox.put(in) {
		go m.drain()
	}
}

// view is the lease as last published.
func (m *leaseManager) view() leaseView {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snap
}

func (m *leaseManager) publish() {
	m.mu.Lock()
	m.snap = leaseView{State: m.state, Phase: m.phase, HasManifest: m.group != nil, CreatedAt: m.createdAt, StartDeadline: m.startDeadline, UpdateError: m.updateErr, UpdateFor: m.updateFor, Busy: m.busy}
	if m.group != nil {
		// Shared by every view of this version: nobody changes them.
		m.snap.Manifest, m.snap.Services, m.snap.Replicas = m.groupHash, m.groupServices, m.groupReplicas
	}
	m.mu.Unlock()
}

func (m *leaseManager) setGroup(g sdl.ManifestGroup) {
	m.group = &g
	m.job = runtime.IsJob(g)
	m.groupHash, m.groupServices, m.groupReplicas = g.Hash(), nil, 0
	for _, s := range g.Services {
		m.groupServices = append(m.groupServices, s.Name)
		m.groupReplicas += int(s.Count)
	}
}

// attach makes the manager live until its lease is torn down or ctx ends (a
// daemon shutting down leaves containers running, to be adopted on
// restart). It holds no goroutine while nothing happens to its lease: an
// input starts one (send), which handles what is queued and ends. wg
// counts the manager until it has stopped, after every operation it
// started has returned.
func (m *leaseManager) attach(ctx context.Context, wg *sync.WaitGroup) {
	m.ctx, m.wg = ctx, wg
	m.opCtx, m.opCancel = context.WithCancel(ctx)
	wg.Add(1)
	unwake := context.AfterFunc(ctx, func() { m.send(inStop{}) })
	// Under the mailbox's lock: with ctx already ended, the stop may be
	// handled before AfterFunc has even returned.
	m.mbox.mu.Lock()
	m.unwake = unwake
	m.mbox.mu.Unlock()
}

// drain handles the queued inputs, in order, until none is left.
func (m *leaseManager) drain() {
	for {
		ins := m.mbox.take()
		if ins == nil {
			return
		}
		m.handle(ins)
	}
}

// handle steps through a batch of inputs taken from the mailbox.
func (m *leaseManager) handle(ins []input) {
	for _, in := range ins {
		if m.stopped {
			break // inputs after the end are dropped
		}
		if m.ctx.Err() != nil {
			m.opCancel()
			m.ops.Wait()
			m.end()
			break
		}
		if reason, closed := m.step(in); closed {
			m.teardown(m.ctx, reason)
			m.end()
		}
	}
	if !m.stopped {
		m.publish()
	}
}

// tell is send for a caller that can spare one step of the manager's: a
// reconcile, which tells every live lease what the chain and the engine
// hold, and most need nothing from it. When no goroutine is handling the
// manager's inputs and in is the only one queued, it is handled on the
// caller's goroutine (a step starts its operations in goroutines of their
// own and does not wait for them) instead of on a new goroutine each:
// 1,000 leases woken at once were as many stacks. Anything else queued
// meanwhile, such as a close whose teardown waits on the engine, goes to
// a goroutine as with send.
func (m *leaseManager) tell(in input) {
	if !m.mbox.put(in) {
		return
	}
	ins := m.mbox.take()
	if len(ins) == 1 {
		m.handle(ins)
		if ins = m.mbox.take(); ins == nil {
			return
		}
	}
	go func() {
		m.handle(ins)
		m.drain()
	}()
}

// end marks the manager stopped, and lets go of ctx (an ended manager must
// not stay referenced by the daemon's context until the daemon stops).
func (m *leaseManager) end() {
	m.stopped = true
	m.mbox.mu.Lock()
	unwake := m.unwake
	m.mbox.mu.Unlock()
	if unwake != nil { // nil: the stop ran before attach had kept it; nothing is left to undo
		unwake()
	}
	close(m.done)
	m.wg.Done()
}

// step applies one input: the lease's whole state machine. It reports the
// close reason when the lease is closed on chain.
func (m *leaseManager) step(in input) (string, bool) {
	switch in := in.(type) {
	case inClosed:
		return in.reason, true

	case inStarted:
		m.state = markettypes.LEASE_STATE_ACTIVE

	case inChain:
		// A reconcile's snapshot can predate the start this manager saw
		// committed; a lease never goes back to pending, and starting it
		// again would only fail.
		if m.state != markettypes.LEASE_STATE_ACTIVE || in.lease.State != markettypes.LEASE_STATE_PENDING {
			m.state = in.lease.State
		}
		if in.lease.CreatedAt > 0 {
			m.createdAt = in.lease.CreatedAt
		}
		if in.lease.StartDeadline > 0 {
			m.startDeadline = in.lease.StartDeadline
		}
		m.containers = in.containers
		// A job none of whose containers runs has ended, whether or not
		// its exit was seen (an events stream that broke, say).
		if m.watching && in.counted && in.running == 0 {
			m.checkJob()
		}
		m.advance()

	case inManifest:
		m.event("manifest", "manifest received, version "+in.group.Hash()[:12])
		switch {
		case m.group == nil:
			m.setGroup(in.group)
		case in.group.Hash() == m.groupHash:
			m.update = nil // the version it runs: nothing to do
		case m.job || runtime.IsJob(in.group):
			m.updateErr, m.updateFor = "a job is not updated in place: close it and deploy the new version", in.group.Hash()
			m.log.Warn("update refused", "err", m.updateErr)
		default:
			g := in.group
			m.update = &g
		}
		m.advance()

	case inManifestDue:
		if m.phase == PhaseAwaitingManifest && m.group == nil && !m.busy && m.state == markettypes.LEASE_STATE_PENDING {
			m.log.Warn("no manifest within manifest_timeout; closing lease as the tenant's fault", "won_at", m.createdAt, "height", in.height)
			m.close(markettypes.CLOSE_REASON_MANIFEST_MISSING)
		}

	case inStartDue:
		// Only the wait for an image is cut: a deploy whose images are
		// in waits for its engine slot and runs (that wait is the
		// provider's).
		if m.imagesDue != nil && m.state == markettypes.LEASE_STATE_PENDING {
			m.log.Info("start deadline near: an image still being pulled is the tenant's fault now", "height", in.height, "start_deadline", m.startDeadline)
			close(m.imagesDue)
			m.imagesDue = nil
		}

	case adoptChecked:
		m.busy = false
		switch {
		case in.err != nil:
			m.log.Warn("cannot check adopted containers; reconcile will retry", "err", in.err)
			m.phase = PhaseAwaitingManifest
		case !in.complete:
			// Cut off mid-deploy before a restart: its remains are gone;
			// it runs again from the manifest.
			m.containers = false
			m.phase = PhaseAwaitingManifest
			m.advance()
		default:
			m.log.Info("containers adopted", "state", stateName(m.state))
			m.phase = PhaseRunning
			if in.stale && m.group != nil && m.update == nil && !m.job {
				m.log.Info("containers run another version than the stored manifest; updating them")
				g := *m.group
				m.update = &g
			}
			m.advance()
		}

	case updateDone:
		m.busy = false
		m.phase = PhaseRunning
		if in.err != nil {
			m.updateErr, m.updateFor = in.err.Error(), in.group.Hash()
			m.log.Warn("update did not take over; the previous version runs on", "err", in.err)
			m.event("update_failed", "version "+in.group.Hash()[:12]+" did not take over; the previous version runs on: "+in.err.Error())
		} else {
			m.setGroup(in.group)
			m.updateErr, m.updateFor = "", ""
			m.crashes = nil // the old version's exits say nothing of the new one
			m.log.Info("lease updated in place", "manifest", in.group.Hash()[:12])
			m.event("updated", "now running version "+in.group.Hash()[:12])
		}
		m.advance()

	case inExited:
		m.exited(in.ev)
		if m.watching {
			m.checkJob()
		}

	case deployDone:
		m.busy = false
		m.imagesDue = nil
		switch {
		case in.err == nil:
			m.containers = true
			m.phase = PhaseRunning
			m.event("running", "every replica started")
			m.advance()
		case errors.Is(in.err, runtime.ErrImageUnavailable):
			m.log.Warn("image unavailable; closing lease as the tenant's fault", "err", in.err)
			m.event("deploy_failed", in.err.Error())
			m.close(markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE)
		case errors.Is(in.err, runtime.ErrWorkloadInvalid):
			m.log.Warn("workload cannot run as given; closing lease as the tenant's fault", "err", in.err)
			m.event("deploy_failed", in.err.Error())
			m.close(markettypes.CLOSE_REASON_WORKLOAD_INVALID)
		case errors.Is(in.err, runtime.ErrGPUUnavailable):
			m.log.Error("GPU could not be attached; closing lease", "err", in.err)
			m.close(markettypes.CLOSE_REASON_PROVIDER)
		default:
			m.log.Error("deploy failed; will retry at the next reconcile", "err", in.err)
			m.event("deploy_failed", "the provider will retry: "+in.err.Error())
			m.phase = PhaseAwaitingManifest
		}

	case startDone:
		m.busy = false
		m.phase = PhaseRunning
		if in.err != nil {
			m.log.Error("start lease failed; will retry at the next reconcile", "err", in.err)
			return "", false
		}
		m.state = markettypes.LEASE_STATE_ACTIVE
		m.log.Info("lease started")
		m.event("active", "the lease started on chain; billing runs from its block")
		m.advance()

	case closeDone:
		m.busy = false
		if in.err != nil {
			m.log.Error("close lease failed; will retry at the next reconcile", "reason", m.closeReason.ReasonString(), "err", in.err)
			m.phase = PhaseCloseFailed
			return "", false
		}
		m.log.Info("lease close sent", "reason", m.closeReason.ReasonString())

	case jobChecked:
		m.checking = false
		if m.recheck {
			m.recheck = false
			m.checkJob()
			return "", false
		}
		switch {
		case in.err != nil:
			m.watching = false
			m.log.Warn("lost track of job; reconcile will watch it again", "err", in.err)
		case !in.ended:
			// Still running: its next exit asks again.
		case m.phase != PhaseRunning || m.busy:
			m.watching = false // asked again once the lease is running
		default:
			reason := markettypes.CLOSE_REASON_WORKLOAD_COMPLETED
			if !in.res.Succeeded {
				reason = markettypes.CLOSE_REASON_WORKLOAD_FAILED
			}
			m.log.Info("job finished", "succeeded", in.res.Succeeded, "exit_codes", in.res.ExitCodes)
			m.close(reason)
		}
	}
	return "", false
}

// advance starts whatever the lease needs next, unless an operation is in
// flight (its result calls advance again).
func (m *leaseManager) advance() {
	if m.busy {
		return
	}
	switch m.phase {
	case PhaseCloseFailed:
		m.close(m.closeReason)
	case PhaseAwaitingManifest:
		switch {
		case m.containers:
			m.adopt()
		case m.group != nil:
			m.deploy()
		}
	case PhaseRunning:
		switch {
		case m.state == markettypes.LEASE_STATE_PENDING:
			m.start()
		case m.update != nil:
			m.runUpdate()
		case m.job && !m.watching:
			m.watching = true
			m.checkJob()
		}
	}
}

// do runs op in a goroutine the manager waits for and posts its result.
func (m *leaseManager) do(op func(ctx context.Context) input) {
	m.busy = true
	m.ops.Add(1)
	go func() {
		defer m.ops.Done()
		m.send(op(m.opCtx))
	}()
}

// doEngine is do for a deploy, an update or an adoption check: its engine
// work (op) waits for one of the daemon's engine slots, so a burst of
// leases queues here with small stacks instead of holding as many requests
// at the engine at once. pull, when set, runs first and outside the slots:
// an image pull waits on a registry, and a registry that trickles its
// bytes must not hold a slot other tenants' deploys need for the whole
// pull timeout. Its failure is the operation's result. An operation whose
// lease closes (or whose daemon stops) while it waits for a slot is
// dropped without running. Without slots (Kubernetes, whose rollouts wait
// on the cluster, not on this host) op runs at once.
func (m *leaseManager) doEngine(pull func(ctx context.Context) input, op func(ctx context.Context) input) {
	m.do(func(ctx context.Context) input {
		if pull != nil {
			if failed := pull(ctx); failed != nil {
				return failed
			}
		}
		if m.env.engineSlots == nil {
			return op(ctx)
		}
		select {
		case m.env.engineSlots <- struct{}{}:
			defer func() { <-m.env.engineSlots }()
			return op(ctx)
		case <-ctx.Done():
			return opDropped{}
		}
	})
}

// adopt checks containers found after a restart. An active lease keeps
// them as they are. A pending one was maybe cut off mid-deploy: it is
// started on chain only if every replica ran (else the tenant would pay
// for nothing); otherwise its remains go and it is deployed again.
func (m *leaseManager) adopt() {
	m.phase = PhaseAdopting
	pending, group := m.state == markettypes.LEASE_STATE_PENDING, m.group
	m.doEngine(nil, func(ctx context.Context) input {
		if !pending {
			if group == nil {
				return adoptChecked{complete: true}
			}
			st, err := m.env.rt.Status(ctx, m.ref)
			if err != nil {
				return adoptChecked{err: err}
			}
			return adoptChecked{complete: true, stale: runsOtherVersion(*group, st)}
		}
		complete := false
		if group != nil {
			st, err := m.env.rt.Status(ctx, m.ref)
			if err != nil {
				return adoptChecked{err: err}
			}
			complete = replicasComplete(*group, st)
		}
		if !complete {
			m.log.Info("removing an interrupted deploy to run it again")
			if err := m.env.rt.Remove(ctx, m.ref); err != nil {
				return adoptChecked{err: fmt.Errorf("remove the interrupted deploy: %w", err)}
			}
		}
		return adoptChecked{complete: complete}
	})
}

// deploy runs the lease's group with the GPUs its reservation holds.
func (m *leaseManager) deploy() {
	m.phase = PhaseDeploying
	m.event("deploying", "pulling images and starting containers")
	group := *m.group
	var w runtime.Workload // set by the pull, before the deploy takes its slot
	var due chan struct{}
	if m.state == markettypes.LEASE_STATE_PENDING {
		// The images of a lease that has not started are due near its
		// start deadline (inStartDue): a registry that never sends one
		// must not get the provider slashed for the tenant's fault.
		due = make(chan struct{})
		m.imagesDue = due
	}
	m.doEngine(m.pull(group, &w, due, func(err error) input { return deployDone{err: err} }), func(ctx context.Context) input {
		began := time.Now()
		if _, err := m.env.rt.Deploy(ctx, w); err != nil {
			return deployDone{err: err}
		}
		m.log.Info("workload started", "services", len(group.Services), "took", time.Since(began).Round(time.Millisecond))
		return deployDone{}
	})
}

// pull is the first step of a deploy or an update of group: it sets *w to
// the workload, with the GPUs the lease's reservation holds and the images
// due when due closes (nil: never), and brings its images to the engine;
// failed turns an error into the operation's result.
func (m *leaseManager) pull(group sdl.ManifestGroup, w *runtime.Workload, due chan struct{}, failed func(error) input) func(ctx context.Context) input {
	return func(ctx context.Context) input {
		gpus, ok := m.env.gpus(m.key)
		if !ok && groupGPUs(group) > 0 {
			return failed(errors.New("no reservation holds GPUs for this lease"))
		}
		*w = runtime.Workload{Lease: m.ref, Group: group, GPUs: gpus, ImagesDue: due}
		if err := m.env.rt.PullImages(ctx, *w); err != nil {
			return failed(err)
		}
		return nil
	}
}

// exited counts a service replica's failed exits: crashRestarts of them
// within crashWindow, or one the engine will not restart, is a crash loop,
// and the lease closes as workload_failed with the exit code and the
// replica's last lines in its events, so the tenant stops paying for a
// dead service. Exits of another version (an update's) are not counted.
func (m *leaseManager) exited(ev runtime.ContainerEvent) {
	if m.job || m.group == nil || m.busy || m.phase != PhaseRunning || m.env.crashRestarts <= 0 || ev.ExitCode == 0 {
		return
	}
	if ev.Manifest != "" && ev.Manifest != m.groupHash {
		return
	}
	key := fmt.Sprintf("%s-%d", ev.Service, ev.Replica)
	if m.crashes == nil {
		m.crashes = map[string][]time.Time{}
	}
	recent := []time.Time{}
	for _, t := range m.crashes[key] {
		if ev.Time.Sub(t) <= m.env.crashWindow {
			recent = append(recent, t)
		}
	}
	recent = append(recent, ev.Time)
	m.crashes[key] = recent
	if len(recent) < m.env.crashRestarts && !ev.Final {
		return
	}
	why := fmt.Sprintf("%s crashed %d times within %s", key, len(recent), m.env.crashWindow)
	if ev.Final {
		why = fmt.Sprintf("%s crashed and the engine will not restart it (%d failed exits within %s)", key, len(recent), m.env.crashWindow)
	}
	m.log.Warn("crash loop; closing lease as the workload's failure", "replica", key, "exit_code", ev.ExitCode)
	service, code, replica := ev.Service, ev.ExitCode, ev.Replica
	m.closeAfter(markettypes.CLOSE_REASON_WORKLOAD_FAILED, func(ctx context.Context) {
		var tail bytes.Buffer
		_ = m.env.rt.Logs(ctx, m.ref, service, false, 20, &tail) // the close goes ahead without the lines
		if m.env.record != nil {
			m.env.record(m.key, api.LeaseEvent{Kind: "crash_loop", Service: service, Replica: &replica, ExitCode: &code,
				Message: why + "; last exit code " + strconv.Itoa(code) + "; last output:\n" + lastLines(tail.String(), 2048)})
		}
	})
}

// lastLines is the end of s, at most n bytes, from a line's start.
func lastLines(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// runUpdate moves the running lease to the waiting version in place; the
// old version runs on when the new one cannot.
func (m *leaseManager) runUpdate() {
	m.phase = PhaseUpdating
	group := *m.update
	m.update = nil
	m.log.Info("updating in place", "manifest", group.Hash()[:12])
	m.event("updating", "starting version "+group.Hash()[:12])
	var w runtime.Workload // set by the pull, before the update takes its slot
	m.doEngine(m.pull(group, &w, nil, func(err error) input { return updateDone{group: group, err: err} }), func(ctx context.Context) input {
		_, err := m.env.rt.Update(ctx, w)
		return updateDone{group: group, err: err}
	})
}

// start confirms a running lease on chain; rent accrues from its block.
func (m *leaseManager) start() {
	m.phase = PhaseStarting
	m.do(func(ctx context.Context) input {
		_, err := m.env.tx.SendAndWait(ctx, m.env.txTimeout, &markettypes.MsgStartLease{Provider: m.env.provider, Lease: m.ref})
		return startDone{err: err}
	})
}

// close asks the chain to close the lease; the containers go when the
// chain's closing event arrives (inClosed).
func (m *leaseManager) close(reason markettypes.CloseReason) { m.closeAfter(reason, nil) }

// closeAfter is close with first (when set) run in the operation before
// the transaction: what the tenant should read of why, gathered off the
// lease's goroutine.
func (m *leaseManager) closeAfter(reason markettypes.CloseReason, first func(ctx context.Context)) {
	m.phase, m.closeReason = PhaseClosing, reason
	m.do(func(ctx context.Context) input {
		if first != nil {
			first(ctx)
		}
		m.event("closing", "the provider closes the lease: "+reason.ReasonString())
		_, err := m.env.tx.SendAndWait(ctx, m.env.txTimeout, &markettypes.MsgCloseLease{Sender: m.env.provider, Lease: m.ref, Reason: reason})
		return closeDone{err: err}
	})
}

// checkJob asks the engine whether a job has ended: once when it starts
// running (it may have ended while the daemon was away), then at each of
// its exits, and when a reconcile finds none of its containers running.
// It does not make the lease busy: a close may be sent meanwhile.
func (m *leaseManager) checkJob() {
	if m.checking {
		m.recheck = true
		return
	}
	m.checking = true
	m.ops.Add(1)
	go func() {
		defer m.ops.Done()
		res, ended, err := m.env.rt.JobState(m.opCtx, m.ref)
		if m.opCtx.Err() != nil {
			return // closing or shutting down: nobody waits for the result
		}
		m.send(jobChecked{res: res, ended: ended, err: err})
	}()
}

// teardown removes a closed lease's containers once every operation has
// stopped, and hands the lease back to the daemon.
func (m *leaseManager) teardown(ctx context.Context, reason string) {
	m.opCancel()
	m.ops.Wait()
	m.phase = PhaseClosed
	m.publish()
	rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := m.env.rt.Remove(rmCtx, m.ref); err != nil {
		m.log.Error("cannot remove containers of closed lease; reconcile will retry", "err", err)
	}
	m.env.finished(m, reason)
}

// groupGPUs is how many GPUs a group needs in all.
func groupGPUs(g sdl.ManifestGroup) uint64 {
	var n uint64
	for _, s := range g.Services {
		n += uint64(s.Count) * uint64(s.Resources.GPUUnits)
	}
	return n
}

// runsOtherVersion reports whether a container of the lease runs another
// version of the group than g (containers from before versions were
// recorded say nothing and count as g).
func runsOtherVersion(g sdl.ManifestGroup, st runtime.LeaseStatus) bool {
	want := g.Hash()
	for _, reps := range st.Services {
		for _, r := range reps {
			if r.Manifest != "" && r.Manifest != want {
				return true
			}
		}
	}
	return false
}

// replicasComplete reports whether every replica of every service of the
// group has a container that was started: running, or (a job) finished.
// A container only created, or a missing one, means the deploy was cut off.
func replicasComplete(g sdl.ManifestGroup, st runtime.LeaseStatus) bool {
	for _, svc := range g.Services {
		reps := st.Services[svc.Name]
		if uint32(len(reps)) != svc.Count {
			return false
		}
		for _, r := range reps {
			if r.StartedAt.IsZero() || (r.State != "running" && !r.Exited()) {
				return false
			}
		}
	}
	return true
}

// groupFor picks the lease's group from a manifest and checks that what it
// would run is exactly what the order pays for, service by service.
func groupFor(m sdl.Manifest, spec markettypes.GroupSpec) (sdl.ManifestGroup, error) {
	for _, g := range m.Groups {
		if g.Name != spec.Name {
			continue
		}
		if g.Withheld != "" {
			return g, fmt.Errorf("group %q is withheld from this provider, which runs it: send the manifest with this provider's groups whole", g.Name)
		}
		if len(g.Services) != len(spec.Resources) {
			return g, fmt.Errorf("group %q has %d services, the order %d resource units", g.Name, len(g.Services), len(spec.Resources))
		}
		for i, s := range g.Services {
			u, r := spec.Resources[i], s.Resources
			if s.Count != u.Count || r.CPUMillis != u.CpuMillis || r.MemoryBytes != u.MemoryBytes || r.StorageBytes != u.StorageBytes || r.GPUUnits != u.Gpu.Units || r.GPUInterface != u.Gpu.Interface || !samePersistent(r.Persistent, u.Persistent) {
				return g, fmt.Errorf("service %q asks for other resources than the order's unit %d", s.Name, i)
			}
			if s.Image == "" {
				return g, fmt.Errorf("service %q has no image", s.Name)
			}
			if err := sdl.CheckEnv(s.Env); err != nil {
				return g, fmt.Errorf("service %q: %v", s.Name, err)
			}
		}
		return g, nil
	}
	return sdl.ManifestGroup{}, fmt.Errorf("manifest has no group %q", spec.Name)
}

// samePersistent compares a manifest service's persistent volumes with the
// order's, in order.
func samePersistent(m []sdl.PersistentVolume, o []markettypes.PersistentVolume) bool {
	if len(m) != len(o) {
		return false
	}
	for i := range m {
		if m[i].Class != o[i].Class || m[i].Bytes != o[i].Bytes {
			return false
		}
	}
	return true
}
