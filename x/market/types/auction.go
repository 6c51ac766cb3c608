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
// against a group's needs and says what is missing. GPUs are placed by
// AssignGPUs (the daemon's bid engine uses the same function on its free
// devices); every sum is overflow-checked.
func MatchSpec(spec GroupSpec, p providertypes.Provider) error {
	for _, req := range spec.Requirements {
		found := false
		for _, a := range p.Attributes {
			if a.Key == req.Key && a.Value == req.Value {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("requires attribute %s=%s", req.Key, req.Value)
		}
	}
	t, err := GroupTotals(spec.Resources)
	if err != nil {
		return err
	}
	pools := make([]GPUPool, len(p.Gpus))
	for i, g := range p.Gpus {
		pools[i] = GPUPool{Model: g.Model, MemoryMiB: g.MemoryMib, Interface: g.Interface, Free: uint64(g.Count)}
	}
	if _, err := AssignGPUs(spec.Resources, pools); err != nil {
		return err
	}
	switch {
	case t.CPUMillis > p.Capacity.CpuMillis:
		return fmt.Errorf("needs %d CPU millis, provider offers %d", t.CPUMillis, p.Capacity.CpuMillis)
	case t.MemoryBytes > p.Capacity.MemoryBytes:
		return fmt.Errorf("needs %d bytes of memory, provider offers %d", t.MemoryBytes, p.Capacity.MemoryBytes)
	case t.StorageBytes > p.Capacity.StorageBytes:
		return fmt.Errorf("needs %d bytes of storage, provider offers %d", t.StorageBytes, p.Capacity.StorageBytes)
	}
	for _, c := range t.Classes {
		var offered uint64
		for _, sc := range p.Capacity.StorageClasses {
			if sc.Name == c.Class {
				offered = sc.Bytes
			}
		}
		if c.Bytes > offered {
			return fmt.Errorf("needs %d bytes of persistent storage class %s, provider offers %d", c.Bytes, c.Class, offered)
		}
	}
	return nil
}

func modelsOrAny(models []string) any {
	if len(models) == 0 {
		return "any model"
	}
	return models
}
