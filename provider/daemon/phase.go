package daemon

// Phase is how far the daemon has taken a lease it won. Every change of
// phase happens in leaseManager.step, on the lease's own goroutine.
type Phase int

const (
	// PhaseAwaitingManifest: won, and no manifest yet; or a deploy that
	// failed on this provider's side, retried at the next reconcile.
	PhaseAwaitingManifest Phase = iota
	// PhaseAdopting: containers from before a restart are being checked.
	PhaseAdopting
	// PhaseDeploying: the runtime is pulling images and starting containers.
	PhaseDeploying
	// PhaseStarting: the containers run; MsgStartLease is on its way.
	PhaseStarting
	// PhaseRunning: running (a pending lease whose start failed is started
	// again at the next reconcile; a job is watched until it exits).
	PhaseRunning
	// PhaseUpdating: a new manifest's version is taking over in place.
	PhaseUpdating
	// PhaseClosing: MsgCloseLease was accepted; the chain's closing event
	// tears the lease down.
	PhaseClosing
	// PhaseCloseFailed: MsgCloseLease was not accepted; retried at the next
	// reconcile with the same reason.
	PhaseCloseFailed
	// PhaseClosed: closed on chain, containers removed; the manager is done.
	PhaseClosed
)

var phaseNames = [...]string{
	PhaseAwaitingManifest: "awaiting_manifest",
	PhaseAdopting:         "adopting",
	PhaseDeploying:        "deploying",
	PhaseStarting:         "starting",
	PhaseRunning:          "running",
	PhaseUpdating:         "updating",
	PhaseClosing:          "closing",
	PhaseCloseFailed:      "close_failed",
	PhaseClosed:           "closed",
}

// String is the phase as the API and the logs spell it.
func (p Phase) String() string {
	if p < 0 || int(p) >= len(phaseNames) {
		return "unknown"
	}
	return phaseNames[p]
}
