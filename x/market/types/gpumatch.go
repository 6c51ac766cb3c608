package types

import (
	"fmt"
	"math/bits"
	"sort"
)

// GPUPool is a set of interchangeable free GPUs: one model with one memory
// size. On chain a provider's declared GPU entries are its pools; the
// daemon groups its free devices into pools in the order it prefers them
// (cheapest first).
type GPUPool struct {
	Model     string
	MemoryMiB uint64
	// Interface is the GPUs' form factor (sxm, pcie; "" unknown).
	Interface string
	Free      uint64
}

// MaxGPUMatchSteps bounds the search of AssignGPUs: a spec that needs more
// steps than this to place is refused as unmatched, so no order can make a
// CreateBid (or the daemon) spin.
const MaxGPUMatchSteps = 20_000

// AssignGPUs places every GPU replica of the resource units on the pools:
// each replica takes its units GPUs from one pool (a replica's GPUs are of
// one model), from pools its GPU spec accepts, and no pool gives more than
// it has free. It is a real matching, not first-come: a unit that accepts
// any model does not take the only pool another unit can use. It returns
// how many replicas of each unit go to each pool (out[unit][pool]), or an
// error naming the first unit that cannot be placed. Units without GPUs get
// an all-zero row. Deterministic: the same input gives the same placement,
// preferring earlier pools.
func AssignGPUs(units []ResourceUnit, pools []GPUPool) ([][]uint64, error) {
	accept := make([][]int, len(units)) // unit → acceptable pools, in pool order
	var order []int                     // units needing GPUs, most constrained first
	for i, u := range units {
		if u.Gpu.Units == 0 || u.Count == 0 {
			continue
		}
		for j, p := range pools {
			if poolAcceptable(u.Gpu, p) && p.Free >= uint64(u.Gpu.Units) {
				accept[i] = append(accept[i], j)
			}
		}
		if len(accept[i]) == 0 {
			return nil, fmt.Errorf("resources[%d] needs %d x %d GPU(s) of %v with at least %d MiB; the provider has none that fit", i, u.Count, u.Gpu.Units, modelsOrAny(u.Gpu.Models), u.Gpu.MinMemoryMib)
		}
		order = append(order, i)
	}
	sort.SliceStable(order, func(a, b int) bool {
		if len(accept[order[a]]) != len(accept[order[b]]) {
			return len(accept[order[a]]) < len(accept[order[b]])
		}
		return units[order[a]].Gpu.Units > units[order[b]].Gpu.Units
	})
	// One step budget for the placement and, when it fails, for finding
	// the unit to name: a refused bid costs the chain no more than a
	// successful one.
	steps := 0
	if out, ok := search(units, pools, accept, order, &steps); ok {
		return out, nil
	}
	for k := range order {
		if steps > MaxGPUMatchSteps {
			break
		}
		if _, ok := search(units, pools, accept, order[:k+1], &steps); !ok && steps <= MaxGPUMatchSteps {
			u := units[order[k]]
			return nil, fmt.Errorf("resources[%d] needs %d x %d GPU(s) of %v with at least %d MiB; not enough free alongside the group's other units", order[k], u.Count, u.Gpu.Units, modelsOrAny(u.Gpu.Models), u.Gpu.MinMemoryMib)
		}
	}
	if steps > MaxGPUMatchSteps {
		return nil, fmt.Errorf("GPU placement needs more than %d search steps; split the group", MaxGPUMatchSteps)
	}
	return nil, fmt.Errorf("the group's GPUs cannot all be placed on the provider's GPUs")
}

// search places the units of order (a prefix of the full order, for the
// diagnosis) on fresh pools, counting its steps in *steps.
func search(units []ResourceUnit, pools []GPUPool, accept [][]int, order []int, steps *int) ([][]uint64, bool) {
	s := &gpuSearch{units: units, accept: accept, order: order, steps: steps,
		free: make([]uint64, len(pools)), out: make([][]uint64, len(units))}
	for j, p := range pools {
		s.free[j] = p.Free
	}
	for i := range s.out {
		s.out[i] = make([]uint64, len(pools))
	}
	return s.out, s.place(0, 0, s.count(0))
}

// count is the number of replicas of the k-th unit of the order.
func (s *gpuSearch) count(k int) uint64 {
	if k >= len(s.order) {
		return 0
	}
	return uint64(s.units[s.order[k]].Count)
}

type gpuSearch struct {
	units  []ResourceUnit
	accept [][]int
	order  []int
	free   []uint64
	out    [][]uint64
	steps  *int
}

// place puts the remaining replicas of unit order[k], starting at its a-th
// acceptable pool, then the later units; it backtracks on failure.
func (s *gpuSearch) place(k, a int, remaining uint64) bool {
	*s.steps++
	if *s.steps > MaxGPUMatchSteps {
		return false
	}
	if k == len(s.order) {
		return true
	}
	if remaining == 0 {
		return s.place(k+1, 0, s.count(k+1))
	}
	i := s.order[k]
	if a == len(s.accept[i]) {
		return false
	}
	j := s.accept[i][a]
	per := uint64(s.units[i].Gpu.Units)
	most := min(remaining, s.free[j]/per)
	for x := most; ; x-- {
		s.free[j] -= x * per
		s.out[i][j] += x
		if s.place(k, a+1, remaining-x) {
			return true
		}
		s.free[j] += x * per
		s.out[i][j] -= x
		if x == 0 || *s.steps > MaxGPUMatchSteps {
			return false
		}
	}
}

func poolAcceptable(want GPUSpec, p GPUPool) bool {
	if p.MemoryMiB < want.MinMemoryMib {
		return false
	}
	if want.Interface != "" && p.Interface != want.Interface {
		return false
	}
	if len(want.Models) == 0 {
		return true
	}
	for _, m := range want.Models {
		if m == p.Model {
			return true
		}
	}
	return false
}

// Totals are a group's summed resources, overflow-checked.
type Totals struct {
	CPUMillis, MemoryBytes, StorageBytes, GPUs uint64
	// Classes are the persistent storage per class, sorted by class.
	Classes []ClassBytes
}

// ClassBytes is an amount of one storage class.
type ClassBytes struct {
	Class string
	Bytes uint64
}

// addClass adds b bytes of class to cs (kept sorted), refusing overflow.
func addClass(cs []ClassBytes, class string, b uint64) ([]ClassBytes, error) {
	i := sort.Search(len(cs), func(i int) bool { return cs[i].Class >= class })
	if i < len(cs) && cs[i].Class == class {
		sum, carry := bits.Add64(cs[i].Bytes, b, 0)
		if carry != 0 {
			return cs, fmt.Errorf("the group's total of storage class %s overflows", class)
		}
		cs[i].Bytes = sum
		return cs, nil
	}
	cs = append(cs, ClassBytes{})
	copy(cs[i+1:], cs[i:])
	cs[i] = ClassBytes{Class: class, Bytes: b}
	return cs, nil
}

// GroupTotals sums count × per-replica resources over the units, refusing
// any sum or product that does not fit in 64 bits.
func GroupTotals(units []ResourceUnit) (Totals, error) {
	var t Totals
	for i, u := range units {
		n := uint64(u.Count)
		for _, f := range []struct {
			name string
			per  uint64
			sum  *uint64
		}{
			{"cpu_millis", u.CpuMillis, &t.CPUMillis},
			{"memory_bytes", u.MemoryBytes, &t.MemoryBytes},
			{"storage_bytes", u.StorageBytes, &t.StorageBytes},
			{"gpu units", uint64(u.Gpu.Units), &t.GPUs},
		} {
			hi, prod := bits.Mul64(n, f.per)
			if hi != 0 {
				return t, fmt.Errorf("resources[%d]: %d replicas x %d %s overflows", i, n, f.per, f.name)
			}
			sum, carry := bits.Add64(*f.sum, prod, 0)
			if carry != 0 {
				return t, fmt.Errorf("resources[%d]: the group's total %s overflows", i, f.name)
			}
			*f.sum = sum
		}
		for _, v := range u.Persistent {
			hi, prod := bits.Mul64(n, v.Bytes)
			if hi != 0 {
				return t, fmt.Errorf("resources[%d]: %d replicas x %d bytes of %s overflows", i, n, v.Bytes, v.Class)
			}
			var err error
			if t.Classes, err = addClass(t.Classes, v.Class, prod); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}
