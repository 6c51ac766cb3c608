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
const domain = "gpunet-provider-request/v2"

// Refusals; the API maps them to 401.
var (
	ErrMissing      = errors.New("request is not signed")
	ErrMalformed    = errors.New("malformed signature headers")
	ErrStale        = errors.New("request timestamp outside the allowed clock skew")
	ErrReplayed     = errors.New("nonce already used")
	ErrBadSignature = errors.New("signature does not verify")
	ErrKeyMismatch  = errors.New("public key does not belong to the signer")
	ErrBusy         = errors.New("too many recent requests; retry shortly")
	// ErrNotServed: the signer holds nothing on this provider; its request
	// is refused before its nonce is kept, so strangers cannot fill the
	// nonce tables.
	ErrNotServed = errors.New("the signer holds no live lease on this provider")
)

// SignBytes is what is signed: every part on its own line, the body as its
// SHA-256, the chain id and the provider's address so a request cannot be
// replayed to another provider or on another chain.
func SignBytes(chainID, provider, method, path string, body []byte, ts int64, nonce string) []byte {
	sum := sha256.Sum256(body)
	return []byte(strings.Join([]string{
		domain, chainID, provider, strings.ToUpper(method), path, hex.EncodeToString(sum[:]), strconv.FormatInt(ts, 10), nonce,
	}, "\n"))
}

// SignFunc signs bytes with the tenant's key (a keyring's Sign).
type SignFunc func(msg []byte) ([]byte, cryptotypes.PubKey, error)

// Sign adds the signature headers to req for provider. path must be the
// request URI (path and query) as sent.
func Sign(req *http.Request, body []byte, chainID, provider, signer string, sign SignFunc, now time.Time) error {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	n := hex.EncodeToString(nonce)
	ts := now.Unix()
	sig, pub, err := sign(SignBytes(chainID, provider, req.Method, req.URL.RequestURI(), body, ts, n))
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

// Verified is who signed a request: the owner and its account key (which
// signed the request, or the session grant of the key that did).
type Verified struct {
	Signer string
	PubKey cryptotypes.PubKey
}

// Verifier checks signatures for one provider and remembers nonces for
// twice the skew window (a nonce older than that has a stale timestamp),
// at most MaxNoncesPerSigner per signer and MaxNonces in all.
type Verifier struct {
	ChainID            string
	Provider           string
	MaxSkew            time.Duration
	MaxNonces          int
	MaxNoncesPerSigner int
	Now                func() time.Time
	// Serves, when set, says whether a signer holds anything on this
	// provider; others are refused with ErrNotServed before any nonce is
	// kept.
	Serves func(signer string) bool
	// RevokedBefore, when set, is the unix second up to which an owner
	// revoked its session grants (0: none).
	RevokedBefore func(owner string) int64

	mu        sync.Mutex
	nonces    map[string]time.Time
	perSigner map[string]int
	order     []nonceEntry // insertion order, for expiry without walking the map
}

type nonceEntry struct {
	key, signer string
	at          time.Time
}

// NewVerifier returns a verifier for provider.
func NewVerifier(chainID, provider string, maxSkew time.Duration) *Verifier {
	return &Verifier{ChainID: chainID, Provider: provider, MaxSkew: maxSkew, MaxNonces: 200_000, MaxNoncesPerSigner: 10_000, Now: time.Now,
		nonces: map[string]time.Time{}, perSigner: map[string]int{}}
}

// Headers are a request's signature headers, parsed and checked on their
// own: everything but the signature over the body.
type Headers struct {
	Signer string
	// PubKey is the owner's account key: the request's signing key, or
	// under a session grant the key that signed the grant.
	PubKey  cryptotypes.PubKey
	session *sessionKey
	ts      int64
	nonce   string
	sig     []byte
}

// CheckHeaders checks what can be checked before the body is read: every
// header is there and well formed, the key is the signer's, the timestamp
// is within the skew, and (with Serves) the signer holds something here.
// A server reads the body only after this passes.
func (v *Verifier) CheckHeaders(r *http.Request) (Headers, error) {
	signer := r.Header.Get(HeaderSigner)
	pubB64, tsStr, nonce, sigB64 := r.Header.Get(HeaderPubKey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if signer == "" && sigB64 == "" {
		return Headers{}, ErrMissing
	}
	if signer == "" || pubB64 == "" || tsStr == "" || nonce == "" || sigB64 == "" {
		return Headers{}, fmt.Errorf("%w: all of %s, %s, %s, %s, %s are required", ErrMalformed, HeaderSigner, HeaderPubKey, HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	if len(nonce) < 16 || len(nonce) > 64 {
		return Headers{}, fmt.Errorf("%w: nonce must be 16 to 64 characters", ErrMalformed)
	}
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	// Only the plain decimal spelling: "01800000000" or "+1800000000"
	// would be the same signed time under another header value.
	if err != nil || strconv.FormatInt(ts, 10) != tsStr {
		return Headers{}, fmt.Errorf("%w: timestamp %q must be unix seconds in plain decimal", ErrMalformed, tsStr)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	// Only the canonical encoding is taken: the decoder would also accept
	// line breaks and stray padding bits, giving one signature many spellings.
	if err != nil || len(sig) == 0 || len(sig) > 128 || base64.StdEncoding.EncodeToString(sig) != sigB64 {
		return Headers{}, fmt.Errorf("%w: signature must be canonical base64", ErrMalformed)
	}
	addr, err := sdk.AccAddressFromBech32(signer)
	if err != nil {
		return Headers{}, fmt.Errorf("%w: signer %q: %v", ErrMalformed, signer, err)
	}
	if d := v.Now().Sub(time.Unix(ts, 0)); d > v.MaxSkew || d < -v.MaxSkew {
		return Headers{}, fmt.Errorf("%w: timestamp is %s from the provider's clock (allowed %s)", ErrStale, d.Round(time.Second), v.MaxSkew)
	}
	// A stranger is refused before any signature work is done for it.
	if v.Serves != nil && !v.Serves(signer) {
		return Headers{}, ErrNotServed
	}
	h := Headers{Signer: signer, ts: ts, nonce: nonce, sig: sig}
	if grant := r.Header.Get(HeaderGrant); grant != "" {
		// A browser session: the request is signed by the grant's session
		// key, which the owner's key signed.
		if h.session, err = parseSessionKey(pubB64); err != nil {
			return Headers{}, err
		}
		if h.PubKey, err = v.checkGrant(grant, signer, pubB64, v.Now()); err != nil {
			return Headers{}, err
		}
	} else {
		pubBz, err := base64.StdEncoding.DecodeString(pubB64)
		if err != nil || len(pubBz) != secp256k1.PubKeySize || base64.StdEncoding.EncodeToString(pubBz) != pubB64 {
			return Headers{}, fmt.Errorf("%w: public key must be a base64 compressed secp256k1 key", ErrMalformed)
		}
		h.PubKey = &secp256k1.PubKey{Key: pubBz}
		if !addr.Equals(sdk.AccAddress(h.PubKey.Address())) {
			return Headers{}, ErrKeyMismatch
		}
	}
	return h, nil
}

// Verify checks the headers of r against its body. It does not know who
// owns a lease: the caller compares Verified.Signer and PubKey with the chain.
func (v *Verifier) Verify(r *http.Request, body []byte) (Verified, error) {
	h, err := v.CheckHeaders(r)
	if err != nil {
		return Verified{}, err
	}
	return v.VerifyBody(r, h, body)
}

// VerifyBody checks the signature of checked headers over the body and
// spends the nonce.
func (v *Verifier) VerifyBody(r *http.Request, h Headers, body []byte) (Verified, error) {
	msg := SignBytes(v.ChainID, v.Provider, r.Method, r.URL.RequestURI(), body, h.ts, h.nonce)
	if h.session != nil && !h.session.verify(msg, h.sig) || h.session == nil && !h.PubKey.VerifySignature(msg, h.sig) {
		return Verified{}, ErrBadSignature
	}
	// The nonce is spent only by a valid request, so garbage cannot fill the cache.
	if err := v.spend(h.Signer, h.nonce, v.Now()); err != nil {
		return Verified{}, err
	}
	return Verified{Signer: h.Signer, PubKey: h.PubKey}, nil
}

func (v *Verifier) spend(signer, nonce string, now time.Time) error {
	key := signer + "/" + nonce
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.perSigner == nil {
		v.perSigner = map[string]int{}
	}
	// Forget nonces whose timestamps would be stale now anyway.
	horizon := now.Add(-2 * v.MaxSkew)
	i := 0
	for ; i < len(v.order) && v.order[i].at.Before(horizon); i++ {
		delete(v.nonces, v.order[i].key)
		if v.perSigner[v.order[i].signer]--; v.perSigner[v.order[i].signer] <= 0 {
			delete(v.perSigner, v.order[i].signer)
		}
	}
	v.order = v.order[i:]
	if _, seen := v.nonces[key]; seen {
		return ErrReplayed
	}
	// One signer cannot use up the table for everybody else.
	if len(v.nonces) >= v.MaxNonces || (v.MaxNoncesPerSigner > 0 && v.perSigner[signer] >= v.MaxNoncesPerSigner) {
		return ErrBusy
	}
	v.nonces[key] = now
	v.perSigner[signer]++
	v.order = append(v.order, nonceEntry{key: key, signer: signer, at: now})
	return nil
}
