package types

import (
	"fmt"

	errorsmod "cosmossdk.io/errors"

	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Limits that bound state per deployment.
const (
	MaxGroupNameLength = 64
	MaxResourceUnits   = 16
	MaxReplicas        = 256
	MaxGPUModels       = 8
)

// ValidateGroups checks a deployment's groups, naming the field at fault.
func ValidateGroups(groups []GroupSpec, maxGroups uint32, denom string) error {
	if len(groups) == 0 {
		return errorsmod.Wrap(ErrInvalidGroups, "a deployment needs at least one group")
	}
	if len(groups) > int(maxGroups) {
		return errorsmod.Wrapf(ErrInvalidGroups, "%d groups, at most %d", len(groups), maxGroups)
	}
	names := map[string]bool{}
	for i, g := range groups {
		where := fmt.Sprintf("groups[%d]", i)
		if g.Name == "" || len(g.Name) > MaxGroupNameLength {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s: name must be 1-%d characters", where, MaxGroupNameLength)
		}
		if names[g.Name] {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s: duplicate name %q", where, g.Name)
		}
		names[g.Name] = true
		if err := providertypes.ValidateAttributes(g.Requirements); err != nil {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s (%s) requirements: %v", where, g.Name, err)
		}
		if len(g.Resources) == 0 || len(g.Resources) > MaxResourceUnits {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s (%s): 1-%d resource units", where, g.Name, MaxResourceUnits)
		}
		for j, r := range g.Resources {
			rw := fmt.Sprintf("%s (%s) resources[%d]", where, g.Name, j)
			if r.Count == 0 || r.Count > MaxReplicas {
				return errorsmod.Wrapf(ErrInvalidGroups, "%s: count must be 1-%d", rw, MaxReplicas)
			}
			if r.CpuMillis == 0 || r.MemoryBytes == 0 {
				return errorsmod.Wrapf(ErrInvalidGroups, "%s: cpu_millis and memory_bytes must be positive", rw)
			}
			if len(r.Gpu.Models) > MaxGPUModels {
				return errorsmod.Wrapf(ErrInvalidGroups, "%s: at most %d gpu models", rw, MaxGPUModels)
			}
			if r.Gpu.Units == 0 && (len(r.Gpu.Models) > 0 || r.Gpu.MinMemoryMib > 0) {
				return errorsmod.Wrapf(ErrInvalidGroups, "%s: gpu models or memory given without gpu units", rw)
			}
			for _, m := range r.Gpu.Models {
				if !providertypes.IsGPUModelSlug(m) {
					return errorsmod.Wrapf(ErrInvalidGroups, "%s: gpu model %q is not a canonical slug", rw, m)
				}
			}
		}
		if g.MaxPrice.Denom != denom {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s (%s): max_price is in %q; prices are per hour in %s", where, g.Name, g.MaxPrice.Denom, denom)
		}
		if g.MaxPrice.Amount.IsNil() || !g.MaxPrice.Amount.IsPositive() {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s (%s): max_price must be positive", where, g.Name)
		}
	}
	return nil
}
