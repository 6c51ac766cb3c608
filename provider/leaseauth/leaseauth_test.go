package leaseauth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

type tenant struct {
	priv *secp256k1.PrivKey
	addr string
}

func newTenant() tenant {
	p := secp256k1.GenPrivKey()
	return tenant{priv: p, addr: sdk.AccAddress(p.PubKey().Address()).String()}
}

func (t tenant) sign(msg []byte) ([]byte, cryptotypes.PubKey, error) {
	sig, err := t.priv.Sign(msg)
	return sig, t.priv.PubKey(), err
}

const provider = "cosmos1provider"

func signed(t *testing.T, tn tenant, method, path string, body []byte, prov string, at time.Time) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if err := Sign(req, body, testChain, prov, tn.addr, tn.sign, at); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	alice, mallory := newTenant(), newTenant()
	body := []byte(`{"version":"2.0"}`)
	path := "/v1/deployments/x/7/manifest?x=1"

	newV := func() *Verifier {
		v := NewVerifier(testChain, provider, time.Minute)
		v.Now = func() time.Time { return now }
		return v
	}

	t.Run("valid request verifies once, replay refused", func(t *testing.T) {
		v := newV()
		req := signed(t, alice, http.MethodPut, path, body, provider, now)
		got, err := v.Verify(req, body)
		if err != nil || got.Signer != alice.addr {
			t.Fatalf("got %+v, %v", got, err)
		}
		if _, err := v.Verify(req, body); !errors.Is(err, ErrReplayed) {
			t.Fatalf("replay: %v", err)
		}
	})

	cases := []struct {
		name string
		req  func() (*http.Request, []byte)
		want error
	}{
		{"unsigned", func() (*http.Request, []byte) { return httptest.NewRequest("GET", path, nil), nil }, ErrMissing},
		{"body changed", func() (*http.Request, []byte) {
			return signed(t, alice, "PUT", path, body, provider, now), []byte(`{"version":"evil"}`)
		}, ErrBadSignature},
		{"path changed", func() (*http.Request, []byte) {
			r := signed(t, alice, "PUT", path, body, provider, now)
			r.URL.Path = "/v1/deployments/x/8/manifest"
			return r, body
		}, ErrBadSignature},
		{"method changed", func() (*http.Request, []byte) {
			r := signed(t, alice, "PUT", path, body, provider, now)
			r.Method = "DELETE"
			return r, body
		}, ErrBadSignature},
		{"signed for another provider", func() (*http.Request, []byte) {
			return signed(t, alice, "PUT", path, body, "cosmos1other", now), body
		}, ErrBadSignature},
		{"expired", func() (*http.Request, []byte) {
			return signed(t, alice, "PUT", path, body, provider, now.Add(-61*time.Second)), body
		}, ErrStale},
		{"from the future", func() (*http.Request, []byte) {
			return signed(t, alice, "PUT", path, body, provider, now.Add(2*time.Minute)), body
		}, ErrStale},
		{"claims alice with mallory's key", func() (*http.Request, []byte) {
			r := signed(t, mallory, "PUT", path, body, provider, now)
			r.Header.Set(HeaderSigner, alice.addr)
			return r, body
		}, ErrKeyMismatch},
		{"forged signature bytes", func() (*http.Request, []byte) {
			r := signed(t, alice, "PUT", path, body, provider, now)
			other := signed(t, alice, "GET", path, nil, provider, now)
			r.Header.Set(HeaderSignature, other.Header.Get(HeaderSignature))
			return r, body
		}, ErrBadSignature},
		{"garbage key", func() (*http.Request, []byte) {
			r := signed(t, alice, "PUT", path, body, provider, now)
			r.Header.Set(HeaderPubKey, "AAAA")
			return r, body
		}, ErrMalformed},
		{"missing nonce", func() (*http.Request, []byte) {
			r := signed(t, alice, "PUT", path, body, provider, now)
			r.Header.Del(HeaderNonce)
			return r, body
		}, ErrMalformed},
		// The signed time spelled another way (found by FuzzVerify): the
		// same signature, a header value never signed.
		{"timestamp with a leading zero", func() (*http.Request, []byte) {
			r := signed(t, alice, "PUT", path, body, provider, now)
			r.Header.Set(HeaderTimestamp, "0"+r.Header.Get(HeaderTimestamp))
			return r, body
		}, ErrMalformed},
		{"timestamp with a plus sign", func() (*http.Request, []byte) {
			r := signed(t, alice, "PUT", path, body, provider, now)
			r.Header.Set(HeaderTimestamp, "+"+r.Header.Get(HeaderTimestamp))
			return r, body
		}, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, b := tc.req()
			if _, err := newV().Verify(req, b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNonceCacheForgetsStaleEntriesAndIsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	alice := newTenant()
	v := NewVerifier(testChain, provider, time.Minute)
	v.MaxNonces = 2
	v.Now = func() time.Time { return now }
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(signed(t, alice, "GET", "/x", nil, provider, now), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Verify(signed(t, alice, "GET", "/x", nil, provider, now), nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("full cache: %v", err)
	}
	now = now.Add(3 * time.Minute) // the first two are past any valid timestamp now
	if _, err := v.Verify(signed(t, alice, "GET", "/x", nil, provider, now), nil); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if len(v.nonces) != 1 || len(v.order) != 1 {
		t.Fatalf("cache holds %d/%d entries, want 1", len(v.nonces), len(v.order))
	}
}

// genuinelySigned checks a PUT /v1/x request the slow, obvious way: the
// public key is a secp256k1 key, the signer is its address, and the
// signature is that key's over exactly this request.
func genuinelySigned(signer, pub, ts, nonce, sig string, body []byte) bool {
	key, err1 := base64.StdEncoding.DecodeString(pub)
	raw, err2 := base64.StdEncoding.DecodeString(sig)
	at, err3 := strconv.ParseInt(ts, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(key) != secp256k1.PubKeySize ||
		base64.StdEncoding.EncodeToString(key) != pub || base64.StdEncoding.EncodeToString(raw) != sig || strconv.FormatInt(at, 10) != ts {
		return false // only the canonical spelling of each header is the signed request
	}
	pk := &secp256k1.PubKey{Key: key}
	return sdk.AccAddress(pk.Address()).String() == signer &&
		pk.VerifySignature(SignBytes(testChain, provider, "PUT", "/v1/x", body, at, nonce), raw)
}

// FuzzVerify feeds arbitrary headers and bodies to the verifier: it never
// panics and refuses everything with one of its registered errors.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	alice := newTenant()
	good := httptest.NewRequest("PUT", "/v1/x", nil)
	if err := Sign(good, []byte("b"), testChain, provider, alice.addr, alice.sign, now); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Header.Get(HeaderSigner), good.Header.Get(HeaderPubKey), good.Header.Get(HeaderTimestamp), good.Header.Get(HeaderNonce), good.Header.Get(HeaderSignature), []byte("c"))
	f.Add("", "", "", "", "", []byte{})
	f.Add("cosmos1x", "AAAA", "-1", "0000000000000000", "!!", []byte("x"))
	f.Fuzz(func(t *testing.T, signer, pub, ts, nonce, sig string, body []byte) {
		req := httptest.NewRequest("PUT", "/v1/x", nil)
		req.Header.Set(HeaderSigner, signer)
		req.Header.Set(HeaderPubKey, pub)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderNonce, nonce)
		req.Header.Set(HeaderSignature, sig)
		v := NewVerifier(testChain, provider, time.Minute)
		v.Now = func() time.Time { return now }
		_, err := v.Verify(req, body)
		if err == nil {
			// Genuinely signed requests pass: not only this process's seed
			// but any fuzzing worker's, each signed with a key of its own.
			if genuinelySigned(signer, pub, ts, nonce, sig, body) {
				return
			}
			t.Fatalf("accepted a request that was not signed: %q", body)
		}
		known := []error{ErrMissing, ErrMalformed, ErrStale, ErrReplayed, ErrBadSignature, ErrKeyMismatch, ErrBusy}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("unregistered refusal: %v", err)
	})
}

// One signer cannot use up the nonce table for everybody, and a signer the
// provider does not serve is refused before any nonce is kept (a flood of
// fresh keys costs the provider nothing it keeps).
func TestNoncesPerSignerAndServes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	alice, bob, stranger := newTenant(), newTenant(), newTenant()
	v := NewVerifier(testChain, provider, time.Minute)
	v.MaxNoncesPerSigner = 2
	v.Now = func() time.Time { return now }
	v.Serves = func(s string) bool { return s == alice.addr || s == bob.addr }
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(signed(t, alice, "GET", "/x", nil, provider, now), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Verify(signed(t, alice, "GET", "/x", nil, provider, now), nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("alice over her cap: %v", err)
	}
	if _, err := v.Verify(signed(t, bob, "GET", "/x", nil, provider, now), nil); err != nil {
		t.Fatalf("bob after alice filled her share: %v", err)
	}
	for i := 0; i < 50; i++ {
		if _, err := v.Verify(signed(t, stranger, "GET", "/x", nil, provider, now), nil); !errors.Is(err, ErrNotServed) {
			t.Fatalf("stranger: %v", err)
		}
	}
	if len(v.nonces) != 3 {
		t.Errorf("nonce table holds %d entries, want alice's 2 and bob's 1", len(v.nonces))
	}
	// Headers alone say who signs, before any body is read.
	h, err := v.CheckHeaders(signed(t, bob, "PUT", "/y", []byte("body"), provider, now))
	if err != nil || h.Signer != bob.addr {
		t.Fatalf("headers: %+v %v", h, err)
	}
	now = now.Add(3 * time.Minute)
	if _, err := v.Verify(signed(t, alice, "GET", "/x", nil, provider, now), nil); err != nil {
		t.Fatalf("alice after her nonces expired: %v", err)
	}
}

const testChain = "gpunet-test-1"

// A request signed for one chain does not verify on another.
func TestSignatureNamesTheChain(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	alice := newTenant()
	v := NewVerifier("another-chain-1", provider, time.Minute)
	v.Now = func() time.Time { return now }
	if _, err := v.Verify(signed(t, alice, "GET", "/x", nil, provider, now), nil); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a request signed for %s verified on another chain: %v", testChain, err)
	}
}

// A signature or key has one spelling: the same bytes written with a line
// break or with stray padding bits are refused, not accepted as new requests.
func TestOnlyCanonicalBase64(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	alice := newTenant()
	for name, respell := range map[string]func(string) string{
		"line break":   func(s string) string { return s[:4] + "\n" + s[4:] },
		"padding bits": func(s string) string { return flipPaddingBits(s) },
	} {
		for _, header := range []string{HeaderSignature, HeaderPubKey} {
			if name == "padding bits" && header == HeaderPubKey {
				continue // 33 bytes fill their characters: a key has no padding bits
			}
			req := signed(t, alice, "GET", "/x", nil, provider, now)
			req.Header.Set(header, respell(req.Header.Get(header)))
			v := NewVerifier(testChain, provider, time.Minute)
			v.Now = func() time.Time { return now }
			if _, err := v.Verify(req, nil); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s in %s: got %v, want %v", name, header, err, ErrMalformed)
			}
		}
	}
}

// flipPaddingBits changes the last data character of a padded base64 string
// so that only its unused low bits differ: it decodes to the same bytes.
func flipPaddingBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.TrimRight(s, "=")
	last := len(i) - 1
	return i[:last] + string(alphabet[strings.IndexByte(alphabet, i[last])^1]) + s[len(i):]
}
