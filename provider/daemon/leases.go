package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// trackLease starts tracking a lease we won (idempotent) and moves it on:
// containers found are adopted, a manifest already received starts it.
func (d *Daemon) trackLease(ctx context.Context, l markettypes.Lease, hasContainers bool) error {
	key := orderKey(l.Id.Order)
	d.mu.Lock()
	tl, known := d.leases[key]
	if known {
		tl.state = l.State
		d.mu.Unlock()
	} else {
		d.mu.Unlock()
		res, err := d.chain.Market.Order(ctx, &markettypes.QueryOrderRequest{Owner: l.Id.Order.Owner, Dseq: l.Id.Order.Dseq, Gseq: l.Id.Order.Gseq, Oseq: l.Id.Order.Oseq})
		if isNotFound(err) {
			// Won and closed again before we looked (while the daemon was
			// down, say): nothing to run. Reconcile frees what it held.
			d.log.Info("lease already gone from the chain; skipping it", "lease", key)
			return nil
		}
		if err != nil {
			return fmt.Errorf("order of lease %s: %w", key, err)
		}
		tl = &lease{ref: refOf(l.Id), key: key, spec: res.Order.Spec, state: l.State, deadline: l.StartDeadline, createdAt: l.CreatedAt, price: l.Price, phase: "awaiting_manifest"}
		if _, ok := d.engine.Get(key); !ok {
			// Won without a reservation on record (state lost): take one now.
			if dec := d.engine.Evaluate(key, tl.spec); !dec.Bid {
				d.log.Error("lease won but resources are not free", "lease", key, "reason", dec.Reason)
			} else {
				d.persistReservations()
			}
		}
		d.mu.Lock()
		if existing, ok := d.leases[key]; ok {
			tl = existing
		} else {
			d.leases[key] = tl
		}
		delete(d.bids, key)
		d.mu.Unlock()
	}
	d.mu.Lock()
	retryClose, reason := tl.phase == "close_failed", tl.closeReason
	d.mu.Unlock()
	if retryClose {
		go d.closeLease(ctx, tl, reason)
		return nil
	}
	if hasContainers {
		d.adopt(ctx, tl)
		return nil
	}
	d.maybeDeploy(ctx, tl)
	return nil
}

// adopt takes over the containers of a live lease found after a restart:
// they keep running untouched; a pending lease is started on chain; a job is
// watched again (one that exited meanwhile closes now).
func (d *Daemon) adopt(ctx context.Context, l *lease) {
	d.mu.Lock()
	if l.phase == "running" || l.phase == "closing" || l.phase == "deploying" {
		d.mu.Unlock()
		return
	}
	pending := l.state == markettypes.LEASE_STATE_PENDING
	d.mu.Unlock()
	// A lease not yet started on chain may have been caught mid-deploy (a
	// network without containers, containers never started): starting it
	// would charge the tenant for nothing. Its remains go and it is
	// deployed again from the stored manifest.
	if pending {
		complete, err := d.deployComplete(ctx, l)
		if err != nil {
			d.log.Warn("cannot check adopted containers; reconcile will retry", "lease", l.key, "err", err)
			return
		}
		if !complete {
			d.log.Info("removing an interrupted deploy to run it again", "lease", l.key)
			if err := d.rt.Remove(ctx, l.ref); err != nil {
				d.log.Error("cannot remove an interrupted deploy; reconcile will retry", "lease", l.key, "err", err)
				return
			}
			d.maybeDeploy(ctx, l)
			return
		}
	}
	d.mu.Lock()
	if l.phase == "running" || l.phase == "closing" || l.phase == "deploying" {
		d.mu.Unlock()
		return
	}
	l.phase = "running"
	d.mu.Unlock()
	d.log.Info("containers adopted", "lease", l.key, "state", l.state.String())
	go d.afterDeploy(ctx, l)
}

// deployComplete reports whether the engine runs all of a lease's group
// as its stored manifest describes.
func (d *Daemon) deployComplete(ctx context.Context, l *lease) (bool, error) {
	raw, err := d.store.loadManifest(deploymentKey(l.ref.Owner, l.ref.DSeq))
	if err != nil || raw == nil {
		return false, err
	}
	var m sdl.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return false, nil
	}
	group, err := groupFor(m, l.spec)
	if err != nil {
		return false, nil
	}
	st, err := d.rt.Status(ctx, l.ref)
	if err != nil {
		return false, err
	}
	return replicasComplete(group, st), nil
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

// maybeDeploy starts a lease whose manifest has arrived.
func (d *Daemon) maybeDeploy(ctx context.Context, l *lease) {
	raw, err := d.store.loadManifest(deploymentKey(l.ref.Owner, l.ref.DSeq))
	if err != nil {
		d.log.Error("cannot read stored manifest", "lease", l.key, "err", err)
		return
	}
	if raw == nil {
		return
	}
	d.mu.Lock()
	if l.phase != "awaiting_manifest" {
		d.mu.Unlock()
		return
	}
	l.phase = "deploying"
	d.mu.Unlock()
	go d.deploy(ctx, l, raw)
}

// deploy runs the lease's group from the manifest and starts the lease on chain.
func (d *Daemon) deploy(ctx context.Context, l *lease, raw []byte) {
	var m sdl.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		d.log.Error("stored manifest unreadable", "lease", l.key, "err", err)
		return
	}
	group, err := groupFor(m, l.spec)
	if err != nil {
		// The API refuses such a manifest; one stored by an older daemon
		// is the tenant's to fix.
		d.log.Error("manifest does not fit the lease; closing it as the tenant's fault", "lease", l.key, "err", err)
		d.closeLease(ctx, l, markettypes.CLOSE_REASON_WORKLOAD_INVALID)
		return
	}
	res, _ := d.engine.Get(l.key)
	began := time.Now()
	_, err = d.rt.Deploy(ctx, runtime.Workload{Lease: l.ref, Group: group, GPUs: res.GPUs})
	switch {
	case errors.Is(err, runtime.ErrImageUnavailable):
		d.log.Warn("image unavailable; closing lease as the tenant's fault", "lease", l.key, "err", err)
		d.closeLease(ctx, l, markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE)
		return
	case errors.Is(err, runtime.ErrWorkloadInvalid):
		d.log.Warn("workload cannot run as given; closing lease as the tenant's fault", "lease", l.key, "err", err)
		d.closeLease(ctx, l, markettypes.CLOSE_REASON_WORKLOAD_INVALID)
		return
	case errors.Is(err, runtime.ErrGPUUnavailable):
		d.log.Error("GPU could not be attached; closing lease", "lease", l.key, "err", err)
		d.closeLease(ctx, l, markettypes.CLOSE_REASON_PROVIDER)
		return
	case err != nil:
		d.log.Error("deploy failed; will retry at the next reconcile", "lease", l.key, "err", err)
		d.mu.Lock()
		l.phase = "awaiting_manifest"
		d.mu.Unlock()
		return
	}
	d.log.Info("workload started", "lease", l.key, "services", len(group.Services), "took", time.Since(began).Round(time.Millisecond))
	d.mu.Lock()
	l.phase = "running"
	d.mu.Unlock()
	d.afterDeploy(ctx, l)
}

// afterDeploy starts the lease on chain if it is pending and watches jobs.
func (d *Daemon) afterDeploy(ctx context.Context, l *lease) {
	d.mu.Lock()
	pending := l.state == markettypes.LEASE_STATE_PENDING
	d.mu.Unlock()
	if pending {
		if _, err := d.bcast.SendAndWait(ctx, 30*time.Second, &markettypes.MsgStartLease{Provider: d.provider, Lease: bidID(l.ref)}); err != nil {
			d.log.Error("start lease failed; will retry at the next reconcile", "lease", l.key, "err", err)
			d.mu.Lock()
			if l.phase == "running" {
				l.phase = "awaiting_manifest" // reconcile adopts the containers and retries
			}
			d.mu.Unlock()
			return
		}
		d.mu.Lock()
		l.state = markettypes.LEASE_STATE_ACTIVE
		d.mu.Unlock()
		d.log.Info("lease started", "lease", l.key)
	}
	if !d.isJob(l) {
		return
	}
	d.mu.Lock()
	if l.watching {
		d.mu.Unlock()
		return
	}
	l.watching = true
	d.mu.Unlock()
	go d.watchJob(ctx, l)
}

// closeOverdueManifests closes, as manifest_missing, every pending lease
// still waiting for its manifest manifest_timeout blocks after it was won
// (the chain refuses the close any earlier). It runs after each block, so
// the close lands well before the start deadline and no slash can follow.
func (d *Daemon) closeOverdueManifests(ctx context.Context, height int64) {
	var waiting []*lease
	d.mu.Lock()
	for _, l := range d.leases {
		if l.state == markettypes.LEASE_STATE_PENDING && l.phase == "awaiting_manifest" && l.createdAt > 0 {
			waiting = append(waiting, l)
		}
	}
	d.mu.Unlock()
	if len(waiting) == 0 {
		return
	}
	p, err := d.marketParams(ctx, false)
	if err != nil || p.ManifestTimeout == 0 {
		return
	}
	for _, l := range waiting {
		if height < l.createdAt+int64(p.ManifestTimeout) {
			continue
		}
		raw, err := d.store.loadManifest(deploymentKey(l.ref.Owner, l.ref.DSeq))
		if err != nil || raw != nil {
			continue // it came (and deploying failed on our side): never the tenant's fault
		}
		d.mu.Lock()
		if l.phase != "awaiting_manifest" {
			d.mu.Unlock()
			continue
		}
		l.phase = "closing"
		d.mu.Unlock()
		d.log.Warn("no manifest within manifest_timeout; closing lease as the tenant's fault", "lease", l.key, "won_at", l.createdAt, "manifest_timeout", p.ManifestTimeout)
		go d.closeLease(ctx, l, markettypes.CLOSE_REASON_MANIFEST_MISSING)
	}
}

// isJob reports whether the lease's group is a job (every service
// restart: never), from the stored manifest.
func (d *Daemon) isJob(l *lease) bool {
	raw, err := d.store.loadManifest(deploymentKey(l.ref.Owner, l.ref.DSeq))
	if err != nil || raw == nil {
		return false
	}
	var m sdl.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return false
	}
	g, err := groupFor(m, l.spec)
	return err == nil && runtime.IsJob(g)
}

// watchJob closes the lease when every container of the job has exited.
func (d *Daemon) watchJob(ctx context.Context, l *lease) {
	res, err := d.rt.WaitJob(ctx, l.ref)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("lost track of job", "lease", l.key, "err", err)
			d.mu.Lock()
			l.watching = false
			d.mu.Unlock()
		}
		return
	}
	d.mu.Lock()
	_, live := d.leases[l.key]
	closing := l.phase == "closing"
	d.mu.Unlock()
	if !live || closing {
		return // closed on chain meanwhile; its containers were removed
	}
	reason := markettypes.CLOSE_REASON_WORKLOAD_COMPLETED
	if !res.Succeeded {
		reason = markettypes.CLOSE_REASON_WORKLOAD_FAILED
	}
	d.log.Info("job finished", "lease", l.key, "succeeded", res.Succeeded, "exit_codes", res.ExitCodes)
	d.closeLease(ctx, l, reason)
}

// closeLease asks the chain to close a lease; containers go when the
// closing event arrives.
func (d *Daemon) closeLease(ctx context.Context, l *lease, reason markettypes.CloseReason) {
	d.mu.Lock()
	l.phase = "closing"
	d.mu.Unlock()
	if _, err := d.bcast.SendAndWait(ctx, 30*time.Second, &markettypes.MsgCloseLease{Sender: d.provider, Lease: bidID(l.ref), Reason: reason}); err != nil {
		d.log.Error("close lease failed; will retry at the next reconcile", "lease", l.key, "reason", reason.ReasonString(), "err", err)
		d.mu.Lock()
		if l.phase == "closing" {
			l.phase, l.closeReason = "close_failed", reason
		}
		d.mu.Unlock()
		return
	}
	d.log.Info("lease close sent", "lease", l.key, "reason", reason.ReasonString())
}

// leaseClosed tears a closed lease down: containers, reservation, manifest.
func (d *Daemon) leaseClosed(ctx context.Context, key, reason string) {
	d.mu.Lock()
	l, ok := d.leases[key]
	if ok {
		delete(d.leases, key)
		delete(d.missing, key)
		l.phase = "closing"
	}
	d.mu.Unlock()
	if !ok {
		return
	}
	if err := d.rt.Remove(ctx, l.ref); err != nil {
		d.log.Error("cannot remove containers of closed lease; reconcile will retry", "lease", key, "err", err)
	}
	if d.engine.Release(key) {
		d.persistReservations()
	}
	dep := deploymentKey(l.ref.Owner, l.ref.DSeq)
	d.mu.Lock()
	others := false
	for _, o := range d.leases {
		if o.ref.Owner == l.ref.Owner && o.ref.DSeq == l.ref.DSeq {
			others = true
		}
	}
	d.mu.Unlock()
	if !others {
		if err := d.store.deleteManifest(dep); err != nil {
			d.log.Warn("cannot delete manifest", "deployment", dep, "err", err)
		}
	}
	d.metrics.leasesClosed.WithLabelValues(reason).Inc()
	d.log.Info("lease closed", "lease", key, "reason", reason)
}

// groupFor picks the lease's group from a manifest and checks that what it
// would run is exactly what the order pays for, service by service.
func groupFor(m sdl.Manifest, spec markettypes.GroupSpec) (sdl.ManifestGroup, error) {
	for _, g := range m.Groups {
		if g.Name != spec.Name {
			continue
		}
		if len(g.Services) != len(spec.Resources) {
			return g, fmt.Errorf("group %q has %d services, the order %d resource units", g.Name, len(g.Services), len(spec.Resources))
		}
		for i, s := range g.Services {
			u, r := spec.Resources[i], s.Resources
			if s.Count != u.Count || r.CPUMillis != u.CpuMillis || r.MemoryBytes != u.MemoryBytes || r.StorageBytes != u.StorageBytes || r.GPUUnits != u.Gpu.Units {
				return g, fmt.Errorf("service %q asks for other resources than the order's unit %d", s.Name, i)
			}
			if s.Image == "" {
				return g, fmt.Errorf("service %q has no image", s.Name)
			}
		}
		return g, nil
	}
	return sdl.ManifestGroup{}, fmt.Errorf("manifest has no group %q", spec.Name)
}

func isNotFound(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.NotFound
}
