package tenant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// Update moves a running deployment to a new SDL file in place: the same
// leases, escrow and persistent volumes; a new image, command, args, env or
// exposed ports. The leased resources cannot change: a file asking for
// others is refused, naming what differs, before anything is sent. The
// chain records the new manifest hash, each provider gets the manifest,
// and Update waits until every lease runs the new version. When a
// provider cannot run it, the previous version keeps running and the
// error says why.
func (c *Client) Update(ctx context.Context, dseq uint64, d *sdl.Deployment, store Store, opts Options) (*Result, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Wait == 0 {
		opts.Wait = 2 * time.Minute
	}
	owner := c.Owner.String()
	res := &Result{Owner: owner, DSeq: dseq}
	p := &progress{w: opts.Progress, began: time.Now(), last: time.Now(), res: res}

	dep, err := c.Market.Deployment(ctx, &markettypes.QueryDeploymentRequest{Owner: owner, Dseq: dseq})
	if err != nil {
		return res, fmt.Errorf("deployment %d of %s: %w", dseq, owner, err)
	}
	if dep.Deployment.State != markettypes.DEPLOYMENT_STATE_ACTIVE {
		return res, fmt.Errorf("deployment %d is closed: deploy the file anew", dseq)
	}
	var prev *sdl.Manifest
	created := time.Now().UTC()
	if saved, err := store.Load(owner, dseq); err == nil {
		prev, created = &saved.Manifest, saved.CreatedAt
	}
	if err := SameResources(LeasedGroups(dep.Orders), d, prev); err != nil {
		return res, fmt.Errorf("deployment %d cannot be updated in place: %w", dseq, err)
	}
	var leases []markettypes.Lease
	for _, l := range dep.Leases {
		if l.State == markettypes.LEASE_STATE_ACTIVE || l.State == markettypes.LEASE_STATE_PENDING {
			leases = append(leases, l)
		}
	}
	if len(leases) == 0 {
		return res, fmt.Errorf("deployment %d has no live lease to update", dseq)
	}
	hash, err := d.Manifest.Hash()
	if err != nil {
		return res, err
	}
	res.ManifestHash = fmt.Sprintf("%x", hash)

	// 1. The chain records the new hash: providers take only the manifest
	// that matches it.
	if !slices.Equal(hash, dep.Deployment.ManifestHash) {
		txr, err := c.SendTx(ctx, &markettypes.MsgUpdateDeployment{Owner: owner, Dseq: dseq, ManifestHash: hash})
		if err != nil {
			return res, fmt.Errorf("update deployment %d: %w", dseq, err)
		}
		res.Height, res.TxHash = txr.Height, txr.TxHash
		p.printf("deployment %d now names manifest %s… (block %d, tx %s…)", dseq, res.ManifestHash[:16], txr.Height, txr.TxHash[:12])
	} else {
		p.printf("deployment %d already names manifest %s…; sending it again", dseq, res.ManifestHash[:16])
	}
	saved := Saved{Owner: owner, DSeq: dseq, SDLFile: opts.SDLFile, Hash: res.ManifestHash, Manifest: d.Manifest, CreatedAt: created, Height: res.Height}
	if err := store.Save(saved); err != nil {
		p.printf("warning: the new manifest could not be saved locally: %v", err)
	}
	p.step("submitted")

	// 2. The manifest goes to each lease's provider.
	if err := c.sendManifests(ctx, p, store, owner, dseq, leases, d.Manifest); err != nil {
		return res, err
	}
	p.step("manifest")

	// 3. Each lease runs the new version, or says why not.
	for _, l := range leases {
		want := ""
		for _, g := range d.Manifest.Groups {
			if g.Name == groupName(dep.Orders, l.Id.Order.Gseq) {
				want = g.Hash()
			}
		}
		run, err := c.awaitVersion(ctx, l, want, opts.Wait)
		if err != nil {
			return res, err
		}
		res.Leases = append(res.Leases, run)
		states := []string{}
		for _, r := range run.Replicas {
			states = append(states, fmt.Sprintf("%s/%d %s %s", r.Service, r.Replica, r.State, r.Image))
		}
		p.printf("updated on %s: %s", short(run.Provider), strings.Join(states, ", "))
	}
	p.step("updated")
	return res, nil
}

// awaitVersion polls the provider until the lease runs the group version
// want, or reports that update's error.
func (c *Client) awaitVersion(ctx context.Context, l markettypes.Lease, want string, wait time.Duration) (LeaseRun, error) {
	cl, pv, err := c.ProviderAPI(ctx, l.Id.Provider)
	if err != nil {
		return LeaseRun{}, err
	}
	run := LeaseRun{ID: orderName(l.Id.Order), Provider: l.Id.Provider, Price: api.FormatDecCoin(l.Price.Amount.String(), l.Price.Denom), HostURI: pv.Provider.HostUri}
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		st, err := cl.Status(ctx, l.Id.Order.Owner, l.Id.Order.Dseq, l.Id.Order.Gseq, l.Id.Order.Oseq)
		switch {
		case err == nil && st.Version == want && st.Phase == "running" && (st.Running() || st.Exited()):
			run.Replicas, run.Endpoints = st.Replicas, endpoints(st)
			return run, nil
		case err == nil && st.UpdateFor == want && st.UpdateError != "":
			return run, fmt.Errorf("lease %s did not take the new version; the previous one keeps running: %s", run.ID, st.UpdateError)
		case err != nil:
			var se *api.StatusError
			if errors.As(err, &se) && se.Code == 404 {
				return run, fmt.Errorf("lease %s is no longer on the provider: %s", run.ID, se.Message)
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return run, fmt.Errorf("lease %s does not run the new version within %s (last: %v); check 'gpunetd lease status %d'", run.ID, wait, last, l.Id.Order.Dseq)
}

// LeasedGroups are the deployment's groups as its latest order of each
// group asks for them, in group order.
func LeasedGroups(orders []markettypes.Order) []markettypes.GroupSpec {
	latest := map[uint32]markettypes.Order{}
	for _, o := range orders {
		if cur, ok := latest[o.Id.Gseq]; !ok || o.Id.Oseq > cur.Id.Oseq {
			latest[o.Id.Gseq] = o
		}
	}
	gseqs := make([]uint32, 0, len(latest))
	for g := range latest {
		gseqs = append(gseqs, g)
	}
	sort.Slice(gseqs, func(i, j int) bool { return gseqs[i] < gseqs[j] })
	out := make([]markettypes.GroupSpec, len(gseqs))
	for i, g := range gseqs {
		out[i] = latest[g].Spec
	}
	return out
}

func groupName(orders []markettypes.Order, gseq uint32) string {
	for _, o := range orders {
		if o.Id.Gseq == gseq {
			return o.Spec.Name
		}
	}
	return ""
}

// SameResources checks that a new SDL asks for exactly the resources the
// deployment's groups leased, and (when the previous manifest is known)
// keeps its services' names, naming the first difference.
func SameResources(leased []markettypes.GroupSpec, d *sdl.Deployment, prev *sdl.Manifest) error {
	if len(d.Groups) != len(leased) {
		return fmt.Errorf("the file has %d placement groups, the deployment %d", len(d.Groups), len(leased))
	}
	for i, g := range d.Groups {
		old := leased[i]
		if g.Name != old.Name {
			return fmt.Errorf("group %d is %q in the file, %q in the deployment", i+1, g.Name, old.Name)
		}
		if len(g.Resources) != len(old.Resources) {
			return fmt.Errorf("group %q has %d services in the file, %d leased", g.Name, len(g.Resources), len(old.Resources))
		}
		for j, u := range g.Resources {
			o := old.Resources[j]
			what := d.Manifest.Groups[i].Services[j].Name
			diff := func(field string, was, now any) error {
				return fmt.Errorf("service %q of group %q: %s %v is leased, the file asks for %v (the leased resources cannot change in place: close the deployment and deploy anew)", what, g.Name, field, was, now)
			}
			switch {
			case u.Count != o.Count:
				return diff("count", o.Count, u.Count)
			case u.CpuMillis != o.CpuMillis:
				return diff("cpu (millicores)", o.CpuMillis, u.CpuMillis)
			case u.MemoryBytes != o.MemoryBytes:
				return diff("memory (bytes)", o.MemoryBytes, u.MemoryBytes)
			case u.StorageBytes != o.StorageBytes:
				return diff("storage (bytes)", o.StorageBytes, u.StorageBytes)
			case u.Gpu.Units != o.Gpu.Units:
				return diff("gpu units", o.Gpu.Units, u.Gpu.Units)
			case u.Gpu.Interface != o.Gpu.Interface:
				return diff("gpu interface", o.Gpu.Interface, u.Gpu.Interface)
			case !slices.Equal(u.Persistent, o.Persistent):
				return diff("persistent volumes", o.Persistent, u.Persistent)
			}
		}
		if prev != nil && i < len(prev.Groups) {
			for j, s := range d.Manifest.Groups[i].Services {
				if j < len(prev.Groups[i].Services) && prev.Groups[i].Services[j].Name != s.Name {
					return fmt.Errorf("service %q of group %q is named %q in the file: a service keeps its name in an update (its volumes and endpoints follow it)", prev.Groups[i].Services[j].Name, g.Name, s.Name)
				}
			}
		}
	}
	return nil
}
