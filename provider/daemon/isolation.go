package daemon

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/gpunet/gpunet/provider/bidengine"
	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/egress"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
)

// setupEgress installs or verifies the lease egress filter (package
// egress) as runtime.egress_filter says; the daemon does not start when
// it cannot.
func (d *Daemon) setupEgress(ctx context.Context) error {
	mode := d.cfg.Runtime.EgressFilter
	if mode == egress.ModeOff {
		d.log.Warn("lease egress filter is OFF: leases can reach this host's services, its LAN and link-local addresses (cloud metadata)")
		return nil
	}
	p, err := d.cfg.EgressPolicy()
	if err != nil {
		return err
	}
	d.egress = &p
	if mode == egress.ModeVerify {
		if err := egress.Verify(ctx, p); err != nil {
			return fmt.Errorf("%w (runtime.egress_filter is verify: install the rules printed by `gpunet-provider egress rules`)", err)
		}
	} else if err := egress.Install(ctx, p); err != nil {
		return fmt.Errorf("%w (runtime.egress_filter install needs root or CAP_NET_ADMIN; or set it to verify and install the rules yourself)", err)
	}
	fc, ic := p.Chains()
	d.log.Info("lease egress filter in place", "mode", mode, "pool", p.Pool, "chains", fc+","+ic, "allow", len(p.Allow))
	return nil
}

// checkEgress runs at every reconcile: rules that drifted (a firewall
// reload, an operator's flush) are put back in install mode and reported
// in verify mode, and /healthz says so until they are right.
func (d *Daemon) checkEgress(ctx context.Context) {
	if d.egress == nil {
		return
	}
	err := egress.Verify(ctx, *d.egress)
	if err != nil && d.cfg.Runtime.EgressFilter == egress.ModeInstall {
		d.log.Warn("lease egress filter drifted; reinstalling", "err", err)
		err = egress.Install(ctx, *d.egress)
	}
	if err != nil {
		d.log.Error("lease egress filter is not in place", "err", err)
	}
	d.mu.Lock()
	d.egressErr = err
	d.mu.Unlock()
}

// restoreReservations rebuilds what is held after a restart. The GPUs the
// engine's containers were given come first and are held whatever the
// config now says (a smaller host is over-committed until those leases
// end); a saved reservation is restored only when none of its GPUs is
// held by another lease's containers and it still fits.
func (d *Daemon) restoreReservations(ctx context.Context) error {
	saved, err := d.store.loadReservations()
	if err != nil {
		return err
	}
	var holds map[string][]string
	if d.host != nil {
		if holds, err = d.host.GPUHolds(ctx); err != nil {
			return fmt.Errorf("GPUs held by running containers: %w", err)
		}
	}
	holder := map[string]string{}
	keys := make([]string, 0, len(holds))
	for key, uuids := range holds {
		keys = append(keys, key)
		for _, u := range uuids {
			holder[u] = key
		}
	}
	sort.Strings(keys)
	byKey := map[string]bidengine.Reservation{}
	for _, r := range saved {
		byKey[r.Key] = r
	}
	for _, key := range keys {
		if len(holds[key]) == 0 {
			continue
		}
		r, ok := byKey[key]
		if !ok {
			// Containers without a saved reservation (the data directory was
			// lost): their GPUs are held; their CPU and memory are not known
			// here and are not counted.
			r = bidengine.Reservation{Key: key}
			d.log.Warn("running containers hold GPUs without a saved reservation; holding the GPUs", "lease", key, "gpus", holds[key])
		}
		r.GPUs = holds[key]
		d.engine.Adopt(r)
		delete(byKey, key)
	}
	for _, r := range saved {
		if _, ok := byKey[r.Key]; !ok {
			continue
		}
		if i := slices.IndexFunc(r.GPUs, func(u string) bool { return holder[u] != "" && holder[u] != r.Key }); i >= 0 {
			d.log.Warn("dropping saved reservation: a running container of another lease holds its GPU", "key", r.Key, "gpu", r.GPUs[i], "holder", holder[r.GPUs[i]])
			continue
		}
		if err := d.engine.Restore(r); err != nil {
			d.log.Warn("dropping saved reservation", "key", r.Key, "err", err)
		}
	}
	d.persistReservations()
	return nil
}

// watchStorage is one round of the storage watch (storage_limit watch).
func (d *Daemon) watchStorage(ctx context.Context) error {
	evicted, err := d.host.CheckStorage(ctx)
	for _, e := range evicted {
		d.metrics.evictions.Inc()
		d.log.Warn("replica stopped over its storage", "lease", e.Lease.Order.Name(), "service", e.Service, "replica", e.Replica, "why", e.Reason)
	}
	return err
}

// isolation is what /healthz and /v1/inventory say about how this host
// contains leases.
func (d *Daemon) isolation() map[string]any {
	if d.cfg.Runtime.Kind == config.RuntimeKubernetes {
		return map[string]any{"runtime": config.RuntimeKubernetes, "egress_filter": "network policies per lease", "pod_security": "baseline"}
	}
	out := map[string]any{"egress_filter": d.cfg.Runtime.EgressFilter}
	d.mu.Lock()
	if d.egressErr != nil {
		out["egress_filter_error"] = d.egressErr.Error()
	}
	d.mu.Unlock()
	if d.host != nil {
		iso := d.host.Isolation()
		out["leases_run_as_host_root"] = iso.LeasesRunAsHostRoot
		out["userns_remap"] = iso.UsernsRemap
		if iso.ContainerUser != "" {
			out["container_user"] = iso.ContainerUser
		}
		out["storage_limit"] = iso.StorageLimit
		out["storage_driver"] = iso.StorageDriver
	}
	return out
}

// checkRegistries refuses a manifest whose images come from registries
// the config does not allow, before any lease is touched.
func (d *Daemon) checkRegistries(g sdl.ManifestGroup) error {
	p := runtime.RegistryPolicy{Allow: d.cfg.Runtime.RegistryAllow, Deny: d.cfg.Runtime.RegistryDeny}
	for _, s := range g.Services {
		if err := p.Check(s.Image); err != nil {
			return fmt.Errorf("service %q: %v", s.Name, err)
		}
	}
	return nil
}
