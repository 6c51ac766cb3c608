// Package apptest drives a whole gpunet App in process: a genesis with one
// validator and funded accounts, then real FinalizeBlock/Commit cycles. It is
// for app-level tests that need every module wired as in production without
// starting a node.
package apptest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cryptoenc "github.com/cometbft/cometbft/crypto/encoding"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmttypes "github.com/cometbft/cometbft/types"
	dbm "github.com/cosmos/cosmos-db"

	"cosmossdk.io/core/header"
	"cosmossdk.io/log/v2"
	sdkmath "cosmossdk.io/math"

	"github.com/cosmos/cosmos-sdk/baseapp"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	servertypes "github.com/cosmos/cosmos-sdk/server/types"
	simtestutil "github.com/cosmos/cosmos-sdk/testutil/sims"
	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/gpunet/gpunet/app"
)

// ChainID is the chain id of in-process test chains.
const ChainID = "gpunet-apptest-1"

// Chain is an App plus the block clock that drives it.
type Chain struct {
	App      *app.App
	Accounts []sdk.AccAddress
	// Keys are the accounts' private keys, for tests that sign real txs.
	Keys   []*secp256k1.PrivKey
	Height int64
	Time   time.Time
	// AppHash is the app hash of the last finalized block.
	AppHash []byte

	t      testing.TB
	valSet *cmttypes.ValidatorSet
}

// ConsensusParams are the consensus params test chains start with.
func ConsensusParams() *cmtproto.ConsensusParams {
	p := *simtestutil.DefaultConsensusParams
	p.Authority = nil // the default names a cosmos1… address; gpunet uses per-keeper authorities
	return &p
}

// New starts a chain whose genesis funds n accounts with 1,000,000 GPN each
// and has one validator, then commits the first block. Keys are random.
func New(t testing.TB, n int) *Chain {
	t.Helper()
	valSet, err := simtestutil.CreateRandomValidatorSet()
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]*secp256k1.PrivKey, n)
	for i := range keys {
		keys[i] = secp256k1.GenPrivKey()
	}
	return newChain(t, keys, valSet)
}

// NewSeeded is New with the accounts' and the validator's keys derived from
// seed: two chains of the same seed given the same blocks have the same app
// hashes, which is what determinism checks compare.
func NewSeeded(t testing.TB, n int, seed int64) *Chain {
	t.Helper()
	keys := make([]*secp256k1.PrivKey, n)
	for i := range keys {
		keys[i] = secp256k1.GenPrivKeyFromSecret(fmt.Appendf(nil, "gpunet-apptest/%d/account/%d", seed, i))
	}
	val := ed25519.GenPrivKeyFromSecret(fmt.Appendf(nil, "gpunet-apptest/%d/validator", seed))
	valSet := cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(val.PubKey(), 1)})
	return newChain(t, keys, valSet)
}

func newChain(t testing.TB, keys []*secp256k1.PrivKey, valSet *cmttypes.ValidatorSet) *Chain {
	t.Helper()
	a := newApp(t)
	c := &Chain{App: a, t: t, valSet: valSet, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}

	var (
		genAccs  []authtypes.GenesisAccount
		balances []banktypes.Balance
	)
	for i, key := range keys {
		addr := sdk.AccAddress(key.PubKey().Address())
		c.Accounts = append(c.Accounts, addr)
		c.Keys = append(c.Keys, key)
		genAccs = append(genAccs, authtypes.NewBaseAccount(addr, nil, uint64(i), 0))
		balances = append(balances, banktypes.Balance{
			Address: addr.String(),
			Coins:   sdk.NewCoins(sdk.NewCoin(app.BondDenom, sdkmath.NewInt(1_000_000_000_000))),
		})
	}
	genesis, err := simtestutil.GenesisStateWithValSet(a.AppCodec(), a.DefaultGenesis(), valSet, genAccs, balances...)
	if err != nil {
		t.Fatal(err)
	}
	stateBytes, err := json.Marshal(genesis)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.InitChain(&abci.RequestInitChain{
		ChainId:         ChainID,
		Time:            c.Time,
		ConsensusParams: ConsensusParams(),
		AppStateBytes:   stateBytes,
		InitialHeight:   1,
	}); err != nil {
		t.Fatal(err)
	}
	c.NextBlock(time.Second)
	return c
}

// Import starts a fresh chain from an export, the way a node started from an
// exported genesis file does; InitChain is run but no block yet.
func Import(t testing.TB, exported servertypes.ExportedApp, at time.Time) *Chain {
	t.Helper()
	c, err := tryImport(t, exported, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TryImport is Import that returns InitChain's error (a genesis the app
// refuses) instead of failing the test.
func TryImport(t testing.TB, exported servertypes.ExportedApp, at time.Time) error {
	t.Helper()
	_, err := tryImport(t, exported, at)
	return err
}

func tryImport(t testing.TB, exported servertypes.ExportedApp, at time.Time) (*Chain, error) {
	t.Helper()
	a := newApp(t)
	var updates []abci.ValidatorUpdate
	for _, v := range exported.Validators {
		pk, err := cryptoenc.PubKeyToProto(v.PubKey)
		if err != nil {
			return nil, err
		}
		updates = append(updates, abci.ValidatorUpdate{PubKey: pk, Power: v.Power})
	}
	cp := exported.ConsensusParams
	if _, err := a.InitChain(&abci.RequestInitChain{
		ChainId:         ChainID,
		Time:            at,
		Validators:      updates,
		ConsensusParams: &cp,
		AppStateBytes:   exported.AppState,
		InitialHeight:   exported.Height,
	}); err != nil {
		return nil, err
	}
	return &Chain{App: a, t: t, Height: exported.Height - 1, Time: at}, nil
}

func newApp(t testing.TB) *app.App {
	t.Helper()
	a, err := app.New(log.NewNopLogger(), dbm.NewMemDB(), true, simtestutil.NewAppOptionsWithFlagHome(t.TempDir()), baseapp.SetChainID(ChainID))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// NextBlock finalizes and commits one empty block dt after the previous one.
func (c *Chain) NextBlock(dt time.Duration) {
	c.t.Helper()
	c.Height++
	c.Time = c.Time.Add(dt)
	req := &abci.RequestFinalizeBlock{Height: c.Height, Time: c.Time}
	if c.valSet != nil {
		req.NextValidatorsHash = c.valSet.Hash()
	}
	res, err := c.App.FinalizeBlock(req)
	if err != nil {
		c.t.Fatalf("finalize block %d: %v", c.Height, err)
	}
	c.AppHash = res.AppHash
	if _, err := c.App.Commit(); err != nil {
		c.t.Fatalf("commit block %d: %v", c.Height, err)
	}
}

// DeliverTxs finalizes and commits a block dt after the previous one with
// the given encoded transactions and returns their results.
func (c *Chain) DeliverTxs(dt time.Duration, txs [][]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.Height++
	c.Time = c.Time.Add(dt)
	req := &abci.RequestFinalizeBlock{Height: c.Height, Time: c.Time, Txs: txs}
	if c.valSet != nil {
		req.NextValidatorsHash = c.valSet.Hash()
	}
	res, err := c.App.FinalizeBlock(req)
	if err != nil {
		c.t.Fatalf("finalize block %d: %v", c.Height, err)
	}
	c.AppHash = res.AppHash
	if _, err := c.App.Commit(); err != nil {
		c.t.Fatalf("commit block %d: %v", c.Height, err)
	}
	return res.TxResults
}

// Export exports the chain's state as `gpunetd export` does.
func (c *Chain) Export() servertypes.ExportedApp {
	c.t.Helper()
	exp, err := c.App.ExportAppStateAndValidators(false, nil, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return exp
}

// Do runs fn inside the next block, dt after the previous one, as if its
// calls were that block's transactions; then the block's EndBlock runs and
// it is committed. fn's context writes to the block's state.
func (c *Chain) Do(dt time.Duration, fn func(ctx sdk.Context)) {
	c.t.Helper()
	h, tm := c.Height+1, c.Time.Add(dt)
	ctx := c.App.NewNextBlockContext(cmtproto.Header{Height: h, Time: tm, ChainID: ChainID}).
		WithHeaderInfo(header.Info{Height: h, Time: tm, ChainID: ChainID})
	fn(ctx)
	c.NextBlock(dt)
}

// Rebind makes the chain report failures to t: a chain built once and
// shared by several (sub-)benchmarks must fail the one running now.
func (c *Chain) Rebind(t testing.TB) { c.t = t }

// Query returns a read-only context on the last committed state.
func (c *Chain) Query() sdk.Context {
	return c.App.NewContextLegacy(true, cmtproto.Header{Height: c.Height, Time: c.Time, ChainID: ChainID}).
		WithHeaderInfo(header.Info{Height: c.Height, Time: c.Time, ChainID: ChainID})
}
