package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	sdkmath "cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
	authsigning "github.com/cosmos/cosmos-sdk/x/auth/signing"
	authtx "github.com/cosmos/cosmos-sdk/x/auth/tx"

	"github.com/gpunet/gpunet/tenant"
)

// maxBody bounds what the page may send the backend.
const maxBody = 1 << 20

// BuildRequest asks for an unsigned transaction: the signer (its address
// and the public key its wallet reports) and the messages, as proto JSON
// with their "@type".
type BuildRequest struct {
	Address string            `json:"address"`
	PubKey  string            `json:"pubkey"` // base64 compressed secp256k1
	Msgs    []json.RawMessage `json:"msgs"`
	Memo    string            `json:"memo"`
	// Amino asks for a legacy amino JSON sign doc, for a wallet that
	// signs only those (a Ledger): it shows the messages readably.
	Amino bool `json:"amino,omitempty"`
}

// Unsigned is a transaction for the wallet to sign directly: the sign doc
// is (body_bytes, auth_info_bytes, chain_id, account_number). Gas comes
// from a simulation of exactly these messages; the fee is the console's
// gas price times it.
type Unsigned struct {
	BodyBytes     []byte `json:"body_bytes"`
	AuthInfoBytes []byte `json:"auth_info_bytes"`
	ChainID       string `json:"chain_id"`
	AccountNumber uint64 `json:"account_number,string"`
	Sequence      uint64 `json:"sequence,string"`
	Gas           uint64 `json:"gas,string"`
	Fee           string `json:"fee"`
	// AminoSignDoc is the legacy amino JSON sign doc (with Amino): the
	// bytes signed are its keys sorted, no spaces.
	AminoSignDoc json.RawMessage `json:"amino_sign_doc,omitempty"`
}

// SignedTx is an Unsigned's bytes and the wallet's signature over them.
type SignedTx struct {
	BodyBytes     []byte `json:"body_bytes"`
	AuthInfoBytes []byte `json:"auth_info_bytes"`
	Signature     []byte `json:"signature"`
}

// TxResult is a transaction as its block has it.
type TxResult struct {
	TxHash string          `json:"txhash"`
	Height int64           `json:"height"`
	Code   uint32          `json:"code"`
	RawLog string          `json:"raw_log,omitempty"`
	Events json.RawMessage `json:"events,omitempty"`
}

func (s *Server) buildTx(w http.ResponseWriter, r *http.Request) {
	var req BuildRequest
	if !readBody(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	u, kind, err := s.build(ctx, req)
	if err != nil {
		code := http.StatusBadRequest
		if kind == "node" {
			code = http.StatusBadGateway
		}
		writeError(w, code, kind, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// build makes the unsigned transaction, or says what is wrong with the
// request (kind request), what the chain refused in simulation (kind
// tx_rejected) or that the node is away (kind node).
func (s *Server) build(ctx context.Context, req BuildRequest) (Unsigned, string, error) {
	cc := s.opts.Client
	addr, err := sdk.AccAddressFromBech32(req.Address)
	if err != nil {
		return Unsigned{}, "request", fmt.Errorf("address %q: %v", req.Address, err)
	}
	raw, err := base64.StdEncoding.DecodeString(req.PubKey)
	if err != nil || len(raw) != secp256k1.PubKeySize {
		return Unsigned{}, "request", fmt.Errorf("pubkey: want the wallet's 33-byte compressed secp256k1 key in base64")
	}
	pk := &secp256k1.PubKey{Key: raw}
	if !bytes.Equal(pk.Address(), addr) {
		return Unsigned{}, "request", fmt.Errorf("pubkey is not the key of %s", req.Address)
	}
	if len(req.Msgs) == 0 || len(req.Msgs) > 32 {
		return Unsigned{}, "request", fmt.Errorf("%d messages: give 1 to 32", len(req.Msgs))
	}
	msgs := make([]sdk.Msg, len(req.Msgs))
	for i, m := range req.Msgs {
		if err := cc.Codec.UnmarshalInterfaceJSON(m, &msgs[i]); err != nil {
			return Unsigned{}, "request", fmt.Errorf("msgs[%d]: %v", i, err)
		}
		signers, _, err := cc.Codec.GetMsgV1Signers(msgs[i])
		if err != nil {
			return Unsigned{}, "request", fmt.Errorf("msgs[%d]: %v", i, err)
		}
		for _, sg := range signers {
			if !bytes.Equal(sg, addr) {
				return Unsigned{}, "request", fmt.Errorf("msgs[%d] must be signed by %s, not %s", i, sdk.AccAddress(sg), req.Address)
			}
		}
	}
	num, seq, err := cc.AccountRetriever.GetAccountNumberSequence(cc, addr)
	if err != nil {
		return Unsigned{}, "request", fmt.Errorf("account %s is not on chain yet (it has never received tokens): %v", req.Address, err)
	}
	mode := signing.SignMode_SIGN_MODE_DIRECT
	if req.Amino {
		mode = signing.SignMode_SIGN_MODE_LEGACY_AMINO_JSON
	}
	var built sdk.Tx
	encode := func(gas uint64, fee sdk.Coins) ([]byte, error) {
		b := cc.TxConfig.NewTxBuilder()
		if err := b.SetMsgs(msgs...); err != nil {
			return nil, err
		}
		b.SetMemo(req.Memo)
		b.SetGasLimit(gas)
		b.SetFeeAmount(fee)
		if err := b.SetSignatures(signing.SignatureV2{PubKey: pk, Data: &signing.SingleSignatureData{SignMode: mode}, Sequence: seq}); err != nil {
			return nil, err
		}
		built = b.GetTx()
		return cc.TxConfig.TxEncoder()(built)
	}
	simBz, err := encode(0, nil)
	if err != nil {
		return Unsigned{}, "request", err
	}
	sim, err := txtypes.NewServiceClient(cc).Simulate(ctx, &txtypes.SimulateRequest{TxBytes: simBz})
	if err != nil {
		return Unsigned{}, "tx_rejected", fmt.Errorf("the chain refuses this transaction: %v", err)
	}
	// A simulation carries no fee, so it skips the fee's transfer, which
	// a small transaction's adjustment does not cover.
	used := sim.GasInfo.GasUsed
	gas := max(uint64(math.Ceil(float64(used)*s.opts.GasAdjustment)), used+tenant.FeeTransferGas)
	feeAmt := s.opts.GasPrice.Amount.MulInt(sdkmath.NewIntFromUint64(gas)).Ceil().TruncateInt()
	fee := sdk.NewCoins(sdk.NewCoin(s.opts.GasPrice.Denom, feeAmt))
	bz, err := encode(gas, fee)
	if err != nil {
		return Unsigned{}, "request", err
	}
	var txRaw txtypes.TxRaw
	if err := txRaw.Unmarshal(bz); err != nil {
		return Unsigned{}, "request", err
	}
	u := Unsigned{BodyBytes: txRaw.BodyBytes, AuthInfoBytes: txRaw.AuthInfoBytes, ChainID: cc.ChainID, AccountNumber: num, Sequence: seq, Gas: gas, Fee: fee.String()}
	if req.Amino {
		doc, err := authsigning.GetSignBytesAdapter(ctx, cc.TxConfig.SignModeHandler(), mode,
			authsigning.SignerData{Address: req.Address, ChainID: cc.ChainID, AccountNumber: num, Sequence: seq, PubKey: pk}, built)
		if err != nil {
			return Unsigned{}, "request", fmt.Errorf("amino sign doc: %v", err)
		}
		u.AminoSignDoc = doc
	}
	return u, "", nil
}

func (s *Server) broadcastTx(w http.ResponseWriter, r *http.Request) {
	var req SignedTx
	if !readBody(w, r, &req) {
		return
	}
	if len(req.BodyBytes) == 0 || len(req.AuthInfoBytes) == 0 || len(req.Signature) == 0 {
		writeError(w, http.StatusBadRequest, "request", "body_bytes, auth_info_bytes and signature are all required")
		return
	}
	bz, err := (&txtypes.TxRaw{BodyBytes: req.BodyBytes, AuthInfoBytes: req.AuthInfoBytes, Signatures: [][]byte{req.Signature}}).Marshal()
	if err != nil {
		writeError(w, http.StatusBadRequest, "request", err.Error())
		return
	}
	cc := s.opts.Client.WithBroadcastMode("sync")
	res, err := cc.BroadcastTx(bz)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	if res.Code != 0 {
		writeError(w, http.StatusBadRequest, "tx_rejected", fmt.Sprintf("the chain refused the transaction: code %d (%s): %s", res.Code, res.Codespace, res.RawLog))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 45*time.Second)
	defer cancel()
	for {
		out, err := authtx.QueryTx(s.opts.Client, res.TxHash)
		if err == nil {
			events, _ := json.Marshal(out.Events)
			result := TxResult{TxHash: out.TxHash, Height: out.Height, Code: out.Code, RawLog: out.RawLog, Events: events}
			if out.Code != 0 {
				writeJSON(w, http.StatusBadRequest, struct {
					apiError
					TxResult
				}{apiError{"tx_failed", fmt.Sprintf("transaction %s failed in block %d: code %d (%s): %s", out.TxHash, out.Height, out.Code, out.Codespace, out.RawLog)}, result})
				return
			}
			writeJSON(w, http.StatusOK, result)
			return
		}
		select {
		case <-ctx.Done():
			writeError(w, http.StatusGatewayTimeout, "node", "transaction "+res.TxHash+" was accepted but is not in a block yet; look for it later")
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// readBody decodes the request's JSON body (at most maxBody bytes, no
// unknown fields) into v, answering 400 when it cannot.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "request", fmt.Sprintf("request body: %v", err))
		return false
	}
	return true
}
