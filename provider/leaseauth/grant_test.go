package leaseauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

// TestADR36SignBytes: the document a wallet's signArbitrary signs, byte
// for byte as Keplr and Leap make it.
func TestADR36SignBytes(t *testing.T) {
	got := string(ADR36SignBytes("gpunet1abc", []byte("hello")))
	want := `{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"aGVsbG8=","signer":"gpunet1abc"}}],"sequence":"0"}`
	if got != want {
		t.Fatalf("ADR-036 sign doc\n got %s\nwant %s", got, want)
	}
}

type grantWorld struct {
	t       *testing.T
	v       *Verifier
	owner   *secp256k1.PrivKey
	addr    string
	session *ecdsa.PrivateKey
	now     time.Time
	revoked int64
}

func newGrantWorld(t *testing.T) *grantWorld {
	t.Helper()
	w := &grantWorld{t: t, owner: secp256k1.GenPrivKey(), now: time.Unix(1_800_000_000, 0)}
	w.addr = sdk.AccAddress(w.owner.PubKey().Address()).String()
	var err error
	if w.session, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	w.v = NewVerifier("gpunet-test-1", "gpunet1provider", time.Minute)
	w.v.Now = func() time.Time { return w.now }
	w.v.RevokedBefore = func(string) int64 { return w.revoked }
	return w
}

// grant signs a grant for the session key (changed by mod) with signer
// (the owner's key unless given) and returns the header value.
func (w *grantWorld) grant(mod func(*Grant), signer *secp256k1.PrivKey) string {
	g := Grant{Type: GrantType, ChainID: "gpunet-test-1", Provider: "gpunet1provider", Owner: w.addr, SessionKey: SessionPubKey(&w.session.PublicKey),
		Issued: w.now.Unix() - 10, Expires: w.now.Unix() + 3600}
	if mod != nil {
		mod(&g)
	}
	if signer == nil {
		signer = w.owner
	}
	text, _ := json.Marshal(g)
	sig, err := signer.Sign(ADR36SignBytes(g.Owner, text))
	if err != nil {
		w.t.Fatal(err)
	}
	sg, _ := json.Marshal(SignedGrant{Grant: string(text), PubKey: base64.StdEncoding.EncodeToString(signer.PubKey().Bytes()), Signature: base64.StdEncoding.EncodeToString(sig)})
	return base64.StdEncoding.EncodeToString(sg)
}

// request is a GET signed by key with the grant header.
func (w *grantWorld) request(grant string, key *ecdsa.PrivateKey, signer string) *http.Request {
	r, _ := http.NewRequest("GET", "https://p.example/v1/leases/x/1/1/1/status", nil)
	nonce := strconv.FormatInt(time.Now().UnixNano(), 16) + "0123456789abcdef"
	ts := w.now.Unix()
	sig, err := SessionSign(key, SignBytes("gpunet-test-1", "gpunet1provider", "GET", r.URL.RequestURI(), nil, ts, nonce))
	if err != nil {
		w.t.Fatal(err)
	}
	r.Header.Set(HeaderSigner, signer)
	r.Header.Set(HeaderPubKey, SessionPubKey(&key.PublicKey))
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	r.Header.Set(HeaderGrant, grant)
	return r
}

// TestSessionGrant: a request signed by a session key under the owner's
// grant is the owner's request (with the owner's account key, for the
// on-chain check); every way to stretch a grant is refused.
func TestSessionGrant(t *testing.T) {
	w := newGrantWorld(t)
	ver, err := w.v.Verify(w.request(w.grant(nil, nil), w.session, w.addr), nil)
	if err != nil || ver.Signer != w.addr || !bytes.Equal(ver.PubKey.Bytes(), w.owner.PubKey().Bytes()) {
		t.Fatalf("a session request: %+v %v, want the owner with its account key", ver, err)
	}
	r := w.request(w.grant(nil, nil), w.session, w.addr)
	if _, err := w.v.Verify(r, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.v.Verify(r, nil); !errors.Is(err, ErrReplayed) {
		t.Errorf("the same request again: %v, want replayed", err)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger := secp256k1.GenPrivKey()
	strangerAddr := sdk.AccAddress(stranger.PubKey().Address()).String()
	for _, c := range []struct {
		name string
		req  *http.Request
		want error
	}{
		{"another chain", w.request(w.grant(func(g *Grant) { g.ChainID = "gpunet-other" }, nil), w.session, w.addr), ErrGrantInvalid},
		{"another provider", w.request(w.grant(func(g *Grant) { g.Provider = "gpunet1other" }, nil), w.session, w.addr), ErrGrantInvalid},
		{"the grant of another owner", w.request(w.grant(nil, nil), w.session, strangerAddr), ErrGrantInvalid},
		{"signed by a key that is not the owner's", w.request(w.grant(nil, stranger), w.session, w.addr), ErrGrantInvalid},
		{"another session key", w.request(w.grant(nil, nil), other, w.addr), ErrGrantInvalid},
		{"expired", w.request(w.grant(func(g *Grant) { g.Expires = w.now.Unix() }, nil), w.session, w.addr), ErrGrantExpired},
		{"longer than a day", w.request(w.grant(func(g *Grant) { g.Expires = g.Issued + 86401 }, nil), w.session, w.addr), ErrGrantInvalid},
		{"issued in the future", w.request(w.grant(func(g *Grant) { g.Issued, g.Expires = w.now.Unix()+3600, w.now.Unix()+7200 }, nil), w.session, w.addr), ErrGrantInvalid},
		{"garbage", w.request("not base64!", w.session, w.addr), ErrGrantInvalid},
		{"another app's signature", w.request(w.grant(func(g *Grant) { g.Type = "" }, nil), w.session, w.addr), ErrGrantInvalid},
		{"a lifetime that overflows", w.request(w.grant(func(g *Grant) { g.Issued, g.Expires = -2446744074, 16000000000 }, nil), w.session, w.addr), ErrGrantInvalid},
	} {
		if _, err := w.v.Verify(c.req, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}

	// The grant's text changed after it was signed.
	hdr, _ := base64.StdEncoding.DecodeString(w.grant(nil, nil))
	var sg SignedGrant
	_ = json.Unmarshal(hdr, &sg)
	sg.Grant = string(bytes.Replace([]byte(sg.Grant), []byte(`"expires":`), []byte(`"expires":1`), 1))
	tampered, _ := json.Marshal(sg)
	if _, err := w.v.Verify(w.request(base64.StdEncoding.EncodeToString(tampered), w.session, w.addr), nil); !errors.Is(err, ErrGrantInvalid) {
		t.Errorf("a tampered grant: %v", err)
	}

	// Another spelling of the grant's text than its canonical JSON (here a
	// second "provider" key, which a wallet shows and a lenient parser
	// would read differently) is refused.
	hdr, _ = base64.StdEncoding.DecodeString(w.grant(nil, nil))
	_ = json.Unmarshal(hdr, &sg)
	sg.Grant = strings.Replace(sg.Grant, `"owner":`, `"provider":"gpunet1other","owner":`, 1)
	sig, _ := w.owner.Sign(ADR36SignBytes(w.addr, []byte(sg.Grant)))
	sg.Signature = base64.StdEncoding.EncodeToString(sig)
	dup, _ := json.Marshal(sg)
	if _, err := w.v.Verify(w.request(base64.StdEncoding.EncodeToString(dup), w.session, w.addr), nil); !errors.Is(err, ErrGrantInvalid) {
		t.Errorf("a grant with a duplicate key: %v", err)
	}

	// A request signed by another key under the right grant header.
	r = w.request(w.grant(nil, nil), other, w.addr)
	r.Header.Set(HeaderPubKey, SessionPubKey(&w.session.PublicKey))
	if _, err := w.v.Verify(r, nil); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a request not signed by the session key: %v", err)
	}

	// Revoked: every grant issued up to the revocation; a later one works.
	w.revoked = w.now.Unix()
	if _, err := w.v.Verify(w.request(w.grant(nil, nil), w.session, w.addr), nil); !errors.Is(err, ErrGrantRevoked) {
		t.Errorf("a revoked grant: %v", err)
	}
	w.now = w.now.Add(5 * time.Second)
	if _, err := w.v.Verify(w.request(w.grant(func(g *Grant) { g.Issued = w.now.Unix() }, nil), w.session, w.addr), nil); err != nil {
		t.Errorf("a grant issued after the revocation: %v", err)
	}
}
