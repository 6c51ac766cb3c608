package types

import (
	"fmt"
	"github.com/gpunet/gpunet/x/internal/sweep"

	"cosmossdk.io/core/address"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
)

// Validate checks a genesis state on its own: params, that every order
// belongs to a deployment and every bid and lease to an order, that each
// object appears once and is in a state that can be exported, and that the
// sequences are ahead of what they numbered. A node refuses to start from a
// genesis that fails it, rather than carrying broken records into EndBlock.
func (gs GenesisState) Validate(ac address.Codec) error {
	if err := gs.Params.Validate(); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	if err := sweep.ValidateGenesis(gs.Parked); err != nil {
		return err
	}
	if gs.NextDseq == 0 || gs.NextBidSeq == 0 {
		return fmt.Errorf("next_dseq and next_bid_seq must be at least 1")
	}
	groups := map[string]uint32{}
	for i, d := range gs.Deployments {
		name := fmt.Sprintf("%s/%d", d.Owner, d.Dseq)
		if _, err := ac.StringToBytes(d.Owner); err != nil {
			return fmt.Errorf("deployments[%d]: owner: %w", i, err)
		}
		if _, dup := groups[name]; dup {
			return fmt.Errorf("deployments[%d]: duplicate %s", i, name)
		}
		if d.Dseq == 0 || d.Dseq >= gs.NextDseq {
			return fmt.Errorf("deployments[%d] (%s): dseq must be in [1, next_dseq %d)", i, name, gs.NextDseq)
		}
		if d.Dseq > escrowtypes.MaxDseq {
			return fmt.Errorf("deployments[%d] (%s): dseq above %d, the largest the store keys hold", i, name, uint64(escrowtypes.MaxDseq))
		}
		if d.State != DEPLOYMENT_STATE_ACTIVE {
			return fmt.Errorf("deployments[%d] (%s): state %s; only active deployments are kept", i, name, d.State)
		}
		if d.Groups == 0 || d.Groups > gs.Params.MaxGroupsPerDeployment {
			return fmt.Errorf("deployments[%d] (%s): %d groups, want 1 to %d", i, name, d.Groups, gs.Params.MaxGroupsPerDeployment)
		}
		if !d.Deposit.IsValid() {
			return fmt.Errorf("deployments[%d] (%s): deposit %s is not a valid coin", i, name, d.Deposit)
		}
		groups[name] = d.Groups
	}
	orders := map[string]OrderState{}
	for i, o := range gs.Orders {
		name := o.Id.Name()
		n, ok := groups[fmt.Sprintf("%s/%d", o.Id.Owner, o.Id.Dseq)]
		if !ok {
			return fmt.Errorf("orders[%d] (%s): its deployment does not exist", i, name)
		}
		if o.Id.Gseq == 0 || o.Id.Gseq > n || o.Id.Oseq == 0 {
			return fmt.Errorf("orders[%d] (%s): gseq must be in [1, %d] and oseq at least 1", i, name, n)
		}
		if _, dup := orders[name]; dup {
			return fmt.Errorf("orders[%d]: duplicate %s", i, name)
		}
		if o.State != ORDER_STATE_OPEN && o.State != ORDER_STATE_MATCHED {
			return fmt.Errorf("orders[%d] (%s): state %s; only open and matched orders are kept", i, name, o.State)
		}
		if o.State == ORDER_STATE_OPEN && o.BidClosesAt > o.ExpiresAt {
			return fmt.Errorf("orders[%d] (%s): bid_closes_at %d is after expires_at %d", i, name, o.BidClosesAt, o.ExpiresAt)
		}
		orders[name] = o.State
	}
	bids := map[string]bool{}
	for i, b := range gs.Bids {
		name := b.Id.Name()
		if orders[b.Id.Order.Name()] != ORDER_STATE_OPEN {
			return fmt.Errorf("bids[%d] (%s): its order is not open", i, name)
		}
		if _, err := ac.StringToBytes(b.Id.Provider); err != nil {
			return fmt.Errorf("bids[%d] (%s): provider: %w", i, name, err)
		}
		if bids[name] {
			return fmt.Errorf("bids[%d]: duplicate %s", i, name)
		}
		if b.Seq >= gs.NextBidSeq {
			return fmt.Errorf("bids[%d] (%s): seq %d is not below next_bid_seq %d", i, name, b.Seq, gs.NextBidSeq)
		}
		if !b.Price.IsValid() || !b.Price.IsPositive() || !b.Deposit.IsValid() {
			return fmt.Errorf("bids[%d] (%s): price %s and deposit %s must be valid, the price positive", i, name, b.Price, b.Deposit)
		}
		bids[name] = true
	}
	leased := map[string]bool{}
	active := map[string]bool{}
	for i, l := range gs.Leases {
		name := l.Id.Name()
		order := l.Id.Order.Name()
		if orders[order] != ORDER_STATE_MATCHED {
			return fmt.Errorf("leases[%d] (%s): its order is not matched", i, name)
		}
		if _, err := ac.StringToBytes(l.Id.Provider); err != nil {
			return fmt.Errorf("leases[%d] (%s): provider: %w", i, name, err)
		}
		if leased[order] {
			return fmt.Errorf("leases[%d] (%s): order %s has another lease", i, name, order)
		}
		if l.State != LEASE_STATE_PENDING && l.State != LEASE_STATE_ACTIVE {
			return fmt.Errorf("leases[%d] (%s): state %s; only pending and active leases are kept", i, name, l.State)
		}
		if !l.Price.IsValid() || !l.Price.IsPositive() || !l.BidDeposit.IsValid() {
			return fmt.Errorf("leases[%d] (%s): price %s and bid deposit %s must be valid, the price positive", i, name, l.Price, l.BidDeposit)
		}
		leased[order] = true
		if l.State == LEASE_STATE_ACTIVE {
			active[name] = true
		}
	}
	for i, o := range gs.Orders {
		if o.State == ORDER_STATE_MATCHED && !leased[o.Id.Name()] {
			return fmt.Errorf("orders[%d] (%s): matched but has no lease", i, o.Id.Name())
		}
	}
	disputed := map[string]bool{}
	for i, d := range gs.DisputableCloses {
		name := d.Lease.Name()
		if _, err := ac.StringToBytes(d.Lease.Order.Owner); err != nil {
			return fmt.Errorf("disputable_closes[%d] (%s): owner: %w", i, name, err)
		}
		if _, err := ac.StringToBytes(d.Lease.Provider); err != nil {
			return fmt.Errorf("disputable_closes[%d] (%s): provider: %w", i, name, err)
		}
		if disputed[name] {
			return fmt.Errorf("disputable_closes[%d] (%s): duplicate", i, name)
		}
		disputed[name] = true
		if len(d.ManifestHash) != 32 || !d.Fee.IsValid() || d.Fee.Denom != gs.Params.BidMinDeposit.Denom || d.DisputeUntil < d.ClosedAt {
			return fmt.Errorf("disputable_closes[%d] (%s): needs a 32-byte manifest hash, a valid fee in %s and dispute_until >= closed_at", i, name, gs.Params.BidMinDeposit.Denom)
		}
	}
	attested := map[string]bool{}
	for i, a := range gs.Attestations {
		if _, err := ac.StringToBytes(a.Provider); err != nil {
			return fmt.Errorf("attestations[%d]: provider: %w", i, err)
		}
		if attested[a.Provider] {
			return fmt.Errorf("attestations[%d] (%s): duplicate", i, a.Provider)
		}
		attested[a.Provider] = true
	}
	down := map[string]bool{}
	for i, d := range gs.DownLeases {
		name := d.Lease.Name()
		if !active[name] {
			return fmt.Errorf("down_leases[%d] (%s): not an active lease", i, name)
		}
		if down[name] {
			return fmt.Errorf("down_leases[%d] (%s): duplicate", i, name)
		}
		down[name] = true
		if d.Down.Count == 0 {
			return fmt.Errorf("down_leases[%d] (%s): count must be at least 1", i, name)
		}
	}
	return nil
}
