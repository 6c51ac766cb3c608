package types

import (
	"fmt"

	errorsmod "cosmossdk.io/errors"
	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"

	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Limits that bound state per deployment and every resource figure. The
// SDL parser uses the same ones; the chain refuses anything beyond them in
// ValidateBasic, so an order nobody can run never reaches the mempool and no
// sum over an order can overflow.
const (
	MaxGroupNameLength = 64
	MaxResourceUnits   = 16
	MaxReplicas        = 256
	MaxGPUModels       = 8
	MaxCPUMillis       = 1 << 20  // per replica: 1,048 cores
	MaxMemoryBytes     = 16 << 40 // per replica: 16 TiB
	MaxStorageBytes    = 1 << 50  // per replica: 1 PiB
	MaxGPUUnits        = 64       // per replica
	MaxGroups          = 64       // per deployment, whatever max_groups_per_deployment says
)

// ValidateResources checks one unit's figures against the bounds.
func ValidateResources(r ResourceUnit) error {
	switch {
	case r.Count == 0 || r.Count > MaxReplicas:
		return fmt.Errorf("count %d must be 1-%d", r.Count, MaxReplicas)
	case r.CpuMillis == 0 || r.CpuMillis > MaxCPUMillis:
		return fmt.Errorf("cpu_millis %d must be 1-%d", r.CpuMillis, MaxCPUMillis)
	case r.MemoryBytes == 0 || r.MemoryBytes > MaxMemoryBytes:
		return fmt.Errorf("memory_bytes %d must be 1-%d", r.MemoryBytes, uint64(MaxMemoryBytes))
	case r.StorageBytes > MaxStorageBytes:
		return fmt.Errorf("storage_bytes %d must be at most %d", r.StorageBytes, uint64(MaxStorageBytes))
	case r.Gpu.Units > MaxGPUUnits:
		return fmt.Errorf("gpu units %d must be at most %d", r.Gpu.Units, MaxGPUUnits)
	case len(r.Gpu.Models) > MaxGPUModels:
		return fmt.Errorf("at most %d gpu models", MaxGPUModels)
	case len(r.Persistent) > MaxPersistentVolumes:
		return fmt.Errorf("%d persistent volumes, at most %d", len(r.Persistent), MaxPersistentVolumes)
	}
	var total uint64
	for i, v := range r.Persistent {
		if !providertypes.IsStorageClass(v.Class) {
			return fmt.Errorf("persistent[%d]: %q is not a storage class", i, v.Class)
		}
		if v.Bytes == 0 || v.Bytes > MaxStorageBytes {
			return fmt.Errorf("persistent[%d] (%s): bytes %d must be 1-%d", i, v.Class, v.Bytes, uint64(MaxStorageBytes))
		}
		if v.Bytes > MaxStorageBytes-total {
			return fmt.Errorf("persistent volumes together: more than %d bytes", uint64(MaxStorageBytes))
		}
		total += v.Bytes
	}
	return nil
}

// MaxPersistentVolumes caps one replica's persistent volumes.
const MaxPersistentVolumes = 16

// ValidateBasic refuses, before the mempool, a deployment whose resources
// are out of bounds or whose totals would overflow: stateless checks only
// (params are checked again in the message server).
func (m *MsgCreateDeployment) ValidateBasic() error {
	if len(m.Groups) == 0 || len(m.Groups) > MaxGroups {
		return errorsmod.Wrapf(ErrInvalidGroups, "%d groups, must be 1-%d", len(m.Groups), MaxGroups)
	}
	for i, g := range m.Groups {
		if len(g.Resources) == 0 || len(g.Resources) > MaxResourceUnits {
			return errorsmod.Wrapf(ErrInvalidGroups, "groups[%d] (%s): 1-%d resource units", i, g.Name, MaxResourceUnits)
		}
		for j, r := range g.Resources {
			if err := ValidateResources(r); err != nil {
				return errorsmod.Wrapf(ErrResourcesTooLarge, "groups[%d] (%s) resources[%d]: %v", i, g.Name, j, err)
			}
		}
		if _, err := GroupTotals(g.Resources); err != nil {
			return errorsmod.Wrapf(ErrResourcesTooLarge, "groups[%d] (%s): %v", i, g.Name, err)
		}
	}
	return nil
}

// ValidateBasic checks a dispute's shape: a receipt for a lease of the
// sender, with a SHA-256 and a signature.
func (m *MsgDisputeLease) ValidateBasic() error {
	if m.Owner != m.Receipt.Lease.Order.Owner {
		return errorsmod.Wrapf(ErrUnauthorized, "%s disputes a lease of %s", m.Owner, m.Receipt.Lease.Order.Owner)
	}
	if len(m.Receipt.ManifestHash) != 32 {
		return errorsmod.Wrapf(ErrInvalidReceipt, "manifest_hash must be 32 bytes, got %d", len(m.Receipt.ManifestHash))
	}
	if len(m.Receipt.Signature) == 0 || len(m.Receipt.Signature) > 128 {
		return errorsmod.Wrapf(ErrInvalidReceipt, "signature must be 1-128 bytes, got %d", len(m.Receipt.Signature))
	}
	return nil
}

// LeastReliability is the lowest reliability score the group accepts; ok
// false when it asks none (unset or zero).
func (g GroupSpec) LeastReliability() (least sdkmath.LegacyDec, ok bool) {
	if r := g.MinReliability; r != nil && !r.IsNil() && r.IsPositive() {
		return *r, true
	}
	return sdkmath.LegacyDec{}, false
}

// MaxAttestedExceptions caps the leases one attestation names down, and
// those it names degraded.
const MaxAttestedExceptions = 1000

// ValidateBasic checks an attestation's shape: full lease ids, no more of
// them than it claims to see.
func (m *MsgAttest) ValidateBasic() error {
	if len(m.Down) > MaxAttestedExceptions || len(m.Degraded) > MaxAttestedExceptions {
		return errorsmod.Wrapf(ErrInvalidAttestation, "%d leases down and %d degraded; at most %d of each per attestation", len(m.Down), len(m.Degraded), MaxAttestedExceptions)
	}
	n := len(m.Down) + len(m.Degraded)
	if n > int(m.Leases) {
		return errorsmod.Wrapf(ErrInvalidAttestation, "names %d leases down or degraded but attests only %d", n, m.Leases)
	}
	// A lease named twice is refused by the keeper, which compares store
	// keys (one address has more than one spelling).
	for _, list := range [][]OrderID{m.Down, m.Degraded} {
		for _, id := range list {
			if id.Owner == "" || id.Dseq == 0 || id.Gseq == 0 || id.Oseq == 0 {
				return errorsmod.Wrapf(ErrInvalidAttestation, "lease %q is not a full order id (owner/dseq/gseq/oseq)", id.Name())
			}
		}
	}
	return nil
}

// ReceiptSignBytes are the bytes a provider signs for a manifest receipt:
// a fixed text naming the chain (no replay on another chain), the lease,
// the manifest hash and the time.
func ReceiptSignBytes(chainID string, lease BidID, manifestHash []byte, issuedAt int64) []byte {
	return fmt.Appendf(nil, "gpunet manifest receipt v1\nchain_id=%s\nlease=%s\nmanifest_hash=%x\nissued_at=%d\n", chainID, lease.Name(), manifestHash, issuedAt)
}

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
		if err := ValidateSignedBy(g.SignedBy); err != nil {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s (%s) signed_by: %v", where, g.Name, err)
		}
		if r := g.MinReliability; r != nil && (r.IsNil() || r.IsNegative() || r.GT(sdkmath.LegacyOneDec())) {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s (%s): min_reliability %s must be within [0, 1]", where, g.Name, r)
		}
		if len(g.Resources) == 0 || len(g.Resources) > MaxResourceUnits {
			return errorsmod.Wrapf(ErrInvalidGroups, "%s (%s): 1-%d resource units", where, g.Name, MaxResourceUnits)
		}
		for j, r := range g.Resources {
			rw := fmt.Sprintf("%s (%s) resources[%d]", where, g.Name, j)
			if err := ValidateResources(r); err != nil {
				return errorsmod.Wrapf(ErrResourcesTooLarge, "%s: %v", rw, err)
			}
			if r.Gpu.Units == 0 && (len(r.Gpu.Models) > 0 || r.Gpu.MinMemoryMib > 0) {
				return errorsmod.Wrapf(ErrInvalidGroups, "%s: gpu models or memory given without gpu units", rw)
			}
			for _, m := range r.Gpu.Models {
				if !providertypes.IsGPUModelSlug(m) {
					return errorsmod.Wrapf(ErrInvalidGroups, "%s: gpu model %q is not a canonical slug", rw, m)
				}
			}
			switch r.Gpu.Interface {
			case "", "sxm", "pcie":
			default:
				return errorsmod.Wrapf(ErrInvalidGroups, "%s: gpu interface %q must be sxm or pcie (or empty for any)", rw, r.Gpu.Interface)
			}
			if r.Gpu.Interface != "" && r.Gpu.Units == 0 {
				return errorsmod.Wrapf(ErrInvalidGroups, "%s: gpu interface given without gpu units", rw)
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

// MaxSignedBy caps the auditors one group names (all_of and any_of
// together): the auction reads each of them per bid.
const MaxSignedBy = 8

// ValidateSignedBy requires account addresses, each named once.
func ValidateSignedBy(sb SignedBy) error {
	all := append(append([]string(nil), sb.AllOf...), sb.AnyOf...)
	if len(all) > MaxSignedBy {
		return fmt.Errorf("%d auditors, at most %d", len(all), MaxSignedBy)
	}
	for i, a := range all {
		if _, err := sdk.AccAddressFromBech32(a); err != nil {
			return fmt.Errorf("auditor %q is not an account address: %v", a, err)
		}
		for _, b := range all[:i] {
			if a == b {
				return fmt.Errorf("auditor %s is named twice", a)
			}
		}
	}
	return nil
}
