package types

import (
	"strings"
	"testing"

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
		if got := BestCandidate(tc.cands); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestMatchSpec(t *testing.T) {
	prov := providertypes.Provider{
		Attributes: []providertypes.Attribute{{Key: "region", Value: "eu"}, {Key: "tier", Value: "dc"}},
		Gpus: []providertypes.GPU{
			{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Count: 4},
			{Vendor: "nvidia", Model: "a100", MemoryMib: 40960, Count: 2},
		},
		Capacity: providertypes.Capacity{CpuMillis: 32_000, MemoryBytes: 128 << 30, StorageBytes: 1 << 40},
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
		{"too many h100", GroupSpec{Resources: []ResourceUnit{unit(5, 1, "h100")}}, "needs 1 more GPU"},
		{"memory floor excludes a100", GroupSpec{Resources: []ResourceUnit{{Count: 1, CpuMillis: 1, MemoryBytes: 1, Gpu: GPUSpec{Units: 6, MinMemoryMib: 80_000}}}}, "needs 2 more GPU"},
		{"model not offered", GroupSpec{Resources: []ResourceUnit{unit(1, 1, "rtx4090")}}, "rtx4090"},
		{"attribute met", GroupSpec{Requirements: []providertypes.Attribute{{Key: "region", Value: "eu"}}, Resources: []ResourceUnit{unit(1, 0)}}, ""},
		{"attribute value differs", GroupSpec{Requirements: []providertypes.Attribute{{Key: "region", Value: "us"}}, Resources: []ResourceUnit{unit(1, 0)}}, "region=us"},
		{"cpu over capacity", GroupSpec{Resources: []ResourceUnit{unit(9, 0)}}, "CPU millis"},
	}
	for _, tc := range cases {
		err := MatchSpec(tc.spec, prov)
		if tc.want == "" && err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}
