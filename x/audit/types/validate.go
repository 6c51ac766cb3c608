package types

import (
	"fmt"
	"slices"

	"cosmossdk.io/core/address"
	errorsmod "cosmossdk.io/errors"

	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// ValidateBasic checks addresses and attributes without state.
func (m *MsgSignProviderAttributes) ValidateBasic() error {
	if err := checkPair(m.Auditor, m.Owner); err != nil {
		return err
	}
	if len(m.Attributes) == 0 {
		return errorsmod.Wrap(ErrInvalidAttributes, "no attributes to sign")
	}
	if err := providertypes.ValidateAttributes(m.Attributes); err != nil {
		return errorsmod.Wrap(ErrInvalidAttributes, err.Error())
	}
	return nil
}

// ValidateBasic checks addresses and keys without state.
func (m *MsgDeleteProviderAttributes) ValidateBasic() error {
	if err := checkPair(m.Auditor, m.Owner); err != nil {
		return err
	}
	if len(m.Keys) > providertypes.MaxAttributes {
		return errorsmod.Wrapf(ErrInvalidAttributes, "%d keys, at most %d", len(m.Keys), providertypes.MaxAttributes)
	}
	for i, k := range m.Keys {
		if k == "" || len(k) > providertypes.MaxAttributeKey {
			return errorsmod.Wrapf(ErrInvalidAttributes, "keys[%d] %q is not an attribute key", i, k)
		}
		if slices.Contains(m.Keys[:i], k) {
			return errorsmod.Wrapf(ErrInvalidAttributes, "keys[%d]: duplicate key %q", i, k)
		}
	}
	return nil
}

func checkPair(auditor, owner string) error {
	if auditor == "" || owner == "" {
		return errorsmod.Wrap(ErrInvalidAddress, "auditor and owner are required")
	}
	if auditor == owner {
		return errorsmod.Wrap(ErrSelfAudit, owner)
	}
	return nil
}

// Validate checks one stored entry.
func (a AuditedAttributes) Validate(ac address.Codec) error {
	if _, err := ac.StringToBytes(a.Owner); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "owner %q: %v", a.Owner, err)
	}
	if _, err := ac.StringToBytes(a.Auditor); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "auditor %q: %v", a.Auditor, err)
	}
	if a.Owner == a.Auditor {
		return errorsmod.Wrap(ErrSelfAudit, a.Owner)
	}
	if len(a.Attributes) == 0 {
		return errorsmod.Wrapf(ErrInvalidAttributes, "%s by %s: no attributes", a.Owner, a.Auditor)
	}
	if err := providertypes.ValidateAttributes(a.Attributes); err != nil {
		return errorsmod.Wrapf(ErrInvalidAttributes, "%s by %s: %v", a.Owner, a.Auditor, err)
	}
	if !slices.IsSortedFunc(a.Attributes, func(x, y providertypes.Attribute) int { return compare(x.Key, y.Key) }) {
		return errorsmod.Wrapf(ErrInvalidAttributes, "%s by %s: attributes not sorted by key", a.Owner, a.Auditor)
	}
	return nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DefaultGenesis is no signatures.
func DefaultGenesis() *GenesisState { return &GenesisState{Attributes: []AuditedAttributes{}} }

// Validate checks every entry and that no (owner, auditor) pair repeats.
func (gs GenesisState) Validate(ac address.Codec) error {
	seen := map[[2]string]bool{}
	for i, a := range gs.Attributes {
		if err := a.Validate(ac); err != nil {
			return fmt.Errorf("attributes[%d]: %w", i, err)
		}
		k := [2]string{a.Owner, a.Auditor}
		if seen[k] {
			return fmt.Errorf("attributes[%d]: %s by %s appears twice", i, a.Owner, a.Auditor)
		}
		seen[k] = true
	}
	return nil
}

// Satisfies reports whether a provider whose signatures are signed (one
// entry per auditor) meets the group's needs: every requirement signed by
// every all_of auditor and by at least one any_of auditor. With no
// requirements an auditor counts when it signed anything for the provider.
func Satisfies(signed []AuditedAttributes, requirements []providertypes.Attribute, allOf, anyOf []string) bool {
	vouches := func(auditor string) bool {
		for _, a := range signed {
			if a.Auditor != auditor {
				continue
			}
			for _, r := range requirements {
				if !slices.ContainsFunc(a.Attributes, func(x providertypes.Attribute) bool { return x.Key == r.Key && x.Value == r.Value }) {
					return false
				}
			}
			return len(a.Attributes) > 0
		}
		return false
	}
	for _, a := range allOf {
		if !vouches(a) {
			return false
		}
	}
	if len(anyOf) == 0 {
		return true
	}
	return slices.ContainsFunc(anyOf, vouches)
}
