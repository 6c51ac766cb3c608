package chain

import (
	"fmt"

	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
)

// txKey is what signing a transaction needs of the provider's key.
type txKey interface {
	Sign(uid string, msg []byte, signMode signing.SignMode) ([]byte, cryptotypes.PubKey, error)
}

// txParams are the fields of one transaction besides its messages.
type txParams struct {
	chainID     string
	accNum, seq uint64
	gas         uint64
	fee         sdk.Coins
	pub         cryptotypes.PubKey
	keyName     string
	key         txKey // nil: a simulation transaction, with an empty signature
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
