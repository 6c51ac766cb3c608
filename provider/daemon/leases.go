package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// errLeaseGone: the chain no longer has the order of a lease (won and
// closed again before the daemon looked).
var errLeaseGone = errors.New("lease no longer on chain")

// leaseManager returns the manager of a lease this provider won, starting
// one (in the daemon's context, whoever asks) on first sight. A lease whose
// order is gone from the chain gets none (errLeaseGone).
func (d *Daemon) leaseManager(ctx context.Context, l markettypes.Lease) (*leaseManager, error) {
	key := orderKey(l.Id.Order)
	d.mu.Lock()
	m, ok := d.managers[key]
	d.mu.Unlock()
	if ok {
		return m, nil
	}
	res, err := d.chain.Order(ctx, &markettypes.QueryOrderRequest{Owner: l.Id.Order.Owner, Dseq: l.Id.Order.Dseq, Gseq: l.Id.Order.Gseq, Oseq: l.Id.Order.Oseq})
	if isNotFound(err) {
		return nil, errLeaseGone
	}
	if err != nil {
		return nil, fmt.Errorf("order of lease %s: %w", key, err)
	}
	if _, held := d.engine.Get(key); !held {
		// Won without a reservation on record (state lost): take one now.
		if dec := d.engine.EvaluateAndReserve(key, res.Order.Spec); !dec.Bid {
			d.log.Error("lease won but resources are not free", "lease", key, "reason", dec.Reason)
		} else {
			d.persistReservations()
		}
	}
	stored, err := d.store.loadManifest(deploymentKey(l.Id.Order.Owner, l.Id.Order.Dseq))
	if err != nil {
		d.log.Error("cannot read stored manifest", "lease", key, "err", err)
	}
	m = newLeaseManager(d.env, l, res.Order.Spec, stored, d.log)
	if stored != nil {
		var man sdl.Manifest
		if json.Unmarshal(stored, &man) == nil {
			if g, err := groupFor(man, res.Order.Spec); err == nil {
				d.routeLease(key, l.Id, g)
			}
		}
	}
	d.mu.Lock()
	if existing, ok := d.managers[key]; ok {
		d.mu.Unlock()
		return existing, nil
	}
	// Attached before anyone can find it and send it an input.
	m.attach(d.ctx, &d.wg)
	d.managers[key] = m
	d.owners[l.Id.Order.Owner]++
	delete(d.bids, key)
	d.mu.Unlock()
	return m, nil
}

// managed returns the manager of a lease, if the daemon has one.
func (d *Daemon) managed(key string) (*leaseManager, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.managers[key]
	return m, ok
}

// leaseManagers lists the managers, sorted by lease.
func (d *Daemon) leaseManagers() []*leaseManager {
	d.mu.Lock()
	out := make([]*leaseManager, 0, len(d.managers))
	for _, m := range d.managers {
		out = append(out, m)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// leaseFinished is the daemon's side of a teardown: the reservation is
// freed, the manifest deleted once no lease of its deployment is left, and
// the lease forgotten.
func (d *Daemon) leaseFinished(m *leaseManager, reason string) {
	d.mu.Lock()
	if d.managers[m.key] == m {
		delete(d.managers, m.key)
		if d.owners[m.ref.Order.Owner]--; d.owners[m.ref.Order.Owner] <= 0 {
			delete(d.owners, m.ref.Order.Owner)
		}
	}
	delete(d.missing, m.key)
	others := false
	for _, o := range d.managers {
		if o.ref.Order.Owner == m.ref.Order.Owner && o.ref.Order.Dseq == m.ref.Order.Dseq {
			others = true
		}
	}
	d.mu.Unlock()
	d.ingress.remove(m.key)
	d.leaseLog.finish(m.key)
	if d.engine.Release(m.key) {
		d.persistReservations()
	}
	if !others {
		dep := deploymentKey(m.ref.Order.Owner, m.ref.Order.Dseq)
		if err := d.store.deleteManifest(dep); err != nil {
			d.log.Warn("cannot delete manifest", "deployment", dep, "err", err)
		}
	}
	d.metrics.leasesClosed.WithLabelValues(reason).Inc()
	d.log.Info("lease closed", "lease", m.key, "reason", reason)
}

// sendDue tells the pending leases what a new height means for them. One
// still without a manifest manifest_timeout blocks after its win has a late
// tenant: its manager closes it as manifest_missing (the chain refuses
// that close any earlier), well before the start deadline, so no slash can
// follow. One still deploying pullMargin blocks before its start deadline
// has its image pull cut, if one runs: a registry that never sends the
// image (or trickles it) is the tenant's fault, closed as
// image_unavailable while the close can still land before the deadline.
func (d *Daemon) sendDue(ctx context.Context, height int64) {
	type pending struct {
		m *leaseManager
		v leaseView
	}
	var late, deploying []pending
	for _, m := range d.leaseManagers() {
		v := m.view()
		if v.State != markettypes.LEASE_STATE_PENDING {
			continue
		}
		switch {
		case v.Phase == PhaseAwaitingManifest && !v.HasManifest && v.CreatedAt > 0:
			late = append(late, pending{m, v})
		case v.Phase == PhaseDeploying && v.StartDeadline > 0:
			deploying = append(deploying, pending{m, v})
		}
	}
	if len(late) == 0 && len(deploying) == 0 {
		return
	}
	p, err := d.marketParams(ctx, false)
	if err != nil {
		return
	}
	for _, l := range late {
		if p.ManifestTimeout > 0 && height >= l.v.CreatedAt+int64(p.ManifestTimeout) {
			l.m.send(inManifestDue{height: height})
		}
	}
	for _, l := range deploying {
		if height >= l.v.StartDeadline-pullMargin(p) {
			l.m.send(inStartDue{height: height})
		}
	}
}

// pullMargin is how many blocks before a pending lease's start deadline its
// images must be on the engine: what the containers' start and the start
// transaction need after the pull, and the close if the pull is cut. An
// eighth of start_timeout, at least 5 blocks.
func pullMargin(p markettypes.Params) int64 {
	return max(5, int64(p.StartTimeout)/8)
}

func isNotFound(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.NotFound
}

// onContainerEvent keeps what the engine did to a lease's container for
// its tenant, and tells the lease's manager when one exited.
func (d *Daemon) onContainerEvent(l runtime.LeaseRef, ev runtime.ContainerEvent) {
	key := orderKey(l.Order)
	m, ok := d.managed(key)
	if !ok {
		return
	}
	replica := ev.Replica
	rec := api.LeaseEvent{Time: ev.Time.UTC(), Kind: ev.Kind, Service: ev.Service, Replica: &replica, Message: ev.Detail}
	switch ev.Kind {
	case "exited":
		code := ev.ExitCode
		rec.ExitCode = &code
		if ev.Final {
			rec.Message = "not restarted"
		}
	case "oom":
		rec.Message = "killed: out of memory"
	case "stopped":
		rec.Message = "signal " + ev.Detail
	}
	d.leaseLog.add(key, rec)
	if ev.Kind == "exited" {
		m.send(inExited{ev: ev})
	}
}
