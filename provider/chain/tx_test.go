package chain

import (
	"bytes"
	"context"
	"testing"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/client/tx"
	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/gpunet/gpunet/internal/clientcodec"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

func newKey(t *testing.T) (keyring.Keyring, sdk.AccAddress, cryptotypes.PubKey) {
	t.Helper()
	cdc, _ := keyCodec()
	kr := keyring.NewInMemory(cdc)
	rec, _, err := kr.NewMnemonic("provider", keyring.English, sdk.FullFundraiserPath, keyring.DefaultBIP39Passphrase, hd.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := rec.GetAddress()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rec.GetPubKey()
	if err != nil {
		t.Fatal(err)
	}
	return kr, addr, pub
}

// The daemon builds its transactions without the SDK's client packages. A
// transaction it signs must be byte for byte the one the SDK's own tx
// factory signs from the same key, account, sequence, gas and fee (secp256k1
// signatures are deterministic), and so must its simulation form: the node
// decodes and verifies them with that machinery.
func TestBuiltTxIsTheSDKs(t *testing.T) {
	kr, addr, pub := newKey(t)
	enc, err := clientcodec.New()
	if err != nil {
		t.Fatal(err)
	}
	msgs := []sdk.Msg{
		&markettypes.MsgCreateBid{Provider: addr.String(), Order: markettypes.OrderID{Owner: addr.String(), Dseq: 7, Gseq: 1, Oseq: 1},
			Price: sdk.NewInt64DecCoin("ugpn", 900), Deposit: sdk.NewInt64Coin("ugpn", 5_000_000)},
		&banktypes.MsgSend{FromAddress: addr.String(), ToAddress: addr.String(), Amount: sdk.NewCoins(sdk.NewInt64Coin("ugpn", 1))},
	}
	fees := sdk.NewCoins(sdk.NewCoin("ugpn", math.NewInt(1234)))
	f := tx.Factory{}.WithChainID("gpunet-1").WithKeybase(kr).WithTxConfig(enc.TxConfig).
		WithAccountNumber(42).WithSequence(17).WithSignMode(signing.SignMode_SIGN_MODE_DIRECT).
		WithGas(123_456).WithFees(fees.String())
	p := txParams{chainID: "gpunet-1", accNum: 42, seq: 17, gas: 123_456, fee: fees, pub: pub, keyName: "provider", key: kr}

	txb, err := f.BuildUnsignedTx(msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Sign(context.Background(), f, "provider", txb, true); err != nil {
		t.Fatal(err)
	}
	want, err := enc.TxConfig.TxEncoder()(txb.GetTx())
	if err != nil {
		t.Fatal(err)
	}
	got, err := buildTx(msgs, p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("signed tx differs from the SDK's:\n got %x\nwant %x", got, want)
	}

	// The simulation carries the signer's real public key (the SDK's
	// factory does so when it simulates before it executes).
	wantSim, err := f.WithGas(0).WithFees("").WithSimulateAndExecute(true).WithFromName("provider").BuildSimTx(msgs...)
	if err != nil {
		t.Fatal(err)
	}
	p.gas, p.fee, p.key = 0, nil, nil
	gotSim, err := buildTx(msgs, p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotSim, wantSim) {
		t.Fatalf("simulation tx differs from the SDK's:\n got %x\nwant %x", gotSim, wantSim)
	}
}

// The signature covers the chain ID and the account number: the same
// transaction replayed on another chain, or claimed for another account,
// does not verify.
func TestBuiltTxSignatureIsBoundToChainAndAccount(t *testing.T) {
	kr, addr, pub := newKey(t)
	msgs := []sdk.Msg{&markettypes.MsgCloseLease{Sender: addr.String()}}
	bz, err := buildTx(msgs, txParams{chainID: "gpunet-1", accNum: 42, seq: 3, gas: 100_000, pub: pub, keyName: "provider", key: kr})
	if err != nil {
		t.Fatal(err)
	}
	var raw txtypes.TxRaw
	if err := raw.Unmarshal(bz); err != nil {
		t.Fatal(err)
	}
	verifies := func(chainID string, accNum uint64) bool {
		doc, err := (&txtypes.SignDoc{BodyBytes: raw.BodyBytes, AuthInfoBytes: raw.AuthInfoBytes, ChainId: chainID, AccountNumber: accNum}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return pub.VerifySignature(doc, raw.Signatures[0])
	}
	if !verifies("gpunet-1", 42) {
		t.Fatal("the signature does not verify for the chain and account it was made for")
	}
	if verifies("gpunet-2", 42) || verifies("gpunet-1", 43) {
		t.Fatal("the signature verifies for another chain or account")
	}
	if _, err := buildTx(msgs, txParams{chainID: "gpunet-1", keyName: "provider", key: kr}); err == nil {
		t.Fatal("a transaction without the signer's public key was built")
	}
	if _, err := buildTx(nil, txParams{chainID: "gpunet-1", pub: pub}); err == nil {
		t.Fatal("a transaction without messages was built")
	}
}
