package chain

import (
	"fmt"

	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
)

// Signer signs bytes with the client's account key; keyring.Keyring is
// one.
type Signer interface {
	Sign(uid string, msg []byte, signMode signing.SignMode) ([]byte, cryptotypes.PubKey, error)
}

// unlocked is the signer for a keyring record. A key the keyring holds
// (any backend: test, file, os, pass, kwallet) is decrypted once, here,
// and then signs from memory: the SDK's keyring decrypts it again for
// every signature, and the file backend's decryption is a PBKDF2 key
// derivation, which made the keyring most of what the daemon allocated
// and a share of its CPU with hundreds of leases (a bid, a lease start and
// a manifest receipt each sign). The decrypted key stays in the daemon's memory for its life; with
// the file backend the daemon holds the passphrase that unlocks it anyway.
//
// A key the keyring cannot hand over is refused: a Ledger signs only
// amino-JSON or textual sign docs, and an offline or multisig record
// cannot sign at all, so a daemon started with one would fail every bid.
func unlocked(rec *keyring.Record, pub cryptotypes.PubKey) (Signer, error) {
	l := rec.GetLocal()
	if l == nil || l.PrivKey == nil {
		return nil, fmt.Errorf("key %q (%s) cannot sign for the daemon: it signs its bids, lease starts and manifest receipts itself (sign mode direct), "+
			"which needs a keyring that holds the private key (not an offline, Ledger or multisig record); import the provider's key into one", rec.Name, rec.GetType())
	}
	priv, ok := l.PrivKey.GetCachedValue().(cryptotypes.PrivKey)
	if !ok {
		return nil, fmt.Errorf("key %q: the keyring's private key cannot be read", rec.Name)
	}
	if !priv.PubKey().Equals(pub) {
		return nil, fmt.Errorf("key %q: its private key does not match its public key %s: the keyring record is damaged", rec.Name, pub)
	}
	return memKey{priv: priv, pub: priv.PubKey()}, nil
}

// memKey signs with a private key in memory; every uid is its one key. It
// prints as redacted, so no log or error can show the key.
type memKey struct {
	priv cryptotypes.PrivKey
	pub  cryptotypes.PubKey // derived once: not a scalar multiplication per signature
}

func (k memKey) Sign(_ string, msg []byte, _ signing.SignMode) ([]byte, cryptotypes.PubKey, error) {
	sig, err := k.priv.Sign(msg)
	if err != nil {
		return nil, nil, err
	}
	return sig, k.pub, nil
}

func (memKey) String() string   { return "memKey(redacted)" }
func (memKey) GoString() string { return "memKey(redacted)" }

// txParams are the fields of one transaction besides its messages.
type txParams struct {
	chainID     string
	accNum, seq uint64
	gas         uint64
	fee         sdk.Coins
	pub         cryptotypes.PubKey
	keyName     string
	key         Signer // nil: a simulation transaction, with an empty signature
}

// buildTx encodes msgs as a transaction signed in SIGN_MODE_DIRECT: the
// body and auth info are marshalled once, the key signs the SignDoc over
// those exact bytes (chain ID and account number included), and the
// transaction is sent as TxRaw with the same bytes, so what the node
// verifies is what was signed. With no key it builds the simulation form:
// the same transaction with an empty signature, which the node's simulate
// accepts without checking it.
func buildTx(msgs []sdk.Msg, p txParams) ([]byte, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("build tx: no messages")
	}
	if p.pub == nil {
		return nil, fmt.Errorf("build tx: no public key for the signer")
	}
	anys := make([]*codectypes.Any, len(msgs))
	for i, m := range msgs {
		a, err := codectypes.NewAnyWithValue(m)
		if err != nil {
			return nil, fmt.Errorf("build tx: message %d (%T): %w", i, m, err)
		}
		anys[i] = a
	}
	body, err := (&txtypes.TxBody{Messages: anys}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("build tx: body: %w", err)
	}
	pub, err := codectypes.NewAnyWithValue(p.pub)
	if err != nil {
		return nil, fmt.Errorf("build tx: public key: %w", err)
	}
	authInfo, err := (&txtypes.AuthInfo{
		SignerInfos: []*txtypes.SignerInfo{{
			PublicKey: pub,
			ModeInfo:  &txtypes.ModeInfo{Sum: &txtypes.ModeInfo_Single_{Single: &txtypes.ModeInfo_Single{Mode: signing.SignMode_SIGN_MODE_DIRECT}}},
			Sequence:  p.seq,
		}},
		Fee: &txtypes.Fee{Amount: p.fee, GasLimit: p.gas},
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("build tx: auth info: %w", err)
	}
	sig := []byte{}
	if p.key != nil {
		doc, err := (&txtypes.SignDoc{BodyBytes: body, AuthInfoBytes: authInfo, ChainId: p.chainID, AccountNumber: p.accNum}).Marshal()
		if err != nil {
			return nil, fmt.Errorf("build tx: sign doc: %w", err)
		}
		if sig, _, err = p.key.Sign(p.keyName, doc, signing.SignMode_SIGN_MODE_DIRECT); err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	return (&txtypes.TxRaw{BodyBytes: body, AuthInfoBytes: authInfo, Signatures: [][]byte{sig}}).Marshal()
}
