package app_test

import (
	"crypto/sha256"
	"math/rand"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/testutil/apptest"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// TestDeploymentsInConsecutiveBlocksPassCheckTx: CheckTx and simulation
// run on the last committed block's state and height. A tenant whose
// deployment landed in that block sends another: both must accept it
// (its dseq is counted from the next block, not from one already used),
// and the block that runs it must too.
func TestDeploymentsInConsecutiveBlocksPassCheckTx(t *testing.T) {
	c := apptest.New(t, 1)
	r := rand.New(rand.NewSource(1))
	hash := sha256.Sum256([]byte("manifest"))
	deployment := func() sdk.Msg {
		return &markettypes.MsgCreateDeployment{Owner: c.Accounts[0].String(), Groups: []markettypes.GroupSpec{benchGroup()},
			ManifestHash: hash[:], Deposit: sdk.NewInt64Coin("ugpn", 5_000_000)}
	}
	first := signTx(t, c, r, 0, 0, deployment())
	if res := c.DeliverTxs(time.Second, [][]byte{first}); res[0].Code != 0 {
		t.Fatalf("first deployment: %s", res[0].Log)
	}
	second := signTx(t, c, r, 0, 1, deployment())
	if _, _, err := c.App.Simulate(second); err != nil {
		t.Errorf("simulating a deployment right after one in the last block: %v", err)
	}
	res, err := c.App.CheckTx(&abci.RequestCheckTx{Tx: second, Type: abci.CheckTxType_New})
	if err != nil || res.Code != 0 {
		t.Fatalf("CheckTx of a deployment right after one in the last block: %v %s", err, res.GetLog())
	}
	if res := c.DeliverTxs(time.Second, [][]byte{second}); res[0].Code != 0 {
		t.Fatalf("second deployment: %s", res[0].Log)
	}
}
