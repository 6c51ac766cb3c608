package types

import (
	"fmt"
	"github.com/gpunet/gpunet/x/internal/sweep"

	"cosmossdk.io/core/address"
)

// DefaultGenesis has no accounts and default params.
func DefaultGenesis() *GenesisState { return &GenesisState{Params: DefaultParams()} }

// Validate checks that accounts and payments are well formed and that every
// payment belongs to an account.
func (gs GenesisState) Validate(ac address.Codec) error {
	if err := gs.Params.Validate(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	if err := sweep.ValidateGenesis(gs.Parked); err != nil {
		return err
	}
	accounts := map[string]bool{}
	for i, a := range gs.Accounts {
		if _, err := ac.StringToBytes(a.Id.Owner); err != nil {
			return fmt.Errorf("accounts[%d]: owner: %w", i, err)
		}
		if accounts[a.Id.Name()] {
			return fmt.Errorf("accounts[%d]: duplicate %s", i, a.Id.Name())
		}
		accounts[a.Id.Name()] = true
		if a.Id.Dseq == 0 || a.Id.Dseq > MaxDseq {
			return fmt.Errorf("accounts[%d] (%s): dseq must be in [1, %d]", i, a.Id.Name(), uint64(MaxDseq))
		}
		if a.Denom == "" || a.Balance.IsNil() || a.Balance.IsNegative() || a.Deposited.IsNil() || a.Transferred.IsNil() {
			return fmt.Errorf("accounts[%d] (%s): denom and amounts must be set and not negative", i, a.Id.Name())
		}
		if !a.Balance.Add(a.Transferred).Equal(a.Deposited) {
			return fmt.Errorf("accounts[%d] (%s): balance %s + transferred %s != deposited %s", i, a.Id.Name(), a.Balance, a.Transferred, a.Deposited)
		}
	}
	payments := map[string]bool{}
	for i, p := range gs.Payments {
		if !accounts[p.Id.Account.Name()] {
			return fmt.Errorf("payments[%d]: account %s does not exist", i, p.Id.Account.Name())
		}
		if _, err := ac.StringToBytes(p.Id.Provider); err != nil {
			return fmt.Errorf("payments[%d]: provider: %w", i, err)
		}
		if payments[p.Id.Name()] {
			return fmt.Errorf("payments[%d]: duplicate %s", i, p.Id.Name())
		}
		payments[p.Id.Name()] = true
		if p.Rate.IsNil() || !p.Rate.IsPositive() || p.Accrued.IsNil() || p.Withdrawn.IsNil() || p.Withdrawn.GT(p.Accrued) || p.Remainder.IsNil() || p.Remainder.IsNegative() {
			return fmt.Errorf("payments[%d] (%s): rate must be positive and withdrawn ≤ accrued", i, p.Id.Name())
		}
	}
	denoms := map[string]string{}
	for _, a := range gs.Accounts {
		denoms[a.Id.Name()] = a.Denom
	}
	topups := map[string]bool{}
	for i, t := range gs.AutoTopups {
		name := t.Id.Name()
		switch {
		case !accounts[name]:
			return fmt.Errorf("auto_topups[%d]: account %s does not exist", i, name)
		case topups[name]:
			return fmt.Errorf("auto_topups[%d]: duplicate %s", i, name)
		case t.Amount.Denom != denoms[name] || t.Limit.Denom != denoms[name] || !t.Amount.IsValid() || !t.Amount.IsPositive() || !t.Limit.IsValid() || t.Limit.Amount.LT(t.Amount.Amount):
			return fmt.Errorf("auto_topups[%d] (%s): amount and limit must be positive %s, limit at least amount", i, name, denoms[name])
		case t.Spent.IsNil() || t.Spent.IsNegative() || t.Spent.GT(t.Limit.Amount):
			return fmt.Errorf("auto_topups[%d] (%s): spent must be within [0, limit]", i, name)
		}
		if _, err := ac.StringToBytes(t.Payer); err != nil {
			return fmt.Errorf("auto_topups[%d] (%s): payer: %w", i, name, err)
		}
		topups[name] = true
	}
	return nil
}
