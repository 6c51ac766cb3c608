// Package leaseauth owns the signature scheme of the provider API: a tenant
// signs each lease request with its account key over the provider, method,
// path, body hash, timestamp and nonce; the provider refuses forged, stale,
// replayed and foreign-key requests. gpunetd signs with it, gpunet-provider
// verifies with it.
package leaseauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

// Header names.
const (
	HeaderSigner    = "X-Gpunet-Signer"
	HeaderPubKey    = "X-Gpunet-Pubkey"
	HeaderTimestamp = "X-Gpunet-Timestamp"
	HeaderNonce     = "X-Gpunet-Nonce"
	HeaderSignature = "X-Gpunet-Signature"
)

// domain separates these signatures from any transaction signature.
const domain = "gpunet-provider-request/v1"

// Refusals; the API maps them to 401.
var (
	ErrMissing      = errors.New("request is not signed")
	ErrMalformed    = errors.New("malformed signature headers")
	ErrStale        = errors.New("request timestamp outside the allowed clock skew")
	ErrReplayed     = errors.New("nonce already used")
	ErrBadSignature = errors.New("signature does not verify")
	ErrKeyMismatch  = errors.New("public key does not belong to the signer")
	ErrBusy         = errors.New("too many recent requests; retry shortly")
)

// SignBytes is what is signed: every part on its own line, the body as its
// SHA-256, the provider's address so a request cannot be replayed to
// another provider.
func SignBytes(provider, method, path string, body []byte, ts int64, nonce string) []byte {
	sum := sha256.Sum256(body)
	return []byte(strings.Join([]string{
		domain, provider, strings.ToUpper(method), path, hex.EncodeToString(sum[:]), strconv.FormatInt(ts, 10), nonce,
	}, "\n"))
}

// SignFunc signs bytes with the tenant's key (a keyring's Sign).
type SignFunc func(msg []byte) ([]byte, cryptotypes.PubKey, error)

// Sign adds the signature headers to req for provider. path must be the
// request URI (path and query) as sent.
func Sign(req *http.Request, body []byte, provider, signer string, sign SignFunc, now time.Time) error {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	n := hex.EncodeToString(nonce)
	ts := now.Unix()
	sig, pub, err := sign(SignBytes(provider, req.Method, req.URL.RequestURI(), body, ts, n))
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	req.Header.Set(HeaderSigner, signer)
	req.Header.Set(HeaderPubKey, base64.StdEncoding.EncodeToString(pub.Bytes()))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderNonce, n)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return nil
}

// Verified is who signed a request.
type Verified struct {
	Signer string
	PubKey cryptotypes.PubKey
}

// Verifier checks signatures for one provider and remembers nonces for
// twice the skew window (a nonce older than that has a stale timestamp).
type Verifier struct {
	Provider  string
	MaxSkew   time.Duration
	MaxNonces int
	Now       func() time.Time

	mu     sync.Mutex
	nonces map[string]time.Time
	order  []nonceEntry // insertion order, for expiry without walking the map
}

type nonceEntry struct {
	key string
	at  time.Time
}

// NewVerifier returns a verifier for provider.
func NewVerifier(provider string, maxSkew time.Duration) *Verifier {
	return &Verifier{Provider: provider, MaxSkew: maxSkew, MaxNonces: 200_000, Now: time.Now, nonces: map[string]time.Time{}}
}

// Verify checks the headers of r against its body. It does not know who
// owns a lease: the caller compares Verified.Signer and PubKey with the chain.
func (v *Verifier) Verify(r *http.Request, body []byte) (Verified, error) {
	signer := r.Header.Get(HeaderSigner)
	pubB64, tsStr, nonce, sigB64 := r.Header.Get(HeaderPubKey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if signer == "" && sigB64 == "" {
		return Verified{}, ErrMissing
	}
	if signer == "" || pubB64 == "" || tsStr == "" || nonce == "" || sigB64 == "" {
		return Verified{}, fmt.Errorf("%w: all of %s, %s, %s, %s, %s are required", ErrMalformed, HeaderSigner, HeaderPubKey, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	if len(nonce) < 16 || len(nonce) > 64 {
		return Verified{}, fmt.Errorf("%w: nonce must be 16 to 64 characters", ErrMalformed)
	}
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: timestamp %q", ErrMalformed, tsStr)
	}
	pubBz, err := base64.StdEncoding.DecodeString(pubB64)
	if err != nil || len(pubBz) != secp256k1.PubKeySize {
		return Verified{}, fmt.Errorf("%w: public key must be a base64 compressed secp256k1 key", ErrMalformed)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 || len(sig) > 128 {
		return Verified{}, fmt.Errorf("%w: signature must be base64", ErrMalformed)
	}
	addr, err := sdk.AccAddressFromBech32(signer)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: signer %q: %v", ErrMalformed, signer, err)
	}
	pub := &secp256k1.PubKey{Key: pubBz}
	if !addr.Equals(sdk.AccAddress(pub.Address())) {
		return Verified{}, ErrKeyMismatch
	}
	now := v.Now()
	if d := now.Sub(time.Unix(ts, 0)); d > v.MaxSkew || d < -v.MaxSkew {
		return Verified{}, fmt.Errorf("%w: timestamp is %s from the provider's clock (allowed %s)", ErrStale, d.Round(time.Second), v.MaxSkew)
	}
	if !pub.VerifySignature(SignBytes(v.Provider, r.Method, r.URL.RequestURI(), body, ts, nonce), sig) {
		return Verified{}, ErrBadSignature
	}
	// The nonce is spent only by a valid request, so garbage cannot fill the cache.
	if err := v.spend(signer+"/"+nonce, now); err != nil {
		return Verified{}, err
	}
	return Verified{Signer: signer, PubKey: pub}, nil
}

func (v *Verifier) spend(key string, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	// Forget nonces whose timestamps would be stale now anyway.
	horizon := now.Add(-2 * v.MaxSkew)
	i := 0
	for ; i < len(v.order) && v.order[i].at.Before(horizon); i++ {
		delete(v.nonces, v.order[i].key)
	}
	v.order = v.order[i:]
	if _, seen := v.nonces[key]; seen {
		return ErrReplayed
	}
	if len(v.nonces) >= v.MaxNonces {
		return ErrBusy
	}
	v.nonces[key] = now
	v.order = append(v.order, nonceEntry{key: key, at: now})
	return nil
}
