package types

import (
	"fmt"

	sdkmath "cosmossdk.io/math"

	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Candidate is a bid as the auction sees it.
type Candidate struct {
	Price       sdkmath.LegacyDec
	Reliability sdkmath.LegacyDec
	Seq         uint64
}

// Better reports whether a beats b: lower price, then higher reliability,
// then the earlier bid.
func (a Candidate) Better(b Candidate) bool {
	if !a.Price.Equal(b.Price) {
		return a.Price.LT(b.Price)
	}
	if !a.Reliability.Equal(b.Reliability) {
		return a.Reliability.GT(b.Reliability)
	}
	return a.Seq < b.Seq
}

// BestCandidate returns the index of the winning candidate, or -1 if none.
func BestCandidate(cs []Candidate) int {
	best := -1
	for i, c := range cs {
		if best < 0 || c.Better(cs[best]) {
			best = i
		}
	}
	return best
}

// MatchSpec checks a provider's declared attributes, GPUs and capacity
// against a group's needs and says what is missing.
func MatchSpec(spec GroupSpec, p providertypes.Provider) error {
	attrs := make(map[string]string, len(p.Attributes))
	for _, a := range p.Attributes {
		attrs[a.Key] = a.Value
	}
	for _, req := range spec.Requirements {
		if v, ok := attrs[req.Key]; !ok || v != req.Value {
			return fmt.Errorf("requires attribute %s=%s", req.Key, req.Value)
		}
	}
	var cpu, mem, storage uint64
	free := make([]uint64, len(p.Gpus))
	for i, g := range p.Gpus {
		free[i] = uint64(g.Count)
	}
	for i, r := range spec.Resources {
		n := uint64(r.Count)
		cpu += n * r.CpuMillis
		mem += n * r.MemoryBytes
		storage += n * r.StorageBytes
		need := n * uint64(r.Gpu.Units)
		for j, g := range p.Gpus {
			if need == 0 {
				break
			}
			if !gpuAcceptable(r.Gpu, g) {
				continue
			}
			take := min(need, free[j])
			free[j] -= take
			need -= take
		}
		if need > 0 {
			return fmt.Errorf("resources[%d] needs %d more GPU(s) of %v with at least %d MiB", i, need, modelsOrAny(r.Gpu.Models), r.Gpu.MinMemoryMib)
		}
	}
	switch {
	case cpu > p.Capacity.CpuMillis:
		return fmt.Errorf("needs %d CPU millis, provider offers %d", cpu, p.Capacity.CpuMillis)
	case mem > p.Capacity.MemoryBytes:
		return fmt.Errorf("needs %d bytes of memory, provider offers %d", mem, p.Capacity.MemoryBytes)
	case storage > p.Capacity.StorageBytes:
		return fmt.Errorf("needs %d bytes of storage, provider offers %d", storage, p.Capacity.StorageBytes)
	}
	return nil
}

func gpuAcceptable(want GPUSpec, g providertypes.GPU) bool {
	if g.MemoryMib < want.MinMemoryMib {
		return false
	}
	if len(want.Models) == 0 {
		return true
	}
	for _, m := range want.Models {
		if m == g.Model {
			return true
		}
	}
	return false
}

func modelsOrAny(models []string) any {
	if len(models) == 0 {
		return "any model"
	}
	return models
}
