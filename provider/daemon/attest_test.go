package daemon

import (
	"context"
	"testing"

	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// TestAttestationSaysWhatTheEngineRuns: a managed lease with all its
// replicas running is attested running (not named), with some degraded,
// with none down; a lease the daemon does not manage is down however many
// containers it has; pending leases are not attested; no active lease, no
// attestation.
func TestAttestationSaysWhatTheEngineRuns(t *testing.T) {
	w := newWorld(t)
	spec, _, raw := testDeployment(t, false, 0)
	_ = w.d.store.saveManifest(deploymentKey(testOwner, 7), raw)
	up, half, gone := testLease(1, markettypes.LEASE_STATE_ACTIVE), testLease(2, markettypes.LEASE_STATE_ACTIVE), testLease(3, markettypes.LEASE_STATE_ACTIVE)
	pending := testLease(4, markettypes.LEASE_STATE_PENDING)
	w.chain.leases = []markettypes.Lease{up, half, gone}
	for _, l := range w.chain.leases {
		w.chain.orders[orderKey(l.Id.Order)] = markettypes.Order{Id: l.Id.Order, State: markettypes.ORDER_STATE_MATCHED, Spec: spec}
		w.rt.running[l.Id.Order.Name()] = l.Id
	}
	if err := w.d.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, l := range w.chain.leases {
		m, ok := w.d.managed(orderKey(l.Id.Order))
		if !ok {
			t.Fatalf("%s not managed", l.Id.Name())
		}
		w.phase(m, PhaseRunning)
	}
	// A lease whose containers the daemon is replacing (an update, or its
	// roll-back) has none running for a moment: not down. Its view, and
	// that of a lease whose group runs two replicas, are set over the
	// managers' own (which their goroutines may publish again at any time).
	updating := testLease(6, markettypes.LEASE_STATE_ACTIVE)
	views := func(key string) (leaseView, bool) {
		switch key {
		case orderKey(updating.Id.Order):
			return leaseView{Phase: PhaseRunning, Replicas: 1, Busy: true}, true
		case orderKey(half.Id.Order):
			return leaseView{Phase: PhaseRunning, Replicas: 2}, true
		}
		m, ok := w.d.managed(key)
		if !ok {
			return leaseView{}, false
		}
		return m.view(), true
	}
	stranger := testLease(5, markettypes.LEASE_STATE_ACTIVE) // active on chain, unknown here
	leases := []markettypes.Lease{up, half, gone, pending, stranger, updating}
	running := map[string]int{orderKey(up.Id.Order): 1, orderKey(half.Id.Order): 1, orderKey(stranger.Id.Order): 3}

	msg := attestationOf(testProvider, leases, running, views)
	if msg == nil || msg.Leases != 5 || msg.Provider != testProvider {
		t.Fatalf("attestation %+v: want the provider's 5 active leases", msg)
	}
	names := func(ids []markettypes.OrderID) map[string]bool {
		out := map[string]bool{}
		for _, id := range ids {
			out[id.Name()] = true
		}
		return out
	}
	down, degraded := names(msg.Down), names(msg.Degraded)
	if len(down) != 2 || !down[gone.Id.Order.Name()] || !down[stranger.Id.Order.Name()] {
		t.Errorf("down %v: want the lease with no container and the one not managed here", down)
	}
	if len(degraded) != 2 || !degraded[half.Id.Order.Name()] || !degraded[updating.Id.Order.Name()] {
		t.Errorf("degraded %v: want the lease running 1 of 2 replicas and the one being updated", degraded)
	}
	if err := msg.ValidateBasic(); err != nil {
		t.Errorf("the daemon's attestation fails the chain's checks: %v", err)
	}
	// The daemon's own managers: running, down, and a stranger down.
	own := w.d.attestation([]markettypes.Lease{up, gone, stranger}, running)
	if own == nil || own.Leases != 3 || len(own.Degraded) != 0 || len(own.Down) != 2 || names(own.Down)[up.Id.Order.Name()] {
		t.Errorf("attestation from the daemon's managers %+v: want gone and stranger down, up running", own)
	}
	if got := w.d.attestation([]markettypes.Lease{pending}, running); got != nil {
		t.Errorf("attestation with no active lease: %+v, want none", got)
	}
}
