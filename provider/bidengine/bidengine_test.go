package bidengine

import (
	"slices"
	"strings"
	"testing"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/inventory"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

func testEngine(t *testing.T) *Engine {
	t.Helper()
	table, err := config.Pricing{
		GPUPerHour:        map[string]string{"NVIDIA H100 80GB HBM3": "2000000", "a100": "1200000ugpn"},
		CPUCorePerHour:    "10000",
		MemoryGiBPerHour:  "2000",
		StorageGiBPerHour: "100",
	}.Table()
	if err != nil {
		t.Fatal(err)
	}
	inv := inventory.Inventory{
		CPUMillis: 16000, MemoryBytes: 64 * gib, StorageBytes: 500 * gib,
		GPUs: []inventory.GPU{
			{Index: 0, UUID: "GPU-h0", Model: "h100", MemoryMiB: 81559, Healthy: true},
			{Index: 1, UUID: "GPU-h1", Model: "h100", MemoryMiB: 81559, Healthy: true},
			{Index: 2, UUID: "GPU-a0", Model: "a100", MemoryMiB: 40960, Healthy: true},
			{Index: 3, UUID: "GPU-a1", Model: "a100", MemoryMiB: 81920, Healthy: true},
			{Index: 4, UUID: "GPU-bad", Model: "h100", MemoryMiB: 81559, Healthy: false},
		},
	}
	return New(inv, table, map[string]string{"region": "eu"})
}

func unit(count uint32, cpu uint64, memGiB uint64, gpus uint32, models ...string) markettypes.ResourceUnit {
	return markettypes.ResourceUnit{Count: count, CpuMillis: cpu, MemoryBytes: memGiB * gib, StorageBytes: gib,
		Gpu: markettypes.GPUSpec{Units: gpus, Models: models}}
}

func spec(max int64, units ...markettypes.ResourceUnit) markettypes.GroupSpec {
	return markettypes.GroupSpec{Name: "g", Resources: units, MaxPrice: sdk.NewDecCoin("ugpn", sdkmath.NewInt(max))}
}

func TestEvaluate(t *testing.T) {
	cases := []struct {
		name      string
		spec      markettypes.GroupSpec
		bid       bool
		price     string // ugpn/h
		gpus      []string
		reasonHas string
	}{
		// 2 cores (20000) + 8 GiB (16000) + 1 GiB storage (100) + h100 (2000000)
		{"one h100", spec(3_000_000, unit(1, 2000, 8, 1, "h100")), true, "2036100", []string{"GPU-h0"}, ""},
		{"model alternatives pick the cheaper", spec(3_000_000, unit(1, 2000, 8, 1, "h100", "a100")), true, "1236100", []string{"GPU-a0"}, ""},
		{"any model picks the cheapest", spec(3_000_000, unit(1, 2000, 8, 1)), true, "1236100", []string{"GPU-a0"}, ""},
		{"gpu memory floor skips the small a100", spec(3_000_000, markettypes.ResourceUnit{Count: 1, CpuMillis: 1000, MemoryBytes: gib,
			Gpu: markettypes.GPUSpec{Units: 1, Models: []string{"a100"}, MinMemoryMib: 80000}}), true, "1212000", []string{"GPU-a1"}, ""},
		{"two replicas of two h100", spec(10_000_000, unit(1, 1000, 1, 2, "h100")), true, "4012100", []string{"GPU-h0", "GPU-h1"}, ""},
		{"one replica cannot mix models", spec(10_000_000, unit(1, 1000, 1, 3, "h100", "a100")), false, "", nil, "insufficient gpus"},
		{"unhealthy gpu not offered", spec(10_000_000, unit(3, 1000, 1, 1, "h100")), false, "", nil, "insufficient gpus"},
		{"cpu only", spec(100_000, unit(2, 500, 1, 0)), true, "14200", nil, ""},
		{"too much cpu", spec(10_000_000, unit(1, 17000, 1, 0)), false, "", nil, "insufficient cpu"},
		{"too much memory", spec(10_000_000, unit(1, 1000, 65, 0)), false, "", nil, "insufficient memory"},
		{"price above max", spec(2_000_000, unit(1, 2000, 8, 1, "h100")), false, "", nil, "above max"},
		{"unknown model", spec(10_000_000, unit(1, 1000, 1, 1, "rtx4090")), false, "", nil, "insufficient gpus"},
		{"attribute satisfied", func() markettypes.GroupSpec {
			s := spec(100_000, unit(1, 1000, 1, 0))
			s.Requirements = []providertypes.Attribute{{Key: "region", Value: "eu"}}
			return s
		}(), true, "12100", nil, ""},
		{"attribute missing", func() markettypes.GroupSpec {
			s := spec(100_000, unit(1, 1000, 1, 0))
			s.Requirements = []providertypes.Attribute{{Key: "region", Value: "us"}}
			return s
		}(), false, "", nil, "attribute region=us"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := testEngine(t)
			d := e.EvaluateAndReserve("o/1/1/1", tc.spec)
			if d.Bid != tc.bid {
				t.Fatalf("bid=%v reason=%q", d.Bid, d.Reason)
			}
			if !tc.bid {
				if !strings.Contains(d.Reason, tc.reasonHas) {
					t.Fatalf("reason %q lacks %q", d.Reason, tc.reasonHas)
				}
				if len(e.Reservations()) != 0 {
					t.Fatal("a skipped order reserved something")
				}
				return
			}
			want, _ := sdkmath.LegacyNewDecFromStr(tc.price)
			if !d.Price.Amount.Equal(want) || d.Price.Denom != "ugpn" {
				t.Fatalf("price %s, want %s", d.Price, want)
			}
			if strings.Join(d.Reservation.GPUs, ",") != strings.Join(tc.gpus, ",") {
				t.Fatalf("gpus %v, want %v", d.Reservation.GPUs, tc.gpus)
			}
		})
	}
}

func TestReservationsHoldUntilReleased(t *testing.T) {
	e := testEngine(t)
	s := spec(10_000_000, unit(1, 6000, 20, 2, "h100"))
	if d := e.EvaluateAndReserve("a", s); !d.Bid {
		t.Fatal(d.Reason)
	}
	// Both H100s are held by "a": a second order for one cannot get it.
	if d := e.EvaluateAndReserve("b", spec(10_000_000, unit(1, 1000, 1, 1, "h100"))); d.Bid || !strings.Contains(d.Reason, "insufficient gpus") {
		t.Fatalf("second order: %+v", d)
	}
	// Re-evaluating the same order returns the same reservation, not a second one.
	if d := e.EvaluateAndReserve("a", s); !d.Bid || len(e.Reservations()) != 1 {
		t.Fatalf("re-evaluate: %+v, %d reservations", d, len(e.Reservations()))
	}
	free, gpus := e.Free()
	if free.CPUMillis != 10000 || free.MemoryBytes != 44*gib || len(gpus) != 2 {
		t.Fatalf("free %+v gpus %v", free, gpus)
	}
	// CPU is shared: two orders of 6 cores fit, a third does not.
	if d := e.EvaluateAndReserve("c", spec(1_000_000, unit(1, 6000, 1, 0))); !d.Bid {
		t.Fatal(d.Reason)
	}
	if d := e.EvaluateAndReserve("d", spec(1_000_000, unit(1, 6000, 1, 0))); d.Bid {
		t.Fatal("over-committed cpu")
	}
	if !e.Release("a") || e.Release("a") {
		t.Fatal("release should succeed once")
	}
	if d := e.EvaluateAndReserve("b", spec(10_000_000, unit(1, 1000, 1, 1, "h100"))); !d.Bid || d.Reservation.GPUs[0] != "GPU-h0" {
		t.Fatalf("after release: %+v", d)
	}
}

func TestRestore(t *testing.T) {
	e := testEngine(t)
	r := Reservation{Key: "x", Resources: Resources{CPUMillis: 1000}, GPUs: []string{"GPU-h1"}, Price: sdkmath.LegacyNewDec(5)}
	if err := e.Restore(r); err != nil {
		t.Fatal(err)
	}
	if err := e.Restore(Reservation{Key: "y", GPUs: []string{"GPU-h1"}}); err == nil || !strings.Contains(err.Error(), "already held by x") {
		t.Fatalf("double hold: %v", err)
	}
	if err := e.Restore(Reservation{Key: "z", GPUs: []string{"GPU-gone"}}); err == nil || !strings.Contains(err.Error(), "not in the inventory") {
		t.Fatalf("vanished gpu: %v", err)
	}
	if err := e.Restore(Reservation{Key: "w", Resources: Resources{CPUMillis: 99000}}); err == nil {
		t.Fatal("restore beyond capacity")
	}
}

// TestEvaluateIsAMatching: the engine places GPUs with the chain's
// matching. Two units of 2 GPUs, one of any model and one h100-only, fit on
// two h100 and two a100 only if the any-model unit takes the a100s, in
// whichever order the units come. A replica's GPUs are of one model and
// memory size: the test engine's two a100 differ in memory, so there a
// 2-GPU any-model replica has no room beside the h100 unit.
func TestEvaluateIsAMatching(t *testing.T) {
	table, err := config.Pricing{GPUPerHour: map[string]string{"h100": "1000000", "a100": "2000000"}, CPUCorePerHour: "10000"}.Table()
	if err != nil {
		t.Fatal(err)
	}
	inv := inventory.Inventory{CPUMillis: 16000, MemoryBytes: 64 * gib, StorageBytes: 500 * gib, GPUs: []inventory.GPU{
		{Index: 0, UUID: "GPU-h0", Model: "h100", MemoryMiB: 81559, Healthy: true},
		{Index: 1, UUID: "GPU-h1", Model: "h100", MemoryMiB: 81559, Healthy: true},
		{Index: 2, UUID: "GPU-a0", Model: "a100", MemoryMiB: 81920, Healthy: true},
		{Index: 3, UUID: "GPU-a1", Model: "a100", MemoryMiB: 81920, Healthy: true},
	}}
	for name, units := range map[string][]markettypes.ResourceUnit{
		"h100 unit first": {unit(1, 1000, 1, 2, "h100"), unit(1, 1000, 1, 2)},
		"any unit first":  {unit(1, 1000, 1, 2), unit(1, 1000, 1, 2, "h100")},
	} {
		e := New(inv, table, nil)
		d := e.EvaluateAndReserve("o", spec(1_000_000_000, units...))
		if !d.Bid {
			t.Errorf("%s: refused: %s", name, d.Reason)
			continue
		}
		h := 0
		if len(units[0].Gpu.Models) == 0 {
			h = 2 // the h100 unit's GPUs come second
		}
		if got := d.Reservation.GPUs[h : h+2]; got[0] != "GPU-h0" || got[1] != "GPU-h1" {
			t.Errorf("%s: the h100 unit got %v", name, got)
		}
	}
	if d := testEngine(t).EvaluateAndReserve("o", spec(1_000_000_000, unit(1, 1000, 1, 2, "h100"), unit(1, 1000, 1, 2))); d.Bid {
		t.Errorf("a 2-GPU replica was placed over two a100 of different memory: %v", d.Reservation.GPUs)
	}
}

func TestMaxReplicasPerLease(t *testing.T) {
	e := testEngine(t)
	e.MaxReplicas = 3
	if d := e.EvaluateAndReserve("o1", spec(1_000_000_000, unit(4, 100, 1, 0))); d.Bid || !strings.Contains(d.Reason, "at most 3 per lease") {
		t.Errorf("4 replicas with a cap of 3: %+v", d)
	}
	if d := e.EvaluateAndReserve("o2", spec(1_000_000_000, unit(3, 100, 1, 0))); !d.Bid {
		t.Errorf("3 replicas refused: %s", d.Reason)
	}
}

func TestAdoptHoldsContainerGPUsEvenOverCapacity(t *testing.T) {
	e := testEngine(t)
	capacity, gpus := e.Free()
	e.Adopt(Reservation{Key: "a/1/1/1", GPUs: []string{gpus[0]}, Resources: Resources{CPUMillis: capacity.CPUMillis + 1000}})
	free, freeGPUs := e.Free()
	if free.CPUMillis != 0 {
		t.Errorf("over-committed host offers %d CPU millis", free.CPUMillis)
	}
	if slices.Contains(freeGPUs, gpus[0]) {
		t.Errorf("adopted GPU %s offered again", gpus[0])
	}
	if err := e.Restore(Reservation{Key: "b/1/1/1", GPUs: []string{gpus[0]}}); err == nil {
		t.Error("a saved reservation took a GPU a container holds")
	}
	// Adopting again replaces, and Release frees it all.
	e.Adopt(Reservation{Key: "a/1/1/1", GPUs: []string{gpus[1]}})
	if _, freeGPUs := e.Free(); !slices.Contains(freeGPUs, gpus[0]) || slices.Contains(freeGPUs, gpus[1]) {
		t.Errorf("after re-adopting: free %v", freeGPUs)
	}
	e.Release("a/1/1/1")
	if _, freeGPUs := e.Free(); len(freeGPUs) != len(gpus) {
		t.Errorf("after release: %d of %d GPUs free", len(freeGPUs), len(gpus))
	}
}

// Persistent volumes are counted per lease and per host, whatever their
// size: tiny volumes cannot use up the host's loop devices.
func TestVolumeSlots(t *testing.T) {
	e := testEngine(t)
	e.classCap["beta2"] = 100 * gib
	e.MaxVolumesPerLease, e.MaxVolumes = 8, 10
	vols := func(replicas uint32, n int) markettypes.GroupSpec {
		u := unit(replicas, 100, 1, 0)
		for range n {
			u.Persistent = append(u.Persistent, markettypes.PersistentVolume{Class: "beta2", Bytes: 1})
		}
		return spec(10_000_000, u)
	}
	if d := e.EvaluateAndReserve("big", vols(3, 3)); d.Bid || !strings.Contains(d.Reason, "9 persistent volumes, this provider mounts at most 8 per lease") {
		t.Fatalf("9 volumes in one lease: %+v", d)
	}
	if d := e.EvaluateAndReserve("a", vols(4, 2)); !d.Bid || d.Reservation.Volumes != 8 {
		t.Fatalf("8 volumes: %+v", d)
	}
	if d := e.EvaluateAndReserve("b", vols(1, 3)); d.Bid || !strings.Contains(d.Reason, "insufficient volume slots: need 3, free 2") {
		t.Fatalf("past the host's slots: %+v", d)
	}
	e.Release("a")
	if d := e.EvaluateAndReserve("b", vols(1, 3)); !d.Bid {
		t.Fatalf("after release: %+v", d)
	}
}

// TestClusterNodes: on a cluster a replica fits on one node, not on the
// sum of them: CPU and memory per node, and all of a replica's GPUs on the
// node it runs on; what one order places holds its node until released.
func TestClusterNodes(t *testing.T) {
	table, err := config.Pricing{GPUPerHour: map[string]string{"h100": "2000000"}, CPUCorePerHour: "10000", MemoryGiBPerHour: "2000", StorageGiBPerHour: "100"}.Table()
	if err != nil {
		t.Fatal(err)
	}
	inv := inventory.Inventory{
		CPUMillis: 8000, MemoryBytes: 32 * gib, StorageBytes: 200 * gib,
		GPUs: []inventory.GPU{
			{UUID: "k8s:a:0", Model: "h100", MemoryMiB: 81559, Healthy: true},
			{UUID: "k8s:b:0", Model: "h100", MemoryMiB: 81559, Healthy: true},
		},
		Nodes: []inventory.Node{
			{Name: "a", CPUMillis: 4000, MemoryBytes: 16 * gib, StorageBytes: 100 * gib, GPUs: []string{"k8s:a:0"}},
			{Name: "b", CPUMillis: 4000, MemoryBytes: 16 * gib, StorageBytes: 100 * gib, GPUs: []string{"k8s:b:0"}},
		},
	}
	e := New(inv, table, nil)
	if d := e.EvaluateAndReserve("big", spec(10_000_000, unit(1, 6000, 4, 0))); d.Bid || !strings.Contains(d.Reason, "no node fits") {
		t.Errorf("6 cores on two 4-core nodes: %+v, want no bid (no node fits)", d)
	}
	if d := e.EvaluateAndReserve("two-gpus", spec(10_000_000, unit(1, 1000, 1, 2, "h100"))); d.Bid {
		t.Errorf("2 GPUs in one replica, one per node: %+v, want no bid", d)
	}
	d := e.EvaluateAndReserve("pair", spec(10_000_000, unit(2, 3000, 4, 1, "h100")))
	if !d.Bid || len(d.Reservation.Placed) != 2 || d.Reservation.Placed[0].Node != "a" || d.Reservation.Placed[1].Node != "b" {
		t.Fatalf("two 3-core GPU replicas: %+v, want one on each node", d)
	}
	if !slices.Equal(d.Reservation.GPUs, []string{"k8s:a:0", "k8s:b:0"}) {
		t.Errorf("GPUs %v: want each replica's device on its own node", d.Reservation.GPUs)
	}
	if d := e.EvaluateAndReserve("more", spec(10_000_000, unit(1, 2000, 1, 0))); d.Bid {
		t.Errorf("2 cores with 1 free on each node: %+v, want no bid", d)
	}
	e.Release("pair")
	if d := e.EvaluateAndReserve("more", spec(10_000_000, unit(1, 2000, 1, 0))); !d.Bid || d.Reservation.Placed[0].Node != "a" {
		t.Errorf("after the release: %+v, want a bid placed on node a", d)
	}
}

// TestClusterNodesPoolAndTaints: a replica's GPUs come from nodes with the
// pool match chose (model and memory), and a node tainted for GPUs takes
// no replica that rents none.
func TestClusterNodesPoolAndTaints(t *testing.T) {
	table, err := config.Pricing{GPUPerHour: map[string]string{"a100": "1000000"}, CPUCorePerHour: "10000", MemoryGiBPerHour: "2000", StorageGiBPerHour: "100"}.Table()
	if err != nil {
		t.Fatal(err)
	}
	inv := inventory.Inventory{
		CPUMillis: 16000, MemoryBytes: 64 * gib, StorageBytes: 200 * gib,
		GPUs: []inventory.GPU{
			{UUID: "k8s:small:0", Model: "a100", MemoryMiB: 40960, Healthy: true},
			{UUID: "k8s:big:0", Model: "a100", MemoryMiB: 81920, Healthy: true},
		},
		Nodes: []inventory.Node{
			{Name: "small", CPUMillis: 8000, MemoryBytes: 32 * gib, StorageBytes: 100 * gib, GPUs: []string{"k8s:small:0"}},
			{Name: "big", CPUMillis: 8000, MemoryBytes: 32 * gib, StorageBytes: 100 * gib, GPUs: []string{"k8s:big:0"}},
		},
	}
	u := unit(1, 1000, 1, 1, "a100")
	u.Gpu.MinMemoryMib = 81920
	d := New(inv, table, nil).EvaluateAndReserve("big-a100", spec(10_000_000, u))
	if !d.Bid || d.Reservation.Placed[0].Node != "big" || d.Reservation.GPUs[0] != "k8s:big:0" {
		t.Fatalf("an 80 GiB A100: %+v, want the big node's device, not the 40 GiB one listed first", d)
	}
	inv.Nodes[0], inv.Nodes[1] = inv.Nodes[1], inv.Nodes[0]
	inv.Nodes[0].GPUOnly = true
	d = New(inv, table, nil).EvaluateAndReserve("cpu", spec(10_000_000, unit(1, 1000, 1, 0)))
	if !d.Bid || d.Reservation.Placed[0].Node != "small" {
		t.Errorf("a CPU replica: %+v, want it off the GPU-only node", d)
	}
}
