package leaseauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

// Session grants let a browser reach a provider. A browser wallet (Keplr,
// Leap) cannot sign the raw bytes of every request, and asking it for
// each one would be unusable; so it signs once, with ADR-036 (its
// "signArbitrary"), a grant: this session key may sign the owner's
// requests to this provider on this chain until then. The page keeps the
// session key (ECDSA P-256, which browsers have built in, not
// extractable) and signs each request with it; the request carries the
// grant in HeaderGrant. A grant lives at most MaxGrantLifetime, names one
// owner and one provider, and the owner can revoke every grant issued
// before a moment (Verifier.RevokedBefore).

// HeaderGrant carries a SignedGrant, as base64 of its JSON.
const HeaderGrant = "X-Gpunet-Grant"

// MaxGrantLifetime bounds a grant from its issue to its expiry.
const MaxGrantLifetime = 24 * time.Hour

// Grant refusals; the API maps them to 401.
var (
	ErrGrantInvalid = errors.New("invalid session grant")
	ErrGrantExpired = errors.New("session grant expired")
	ErrGrantRevoked = errors.New("session grant revoked by its owner")
)

// GrantType names what a grant is, so that no other app's ADR-036
// signature reads as one.
const GrantType = "gpunet/session-grant/v1"

// Grant is what the owner's wallet signs: its JSON, fields in this order,
// no spaces (what encoding/json and JSON.stringify both write).
type Grant struct {
	Type     string `json:"type"`
	ChainID  string `json:"chain_id"`
	Provider string `json:"provider"`
	Owner    string `json:"owner"`
	// SessionKey is the session's public key: an uncompressed P-256 point
	// (65 bytes, 0x04‖X‖Y), base64, as WebCrypto exports it "raw".
	SessionKey string `json:"session_key"`
	// Issued and Expires are unix seconds.
	Issued  int64 `json:"issued"`
	Expires int64 `json:"expires"`
}

// SignedGrant is a grant as the wallet signed it: the exact JSON text
// signed, the owner's public key (compressed secp256k1) and the ADR-036
// signature (64 bytes r‖s), both base64.
type SignedGrant struct {
	Grant     string `json:"grant"`
	PubKey    string `json:"pub_key"`
	Signature string `json:"signature"`
}

// ADR36SignBytes is what a wallet signs for signArbitrary(signer, data):
// the amino JSON of a zero-fee, zero-account sign doc holding one
// MsgSignData, keys sorted, no spaces.
func ADR36SignBytes(signer string, data []byte) []byte {
	doc := map[string]any{
		"account_number": "0", "chain_id": "", "memo": "", "sequence": "0",
		"fee":  map[string]any{"amount": []any{}, "gas": "0"},
		"msgs": []any{map[string]any{"type": "sign/MsgSignData", "value": map[string]any{"data": base64.StdEncoding.EncodeToString(data), "signer": signer}}},
	}
	bz, err := json.Marshal(doc) // maps marshal with sorted keys
	if err != nil {
		panic(err) // strings and maps only
	}
	return bz
}

// checkGrant verifies the grant in header for a request signed by signer
// with the session key sessionB64, and returns the owner's key.
func (v *Verifier) checkGrant(header, signer, sessionB64 string, now time.Time) (cryptotypes.PubKey, error) {
	raw, err := base64.StdEncoding.DecodeString(header)
	if err != nil || len(raw) > 4096 {
		return nil, fmt.Errorf("%w: %s is not base64 of a signed grant", ErrGrantInvalid, HeaderGrant)
	}
	var sg SignedGrant
	if err := json.Unmarshal(raw, &sg); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGrantInvalid, err)
	}
	var g Grant
	dec := json.NewDecoder(bytes.NewReader([]byte(sg.Grant)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("%w: grant text: %v", ErrGrantInvalid, err)
	}
	// One spelling only: what the wallet showed is what is checked (no
	// duplicate keys, no keys in another case).
	if canonical, _ := json.Marshal(g); string(canonical) != sg.Grant {
		return nil, fmt.Errorf("%w: the grant's text is not its canonical JSON", ErrGrantInvalid)
	}
	switch {
	case g.Type != GrantType:
		return nil, fmt.Errorf("%w: its type is %q, not %q", ErrGrantInvalid, g.Type, GrantType)
	case g.ChainID != v.ChainID:
		return nil, fmt.Errorf("%w: it is for chain %q, this is %q", ErrGrantInvalid, g.ChainID, v.ChainID)
	case g.Provider != v.Provider:
		return nil, fmt.Errorf("%w: it is for provider %s", ErrGrantInvalid, g.Provider)
	case g.Owner != signer:
		return nil, fmt.Errorf("%w: it is %s's, the request is signed for %s", ErrGrantInvalid, g.Owner, signer)
	case g.SessionKey != sessionB64:
		return nil, fmt.Errorf("%w: the request is signed by another session key than the grant's", ErrGrantInvalid)
	case g.Issued <= 0 || g.Expires <= g.Issued || g.Expires-g.Issued > int64(MaxGrantLifetime/time.Second):
		return nil, fmt.Errorf("%w: it must expire after it is issued and within %s", ErrGrantInvalid, MaxGrantLifetime)
	case time.Unix(g.Issued, 0).After(now.Add(v.MaxSkew)):
		return nil, fmt.Errorf("%w: it is issued in the future", ErrGrantInvalid)
	case !now.Before(time.Unix(g.Expires, 0)):
		return nil, ErrGrantExpired
	}
	pubBz, err := base64.StdEncoding.DecodeString(sg.PubKey)
	if err != nil || len(pubBz) != secp256k1.PubKeySize {
		return nil, fmt.Errorf("%w: the owner's key must be a base64 compressed secp256k1 key", ErrGrantInvalid)
	}
	owner := &secp256k1.PubKey{Key: pubBz}
	addr, err := sdk.AccAddressFromBech32(g.Owner)
	if err != nil || !addr.Equals(sdk.AccAddress(owner.Address())) {
		return nil, fmt.Errorf("%w: the grant's key is not %s's", ErrGrantInvalid, g.Owner)
	}
	sig, err := base64.StdEncoding.DecodeString(sg.Signature)
	if err != nil || !owner.VerifySignature(ADR36SignBytes(g.Owner, []byte(sg.Grant)), sig) {
		return nil, fmt.Errorf("%w: the owner's signature does not verify", ErrGrantInvalid)
	}
	if v.RevokedBefore != nil && g.Issued <= v.RevokedBefore(g.Owner) {
		return nil, ErrGrantRevoked
	}
	return owner, nil
}

var randReader = rand.Reader

// sessionKey is a grant's P-256 session key; it verifies request
// signatures given as 64 bytes r‖s over the SHA-256 of the message, as
// WebCrypto's ECDSA makes them.
type sessionKey struct{ pub *ecdsa.PublicKey }

func parseSessionKey(b64 string) (*sessionKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		return nil, fmt.Errorf("%w: a session key is an uncompressed P-256 point, base64", ErrMalformed)
	}
	x, y := new(big.Int).SetBytes(raw[1:33]), new(big.Int).SetBytes(raw[33:])
	if !elliptic.P256().IsOnCurve(x, y) {
		return nil, fmt.Errorf("%w: the session key is not a P-256 point", ErrMalformed)
	}
	return &sessionKey{pub: &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}}, nil
}

func (k *sessionKey) verify(msg, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(msg)
	return ecdsa.Verify(k.pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

// SessionSign signs msg as a browser session does (test helper and
// reference): P-256, SHA-256, r‖s.
func SessionSign(priv *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(randReader, priv, h[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// SessionPubKey is a P-256 key's uncompressed point in base64.
func SessionPubKey(pub *ecdsa.PublicKey) string {
	out := make([]byte, 65)
	out[0] = 4
	pub.X.FillBytes(out[1:33])
	pub.Y.FillBytes(out[33:])
	return base64.StdEncoding.EncodeToString(out)
}
