package types

import (
	"strings"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"

	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

func TestBestCandidate(t *testing.T) {
	d := sdkmath.LegacyMustNewDecFromStr
	c := func(price, rel string, seq uint64) Candidate {
		return Candidate{Price: d(price), Reliability: d(rel), Seq: seq}
	}
	cases := []struct {
		name  string
		cands []Candidate
		want  int
	}{
		{"none", nil, -1},
		{"lowest price wins", []Candidate{c("10", "0.9", 1), c("9", "0.1", 2), c("11", "1", 3)}, 1},
		{"tie: higher reliability", []Candidate{c("10", "0.5", 1), c("10", "0.8", 2)}, 1},
		{"tie: earlier bid", []Candidate{c("10", "0.5", 7), c("10", "0.5", 3), c("10", "0.5", 5)}, 1},
		{"price beats reliability", []Candidate{c("10.000000000000000001", "1", 1), c("10", "0", 2)}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := BestCandidate(tc.cands); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMatchSpec(t *testing.T) {
	prov := providertypes.Provider{
		Attributes: []providertypes.Attribute{{Key: "region", Value: "eu"}, {Key: "tier", Value: "dc"}},
		Gpus: []providertypes.GPU{
			{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Count: 4},
			{Vendor: "nvidia", Model: "a100", MemoryMib: 40960, Count: 2},
		},
		Capacity: providertypes.Capacity{CpuMillis: 32_000, MemoryBytes: 128 << 30, StorageBytes: 1 << 40,
			StorageClasses: []providertypes.StorageClass{{Name: "beta2", Bytes: 100 << 30}}},
	}
	persistent := func(count uint32, class string, gib uint64) ResourceUnit {
		return ResourceUnit{Count: count, CpuMillis: 1, MemoryBytes: 1, Persistent: []PersistentVolume{{Class: class, Bytes: gib << 30}}}
	}
	unit := func(count, gpus uint32, models ...string) ResourceUnit {
		return ResourceUnit{Count: count, CpuMillis: 4_000, MemoryBytes: 8 << 30, StorageBytes: 10 << 30, Gpu: GPUSpec{Units: gpus, Models: models}}
	}
	cases := []struct {
		name string
		spec GroupSpec
		want string // empty: matches
	}{
		{"cpu only", GroupSpec{Resources: []ResourceUnit{unit(2, 0)}}, ""},
		{"h100 ×4", GroupSpec{Resources: []ResourceUnit{unit(2, 2, "h100")}}, ""},
		{"any model spills across kinds", GroupSpec{Resources: []ResourceUnit{unit(3, 2)}}, ""},
		{"too many h100", GroupSpec{Resources: []ResourceUnit{unit(5, 1, "h100")}}, "5 x 1 GPU(s)"},
		{"memory floor excludes a100", GroupSpec{Resources: []ResourceUnit{{Count: 1, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 6, MinMemoryMib: 80_000}}}}, "1 x 6 GPU(s)"},
		{"model not offered", GroupSpec{Resources: []ResourceUnit{unit(1, 1, "rtx4090")}}, "rtx4090"},
		{"attribute met", GroupSpec{Requirements: []providertypes.Attribute{{Key: "region", Value: "eu"}}, Resources: []ResourceUnit{unit(1, 0)}}, ""},
		{"attribute value differs", GroupSpec{Requirements: []providertypes.Attribute{{Key: "region", Value: "us"}}, Resources: []ResourceUnit{unit(1, 0)}}, "region=us"},
		{"cpu over capacity", GroupSpec{Resources: []ResourceUnit{unit(9, 0)}}, "CPU millis"},
		{"persistent class offered", GroupSpec{Resources: []ResourceUnit{persistent(2, "beta2", 40), persistent(1, "beta2", 20)}}, ""},
		{"persistent class over capacity", GroupSpec{Resources: []ResourceUnit{persistent(3, "beta2", 40)}}, "persistent storage class beta2"},
		{"persistent class not offered", GroupSpec{Resources: []ResourceUnit{persistent(1, "beta3", 1)}}, "class beta3, provider offers 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := MatchSpec(tc.spec, prov)
			if tc.want == "" && err != nil {
				t.Errorf("refused: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// TestAssignGPUsIsAMatching: a unit that takes any model must not take the
// only pool another unit can use, whatever order the units come in; a
// replica's GPUs come from one pool.
func TestAssignGPUsIsAMatching(t *testing.T) {
	pools := []GPUPool{{Model: "h100", MemoryMiB: 81559, Free: 1}, {Model: "a100", MemoryMiB: 40960, Free: 1}}
	anyGPU := ResourceUnit{Count: 1, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 1}}
	h100 := ResourceUnit{Count: 1, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 1, Models: []string{"h100"}}}
	out, err := AssignGPUs([]ResourceUnit{anyGPU, h100}, pools)
	if err != nil {
		t.Fatalf("any + h100 on one h100 and one a100: %v", err)
	}
	if out[0][1] != 1 || out[1][0] != 1 {
		t.Errorf("placement %v: want the any-model unit on the a100 and the h100 unit on the h100", out)
	}
	// Needs backtracking: both accept both pools, but 2-GPU replicas fit
	// only where 2 are free.
	pools = []GPUPool{{Model: "h100", Free: 3}, {Model: "a100", Free: 2}}
	one := ResourceUnit{Count: 1, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 1}}
	two := ResourceUnit{Count: 2, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 2}}
	if out, err = AssignGPUs([]ResourceUnit{one, two}, pools); err != nil {
		t.Fatalf("1x1 + 2x2 on 3 + 2: %v", err)
	}
	for j := range pools {
		used := out[0][j]*1 + out[1][j]*2
		if used > pools[j].Free {
			t.Errorf("pool %d gives %d of %d", j, used, pools[j].Free)
		}
	}
	// A replica's GPUs never span two pools: 1 replica of 4 on 2 + 2 fails.
	if _, err := AssignGPUs([]ResourceUnit{{Count: 1, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 4}}}, []GPUPool{{Model: "h100", Free: 2}, {Model: "a100", Free: 2}}); err == nil {
		t.Error("a 4-GPU replica was split over two pools")
	}
}

func TestGroupTotalsRefusesOverflow(t *testing.T) {
	huge := ResourceUnit{Count: 256, CpuMillis: 1 << 60, MemoryBytes: 1}
	if _, err := GroupTotals([]ResourceUnit{huge}); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("256 x 2^60 cpu: %v", err)
	}
	sum := ResourceUnit{Count: 1, CpuMillis: 1, MemoryBytes: 1 << 63}
	if _, err := GroupTotals([]ResourceUnit{sum, sum}); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("2 x 2^63 memory: %v", err)
	}
	m := &MsgCreateDeployment{Groups: []GroupSpec{{Name: "g", Resources: []ResourceUnit{huge}}}}
	if err := m.ValidateBasic(); err == nil || !strings.Contains(err.Error(), "cpu_millis") {
		t.Errorf("ValidateBasic of 2^60 cpu: %v", err)
	}
}

// A spec no provider can hold, built to make the search branch as much as
// possible, is refused within the step budget (placement and diagnosis
// together): a hostile order cannot make CreateBid spin.
func TestAssignGPUsIsBounded(t *testing.T) {
	var units []ResourceUnit
	for range MaxResourceUnits {
		units = append(units, ResourceUnit{Count: 3, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 1}})
	}
	var pools []GPUPool
	for i := range 8 {
		pools = append(pools, GPUPool{Model: "h100", MemoryMiB: uint64(80_000 + i), Free: 5})
	}
	began := time.Now()
	_, err := AssignGPUs(units, pools) // 48 GPUs wanted, 40 there
	if err == nil || !strings.Contains(err.Error(), "search steps") {
		t.Fatalf("48 GPUs on 40: %v, want the step budget's refusal", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("refusal took %s", took)
	}
}

func TestGPUInterfaceMatches(t *testing.T) {
	prov := providertypes.Provider{
		Gpus:     []providertypes.GPU{{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Interface: "pcie", Count: 2}, {Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Interface: "sxm", Count: 1}},
		Capacity: providertypes.Capacity{CpuMillis: 32_000, MemoryBytes: 128 << 30, StorageBytes: 1 << 40},
	}
	spec := func(n uint32, iface string) GroupSpec {
		return GroupSpec{Resources: []ResourceUnit{{Count: n, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 1, Models: []string{"h100"}, Interface: iface}}}}
	}
	if err := MatchSpec(spec(2, "pcie"), prov); err != nil {
		t.Errorf("two pcie: %v", err)
	}
	if err := MatchSpec(spec(2, "sxm"), prov); err == nil {
		t.Error("two sxm matched a provider with one")
	}
	if err := MatchSpec(spec(3, ""), prov); err != nil {
		t.Errorf("three of any interface: %v", err)
	}
}
