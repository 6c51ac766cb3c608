// Package bidengine decides whether and at what price the provider bids on
// an order: it matches the order's resources against free inventory, holds
// a reservation while the auction runs (and for the lease if it is won) and
// prices the match from the provider's config. It is pure logic: no chain,
// no Docker.
package bidengine

import (
	"fmt"
	"sort"
	"sync"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/inventory"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

const gib = 1 << 30

// Resources is CPU, memory and storage.
type Resources struct {
	CPUMillis    uint64 `json:"cpu_millis"`
	MemoryBytes  uint64 `json:"memory_bytes"`
	StorageBytes uint64 `json:"storage_bytes"`
}

func (r Resources) fits(in Resources) bool {
	return r.CPUMillis <= in.CPUMillis && r.MemoryBytes <= in.MemoryBytes && r.StorageBytes <= in.StorageBytes
}

func (r Resources) add(o Resources) Resources {
	return Resources{r.CPUMillis + o.CPUMillis, r.MemoryBytes + o.MemoryBytes, r.StorageBytes + o.StorageBytes}
}

// sub is r-o, each field floored at zero: a host over-committed by
// adopted containers (Adopt) has nothing free, not a wrapped-around plenty.
func (r Resources) sub(o Resources) Resources {
	d := func(a, b uint64) uint64 {
		if b > a {
			return 0
		}
		return a - b
	}
	return Resources{d(r.CPUMillis, o.CPUMillis), d(r.MemoryBytes, o.MemoryBytes), d(r.StorageBytes, o.StorageBytes)}
}

// Reservation is what one order (and then its lease) holds.
type Reservation struct {
	Key       string    `json:"key"` // the order id "owner/dseq/gseq/oseq"
	Resources Resources `json:"resources"`
	// GPUs are the UUIDs held, in the order replicas take them.
	GPUs  []string          `json:"gpus"`
	Price sdkmath.LegacyDec `json:"price"` // ugpn per hour
	// Classes are the persistent storage held, bytes by class.
	Classes map[string]uint64 `json:"classes,omitempty"`
	// Volumes is how many persistent volumes (each a loop device) it holds.
	Volumes int `json:"volumes,omitempty"`
	// Placed are the nodes of a cluster its replicas were fitted on, in
	// unit and replica order (kubernetes runtime only).
	Placed []Placement `json:"placed,omitempty"`
}

// Placement is one replica fitted on one node.
type Placement struct {
	Node      string    `json:"node"`
	Resources Resources `json:"resources"`
}

// Decision is the outcome of evaluating an order.
type Decision struct {
	Bid         bool
	Price       sdk.DecCoin
	Reservation Reservation
	// Reason says why not, in a few words a provider can grep.
	Reason string
}

// Engine matches orders against a pool of resources.
type Engine struct {
	// MaxReplicas, when positive, is the most replicas one lease may run:
	// larger orders are not bid on.
	MaxReplicas int
	// MaxVolumesPerLease and MaxVolumes, when positive, cap the persistent
	// volumes one lease and the whole host may hold: each is a loop device
	// and a mount, whatever its size.
	MaxVolumesPerLease, MaxVolumes int

	volumes    int // persistent volumes held
	mu         sync.Mutex
	prices     config.PriceTable
	attributes map[string]string
	capacity   Resources
	gpus       []inventory.GPU // healthy, leasable
	held       map[string]Reservation
	gpuHolder  map[string]string // uuid → reservation key
	used       Resources
	classCap   map[string]uint64 // persistent storage offered, by class
	classUsed  map[string]uint64
	// nodes are a cluster's hosts: when set, every replica must fit on
	// one of them, with its GPUs on that node.
	nodes    []inventory.Node
	gpuNode  map[string]string // uuid → node
	nodeUsed map[string]Resources
}

// New builds an engine for an inventory and price table.
func New(inv inventory.Inventory, prices config.PriceTable, attributes map[string]string) *Engine {
	e := &Engine{
		prices:     prices,
		attributes: attributes,
		capacity:   Resources{inv.CPUMillis, inv.MemoryBytes, inv.StorageBytes},
		gpus:       inv.Healthy(),
		held:       map[string]Reservation{},
		gpuHolder:  map[string]string{},
		classCap:   classCapacity(inv),
		classUsed:  map[string]uint64{},
		nodes:      inv.Nodes,
		gpuNode:    map[string]string{},
		nodeUsed:   map[string]Resources{},
	}
	for _, n := range inv.Nodes {
		for _, u := range n.GPUs {
			e.gpuNode[u] = n.Name
		}
	}
	return e
}

func classCapacity(inv inventory.Inventory) map[string]uint64 {
	out := map[string]uint64{}
	for _, c := range inv.StorageClasses {
		out[c.Name] = c.Bytes
	}
	return out
}

// EvaluateAndReserve decides on an order and, when bidding, reserves what the order
// needs under key. Evaluating a key that already holds a reservation
// returns it unchanged.
func (e *Engine) EvaluateAndReserve(key string, spec markettypes.GroupSpec) Decision {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.held[key]; ok {
		return Decision{Bid: true, Price: sdk.NewDecCoinFromDec(config.Denom, r.Price), Reservation: r}
	}
	if e.MaxReplicas > 0 {
		var n int
		for _, u := range spec.Resources {
			n += int(u.Count)
		}
		if n > e.MaxReplicas {
			return Decision{Reason: fmt.Sprintf("%d replicas, this provider runs at most %d per lease", n, e.MaxReplicas)}
		}
	}
	var volumes int
	for _, u := range spec.Resources {
		volumes += int(u.Count) * len(u.Persistent)
	}
	if e.MaxVolumesPerLease > 0 && volumes > e.MaxVolumesPerLease {
		return Decision{Reason: fmt.Sprintf("%d persistent volumes, this provider mounts at most %d per lease", volumes, e.MaxVolumesPerLease)}
	}
	if e.MaxVolumes > 0 && e.volumes+volumes > e.MaxVolumes {
		return Decision{Reason: fmt.Sprintf("insufficient volume slots: need %d, free %d", volumes, e.MaxVolumes-min(e.MaxVolumes, e.volumes))}
	}
	for _, req := range spec.Requirements {
		if e.attributes[req.Key] != req.Value {
			return Decision{Reason: fmt.Sprintf("attribute %s=%s not offered", req.Key, req.Value)}
		}
	}
	if spec.MaxPrice.Denom != config.Denom {
		return Decision{Reason: fmt.Sprintf("max price in %q, not %s", spec.MaxPrice.Denom, config.Denom)}
	}
	res, gpus, price, reason := e.match(spec)
	if reason != "" {
		return Decision{Reason: reason}
	}
	var placed []Placement
	if len(e.nodes) > 0 {
		if placed, gpus, reason = e.place(spec, gpus); reason != "" {
			return Decision{Reason: reason}
		}
	}
	if price.GT(spec.MaxPrice.Amount) {
		return Decision{Reason: fmt.Sprintf("price %s above max %s ugpn/h", price, spec.MaxPrice.Amount)}
	}
	if !price.IsPositive() {
		return Decision{Reason: "configured price is zero for this order"}
	}
	totals, _ := markettypes.GroupTotals(spec.Resources) // checked by match
	r := Reservation{Key: key, Resources: res, GPUs: gpus, Price: price, Volumes: volumes, Placed: placed}
	for _, c := range totals.Classes {
		if r.Classes == nil {
			r.Classes = map[string]uint64{}
		}
		r.Classes[c.Class] = c.Bytes
	}
	e.hold(r)
	return Decision{Bid: true, Price: sdk.NewDecCoinFromDec(config.Denom, price), Reservation: r}
}

// match finds free resources for every replica of every unit; it changes
// nothing. GPUs are placed by the chain's own matching
// (markettypes.AssignGPUs) over the free devices grouped into pools of one
// model and memory size, cheapest model first, so the daemon bids exactly
// when the chain would let it win and keeps pricier devices free for the
// orders that need them. Every sum is overflow-checked.
func (e *Engine) match(spec markettypes.GroupSpec) (Resources, []string, sdkmath.LegacyDec, string) {
	price := sdkmath.LegacyZeroDec()
	totals, err := markettypes.GroupTotals(spec.Resources)
	if err != nil {
		return Resources{}, nil, price, err.Error()
	}
	need := Resources{totals.CPUMillis, totals.MemoryBytes, totals.StorageBytes}
	for ui, u := range spec.Resources {
		if u.Count == 0 {
			return need, nil, price, fmt.Sprintf("unit %d has count 0", ui)
		}
		perPrice := e.prices.CPUCore.MulInt(sdkmath.NewIntFromUint64(u.CpuMillis)).QuoInt64(1000).
			Add(e.prices.MemoryGiB.MulInt(sdkmath.NewIntFromUint64(u.MemoryBytes)).QuoInt64(gib)).
			Add(e.prices.StorageGiB.MulInt(sdkmath.NewIntFromUint64(u.StorageBytes)).QuoInt64(gib))
		for _, v := range u.Persistent { // persistent storage at the storage price
			perPrice = perPrice.Add(e.prices.StorageGiB.MulInt(sdkmath.NewIntFromUint64(v.Bytes)).QuoInt64(gib))
		}
		price = price.Add(perPrice.MulInt64(int64(u.Count)))
	}
	for _, c := range totals.Classes {
		free := e.classCap[c.Class] - min(e.classCap[c.Class], e.classUsed[c.Class])
		if c.Bytes > free {
			return need, nil, price, fmt.Sprintf("insufficient persistent storage of class %s: need %d, free %d bytes", c.Class, c.Bytes, free)
		}
	}
	pools, devices := e.freePools()
	placed, err := markettypes.AssignGPUs(spec.Resources, pools)
	if err != nil {
		return need, nil, price, "insufficient gpus: " + err.Error()
	}
	var gpus []string
	next := make([]int, len(pools)) // devices of each pool handed out so far
	for ui, u := range spec.Resources {
		if u.Gpu.Units == 0 {
			continue
		}
		for j := range pools {
			for range placed[ui][j] {
				gpus = append(gpus, devices[j][next[j]:next[j]+int(u.Gpu.Units)]...)
				next[j] += int(u.Gpu.Units)
				gpuPrice, ok := e.gpuPrice(pools[j].Model)
				if !ok {
					return need, nil, price, fmt.Sprintf("no price configured for GPU model %s", pools[j].Model)
				}
				price = price.Add(gpuPrice.MulInt64(int64(u.Gpu.Units)))
			}
		}
	}
	free := e.capacity.sub(e.used)
	switch {
	case need.CPUMillis > free.CPUMillis:
		return need, nil, price, fmt.Sprintf("insufficient cpu: need %dm, free %dm", need.CPUMillis, free.CPUMillis)
	case need.MemoryBytes > free.MemoryBytes:
		return need, nil, price, fmt.Sprintf("insufficient memory: need %d, free %d bytes", need.MemoryBytes, free.MemoryBytes)
	case need.StorageBytes > free.StorageBytes:
		return need, nil, price, fmt.Sprintf("insufficient storage: need %d, free %d bytes", need.StorageBytes, free.StorageBytes)
	}
	return need, gpus, price, ""
}

// freePools groups the free devices into pools of one model and memory
// size, cheapest model first (then by name and memory), with each pool's
// device UUIDs in inventory order.
func (e *Engine) freePools() ([]markettypes.GPUPool, [][]string) {
	type group struct {
		pool    markettypes.GPUPool
		devices []string
	}
	index := map[markettypes.GPUPool]int{} // keyed by model and memory, Free zero
	var groups []group
	for _, d := range e.gpus {
		if e.gpuHolder[d.UUID] != "" {
			continue
		}
		k := markettypes.GPUPool{Model: d.Model, MemoryMiB: d.MemoryMiB, Interface: d.Interface}
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, group{pool: k})
		}
		groups[i].pool.Free++
		groups[i].devices = append(groups[i].devices, d.UUID)
	}
	sort.SliceStable(groups, func(a, b int) bool {
		pa, pb := groups[a].pool, groups[b].pool
		ca, _ := e.gpuPrice(pa.Model)
		cb, _ := e.gpuPrice(pb.Model)
		if !ca.Equal(cb) {
			return ca.LT(cb)
		}
		if pa.Model != pb.Model {
			return pa.Model < pb.Model
		}
		if pa.MemoryMiB != pb.MemoryMiB {
			return pa.MemoryMiB < pb.MemoryMiB
		}
		return pa.Interface < pb.Interface
	})
	pools := make([]markettypes.GPUPool, len(groups))
	devices := make([][]string, len(groups))
	for i, g := range groups {
		pools[i], devices[i] = g.pool, g.devices
	}
	return pools, devices
}

func (e *Engine) gpuPrice(model string) (sdkmath.LegacyDec, bool) {
	if p, ok := e.prices.GPU[model]; ok {
		return p, true
	}
	p, ok := e.prices.GPU["default"]
	return p, ok
}

func (e *Engine) hold(r Reservation) {
	e.held[r.Key] = r
	e.used = e.used.add(r.Resources)
	for _, p := range r.Placed {
		e.nodeUsed[p.Node] = e.nodeUsed[p.Node].add(p.Resources)
	}
	for c, b := range r.Classes {
		e.classUsed[c] += b
	}
	e.volumes += r.Volumes
	for _, u := range r.GPUs {
		e.gpuHolder[u] = r.Key
	}
}

// Restore holds a reservation recorded before a restart. It fails when the
// resources it names are no longer free (a GPU vanished, say).
func (e *Engine) Restore(r Reservation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.held[r.Key]; ok {
		return nil
	}
	if !r.Resources.fits(e.capacity.sub(e.used)) {
		return fmt.Errorf("reservation %s no longer fits the free capacity", r.Key)
	}
	known := map[string]bool{}
	for _, d := range e.gpus {
		known[d.UUID] = true
	}
	for _, u := range r.GPUs {
		if !known[u] {
			return fmt.Errorf("reservation %s holds GPU %s which is not in the inventory", r.Key, u)
		}
		if h := e.gpuHolder[u]; h != "" {
			return fmt.Errorf("reservation %s holds GPU %s already held by %s", r.Key, u, h)
		}
	}
	e.hold(r)
	return nil
}

// Adopt holds what running containers hold, whatever the capacity now
// says: after a restart with a smaller config the host is over-committed
// until those leases end, but no GPU a container holds is promised to
// another order. A reservation already held under key is replaced.
func (e *Engine) Adopt(r Reservation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.held[r.Key]; ok {
		delete(e.held, r.Key)
		e.used = e.used.sub(old.Resources)
		e.freeClasses(old)
		e.freeNodes(old)
		for _, u := range old.GPUs {
			delete(e.gpuHolder, u)
		}
	}
	e.hold(r)
}

// freeClasses returns r's persistent storage; the caller holds mu.
func (e *Engine) freeClasses(r Reservation) {
	for c, b := range r.Classes {
		e.classUsed[c] -= min(b, e.classUsed[c])
	}
	e.volumes -= min(r.Volumes, e.volumes)
}

// freeNodes returns what r holds on nodes; the caller holds mu.
func (e *Engine) freeNodes(r Reservation) {
	for _, p := range r.Placed {
		e.nodeUsed[p.Node] = e.nodeUsed[p.Node].sub(p.Resources)
	}
}

// place fits every replica of spec on one node, first fit in node order:
// its CPU, memory and storage in what the node has free, and its GPUs,
// of the model match chose for it, among the node's free devices. It
// returns the placements and the GPUs so chosen (in gpus' order of
// replicas), or why no node takes a replica.
func (e *Engine) place(spec markettypes.GroupSpec, gpus []string) ([]Placement, []string, string) {
	type kind struct {
		model, iface string
		mib          uint64
	}
	model := map[string]kind{} // a device's pool, as match chose among them
	for _, d := range e.gpus {
		model[d.UUID] = kind{d.Model, d.Interface, d.MemoryMiB}
	}
	taken := map[string]bool{}
	pending := map[string]Resources{} // this order's own, by node
	var placed []Placement
	var out []string
	next := 0
	for ui, u := range spec.Resources {
		need := Resources{u.CpuMillis, u.MemoryBytes, u.StorageBytes}
		for rep := range u.Count {
			var want kind
			if u.Gpu.Units > 0 {
				want = model[gpus[next]]
				next += int(u.Gpu.Units)
			}
			ok := false
			for _, n := range e.nodes {
				if n.GPUOnly && u.Gpu.Units == 0 {
					continue // its taint keeps pods that rent no GPU off it
				}
				free := Resources{n.CPUMillis, n.MemoryBytes, n.StorageBytes}.sub(e.nodeUsed[n.Name]).sub(pending[n.Name])
				if !need.fits(free) {
					continue
				}
				var devs []string
				for _, d := range n.GPUs {
					if len(devs) == int(u.Gpu.Units) {
						break
					}
					if model[d] == want && e.gpuHolder[d] == "" && !taken[d] {
						devs = append(devs, d)
					}
				}
				if len(devs) < int(u.Gpu.Units) {
					continue
				}
				for _, d := range devs {
					taken[d] = true
				}
				out = append(out, devs...)
				pending[n.Name] = pending[n.Name].add(need)
				placed = append(placed, Placement{Node: n.Name, Resources: need})
				ok = true
				break
			}
			if !ok {
				return nil, nil, fmt.Sprintf("no node fits replica %d of unit %d (%dm cpu, %d bytes memory, %d gpus %s)", rep, ui, u.CpuMillis, u.MemoryBytes, u.Gpu.Units, want.model)
			}
		}
	}
	return placed, out, ""
}

// Release frees what key holds; releasing nothing is fine.
func (e *Engine) Release(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.held[key]
	if !ok {
		return false
	}
	delete(e.held, key)
	e.used = e.used.sub(r.Resources)
	e.freeClasses(r)
	e.freeNodes(r)
	for _, u := range r.GPUs {
		delete(e.gpuHolder, u)
	}
	return true
}

// Get returns what key holds.
func (e *Engine) Get(key string) (Reservation, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.held[key]
	return r, ok
}

// Reservations lists every reservation, sorted by key.
func (e *Engine) Reservations() []Reservation {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Reservation, 0, len(e.held))
	for _, r := range e.held {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Free is what is not reserved: resources and GPU UUIDs.
func (e *Engine) Free() (Resources, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var free []string
	for _, d := range e.gpus {
		if e.gpuHolder[d.UUID] == "" {
			free = append(free, d.UUID)
		}
	}
	return e.capacity.sub(e.used), free
}
