package types

import (
	"fmt"
	"github.com/gpunet/gpunet/x/internal/sweep"

	"cosmossdk.io/core/address"
)

// DefaultGenesis is an empty registry with default params.
func DefaultGenesis() *GenesisState {
	return &GenesisState{Params: DefaultParams(), NextUnbondingId: 1}
}

// Validate checks a genesis state for consistency.
func (gs GenesisState) Validate(ac address.Codec) error {
	if err := gs.Params.Validate(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	if err := sweep.ValidateGenesis(gs.Parked); err != nil {
		return err
	}
	owners := map[string]bool{}
	for i, p := range gs.Providers {
		if _, err := ac.StringToBytes(p.Owner); err != nil {
			return fmt.Errorf("providers[%d]: owner: %w", i, err)
		}
		if owners[p.Owner] {
			return fmt.Errorf("providers[%d]: duplicate owner %s", i, p.Owner)
		}
		owners[p.Owner] = true
		if err := p.Description().Validate(); err != nil {
			return fmt.Errorf("providers[%d] (%s): %w", i, p.Owner, err)
		}
		if err := p.Bond.Validate(); err != nil || p.Bond.Denom != gs.Params.MinBond.Denom {
			return fmt.Errorf("providers[%d] (%s): bond %s must be in %s", i, p.Owner, p.Bond, gs.Params.MinBond.Denom)
		}
	}
	ids := map[uint64]bool{}
	for i, e := range gs.UnbondingEntries {
		if _, err := ac.StringToBytes(e.Owner); err != nil {
			return fmt.Errorf("unbonding_entries[%d]: owner: %w", i, err)
		}
		if e.Id == 0 || e.Id >= gs.NextUnbondingId {
			return fmt.Errorf("unbonding_entries[%d]: id %d outside [1, next_unbonding_id=%d)", i, e.Id, gs.NextUnbondingId)
		}
		if ids[e.Id] {
			return fmt.Errorf("unbonding_entries[%d]: duplicate id %d", i, e.Id)
		}
		ids[e.Id] = true
		if err := e.Amount.Validate(); err != nil || !e.Amount.IsPositive() || e.Amount.Denom != gs.Params.MinBond.Denom {
			return fmt.Errorf("unbonding_entries[%d]: amount %s must be positive %s", i, e.Amount, gs.Params.MinBond.Denom)
		}
	}
	if gs.NextUnbondingId == 0 {
		return fmt.Errorf("next_unbonding_id must be at least 1")
	}
	return nil
}

// Description returns the declared part of a provider record.
func (p Provider) Description() Description {
	return Description{
		HostURI: p.HostUri, TLSCertSHA256: p.TlsCertSha256, Attributes: p.Attributes,
		GPUs: p.Gpus, Capacity: p.Capacity, Info: p.Info,
	}
}

// Description returns the declared part of a registration.
func (m *MsgRegisterProvider) Description() Description {
	return Description{
		HostURI: m.HostUri, TLSCertSHA256: m.TlsCertSha256, Attributes: m.Attributes,
		GPUs: m.Gpus, Capacity: m.Capacity, Info: m.Info,
	}
}

// Description returns the declared part of an update.
func (m *MsgUpdateProvider) Description() Description {
	return Description{
		HostURI: m.HostUri, TLSCertSHA256: m.TlsCertSha256, Attributes: m.Attributes,
		GPUs: m.Gpus, Capacity: m.Capacity, Info: m.Info,
	}
}
