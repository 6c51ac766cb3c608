package types_test

import (
	"strings"
	"testing"

	sdkmath "cosmossdk.io/math"

	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"

	"github.com/gpunet/gpunet/x/escrow/types"
)

// TestGenesisAccountDseqs: an account's dseq is between 1 and MaxDseq,
// the largest a dseq-first store key can hold apart from an owner-first
// one.
func TestGenesisAccountDseqs(t *testing.T) {
	ac := addresscodec.NewBech32Codec("gpunet")
	owner, err := ac.BytesToString(make([]byte, 20))
	if err != nil {
		t.Fatal(err)
	}
	genesis := func(dseq uint64) types.GenesisState {
		gs := *types.DefaultGenesis()
		gs.Accounts = []types.Account{{
			Id: types.AccountID{Owner: owner, Dseq: dseq}, Denom: "ugpn",
			Balance: sdkmath.NewInt(5), Deposited: sdkmath.NewInt(5), Transferred: sdkmath.ZeroInt(),
			TotalRate: sdkmath.LegacyZeroDec(),
		}}
		return gs
	}
	for _, dseq := range []uint64{1, 20_000_001, types.MaxDseq} {
		if err := genesis(dseq).Validate(ac); err != nil {
			t.Errorf("dseq %d refused: %v", dseq, err)
		}
	}
	for _, dseq := range []uint64{0, types.MaxDseq + 1, 1<<64 - 1} {
		if err := genesis(dseq).Validate(ac); err == nil || !strings.Contains(err.Error(), "dseq must be in") {
			t.Errorf("dseq %d: Validate = %v, want it refused", dseq, err)
		}
	}
}
