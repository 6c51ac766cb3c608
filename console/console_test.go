package console

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdkmath "cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/client"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gpunet/gpunet/internal/testpki"
	"github.com/gpunet/gpunet/provider/leaseauth"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

var testProvider = sdk.MustBech32ifyAddressBytes("gpunet", make([]byte, 20))

func testServer(t *testing.T, lookup func(ctx context.Context, owner string) (providertypes.ProviderView, error)) *httptest.Server {
	t.Helper()
	s, err := New(Options{Client: client.Context{}.WithChainID("gpunet-test-1"), Bech32Prefix: "gpunet", Denom: "ugpn", DisplayDenom: "GPN", Exponent: 6})
	if err != nil {
		t.Fatal(err)
	}
	s.lookup = lookup
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func fingerprint(srv *httptest.Server) string {
	sum := sha256.Sum256(srv.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

// TestRelayPassesSignedRequestsUnchanged: the page's signed request
// reaches the provider with its method, path, query, body and signature
// headers as they were signed, over TLS pinned to the chain's hash, and
// nothing else of the browser's (cookies, origin) goes with it.
func TestRelayPassesSignedRequestsUnchanged(t *testing.T) {
	var got *http.Request
	var body string
	prov := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "from the provider")
	}))
	defer prov.Close()
	srv := testServer(t, func(context.Context, string) (providertypes.ProviderView, error) {
		return providertypes.ProviderView{Provider: providertypes.Provider{HostUri: prov.URL, TlsCertSha256: fingerprint(prov)}}, nil
	})
	req, _ := http.NewRequest("PUT", srv.URL+"/api/providers/"+testProvider+"/relay/v1/deployments/o/7/manifest?x=1", strings.NewReader(`{"m":1}`))
	for _, h := range []string{leaseauth.HeaderSigner, leaseauth.HeaderPubKey, leaseauth.HeaderTimestamp, leaseauth.HeaderNonce, leaseauth.HeaderSignature, leaseauth.HeaderGrant} {
		req.Header.Set(h, "v-"+h)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderConsole, "1")
	req.Header.Set("Cookie", "session=secret")
	req.Header.Set("Origin", srv.URL)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted || string(out) != "from the provider" {
		t.Fatalf("relayed answer %d %q", res.StatusCode, out)
	}
	if got == nil || got.Method != "PUT" || got.URL.Path != "/v1/deployments/o/7/manifest" || got.URL.RawQuery != "x=1" || body != `{"m":1}` {
		t.Fatalf("the provider got %+v with body %q", got, body)
	}
	for _, h := range []string{leaseauth.HeaderSigner, leaseauth.HeaderPubKey, leaseauth.HeaderTimestamp, leaseauth.HeaderNonce, leaseauth.HeaderSignature, leaseauth.HeaderGrant} {
		if got.Header.Get(h) != "v-"+h {
			t.Errorf("header %s: %q", h, got.Header.Get(h))
		}
	}
	if got.Header.Get("Cookie") != "" || got.Header.Get("Origin") != "" {
		t.Errorf("browser headers reached the provider: %v", got.Header)
	}
}

// getAPI sends GET path to the console as its page would (with host and
// origin when not empty) and returns the status and error answered.
func getAPI(t *testing.T, srv *httptest.Server, host, origin, path string) (int, apiError) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set(HeaderConsole, "1")
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e apiError
	_ = json.NewDecoder(res.Body).Decode(&e)
	return res.StatusCode, e
}

// relayHealthz asks the console to relay GET /healthz to testProvider.
func relayHealthz(t *testing.T, srv *httptest.Server) (int, apiError) {
	t.Helper()
	return getAPI(t, srv, "", "", "/api/providers/"+testProvider+"/relay/healthz")
}

// TestRelaySaysWhatWentWrong: a certificate that is not the pinned one and
// a provider that does not answer are each said as such, and nothing is
// sent to an impostor.
func TestRelaySaysWhatWentWrong(t *testing.T) {
	reached := false
	impostor := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	defer impostor.Close()
	// The provider's real certificate: not the impostor's (httptest's own).
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(http.NotFoundHandler())
	other.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	other.StartTLS()
	defer other.Close()
	if fingerprint(other) == fingerprint(impostor) {
		t.Fatal("the two test servers share a certificate")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "https://" + ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		name, host, pin, kind, says string
	}{
		{"certificate not the pinned one", impostor.URL, fingerprint(other), "cert_mismatch", "does not match the SHA-256 it registered on chain"},
		{"provider down", down, fingerprint(other), "provider_down", "does not answer"},
		{"host not https", "http://example.com", fingerprint(other), "provider", "not an https URL"},
		{"https without a host", "https:///v1", fingerprint(other), "provider", "not an https URL"},
	} {
		srv := testServer(t, func(context.Context, string) (providertypes.ProviderView, error) {
			return providertypes.ProviderView{Provider: providertypes.Provider{HostUri: c.host, TlsCertSha256: c.pin}}, nil
		})
		code, e := relayHealthz(t, srv)
		if code != http.StatusBadGateway || e.Kind != c.kind || !strings.Contains(e.Message, c.says) {
			t.Errorf("%s: %d %+v, want 502 %s saying %q", c.name, code, e, c.kind, c.says)
		}
	}
	if reached {
		t.Error("the impostor received the request")
	}
	unregistered := testServer(t, func(context.Context, string) (providertypes.ProviderView, error) {
		return providertypes.ProviderView{}, status.Error(codes.NotFound, "provider not found")
	})
	if code, e := relayHealthz(t, unregistered); code != http.StatusNotFound || e.Kind != "provider" || !strings.Contains(e.Message, "is registered on chain") {
		t.Errorf("unregistered provider: %d %+v, want 404 provider saying none is registered", code, e)
	}

	// A provider that answers a page (script in the console's origin) or
	// a redirect gets neither through.
	for _, c := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"html", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<script>alert(1)</script>")
		}},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:26657/", http.StatusTemporaryRedirect)
		}},
	} {
		evil := httptest.NewTLSServer(c.h)
		srv := testServer(t, func(context.Context, string) (providertypes.ProviderView, error) {
			return providertypes.ProviderView{Provider: providertypes.Provider{HostUri: evil.URL, TlsCertSha256: fingerprint(evil)}}, nil
		})
		req, _ := http.NewRequest("GET", srv.URL+"/api/providers/"+testProvider+"/relay/x", nil)
		req.Header.Set(HeaderConsole, "1")
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "<script>") || res.Header.Get("Location") != "" {
			t.Errorf("a provider answering %s: %d %s %v", c.name, res.StatusCode, body, res.Header)
		}
		evil.Close()
	}
}

// TestConsoleAnswersItsOwnPagesOnly: another host name (DNS rebinding)
// and another site's origin are refused; a bad address is a clear 400.
func TestConsoleAnswersItsOwnPagesOnly(t *testing.T) {
	srv := testServer(t, nil)
	do := func(host, origin, path string) (int, apiError) { return getAPI(t, srv, host, origin, path) }
	if code, e := do("attacker.example:8080", "", "/api/chain"); code != http.StatusMisdirectedRequest || !strings.Contains(e.Message, "attacker.example") {
		t.Errorf("another host name: %d %+v", code, e)
	}
	if code, e := do("", "http://attacker.example", "/api/chain"); code != http.StatusForbidden || !strings.Contains(e.Message, "another site") {
		t.Errorf("another origin: %d %+v", code, e)
	}
	if code, e := do("", "", "/api/accounts/cosmos1xyz/balance"); code != http.StatusBadRequest || e.Kind != "address" {
		t.Errorf("a bad address: %d %+v", code, e)
	}
	for _, bad := range []string{"x1", "01", "-1", "18446744073709551616"} {
		if code, e := do("", "", "/api/accounts/"+testProvider+"/deployments/"+bad); code != http.StatusBadRequest || e.Kind != "dseq" {
			t.Errorf("deployment number %q: %d %+v", bad, code, e)
		}
	}
	if code, _ := do("", "", "/api/providers/"+testProvider+"x/relay/healthz"); code != http.StatusBadRequest {
		t.Errorf("a bad provider address: %d", code)
	}
	if code, _ := do("localhost", "", "/"); code != http.StatusOK {
		t.Errorf("the page at localhost: %d", code)
	}
	if code, _ := do("", "null", "/api/chain"); code != http.StatusForbidden {
		t.Errorf("a sandboxed frame's null origin: %d", code)
	}
	// A navigation another site sends the browser to carries no header.
	res, err := http.Get(srv.URL + "/api/chain")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("an API call without the console's header: %d", res.StatusCode)
	}
}

// TestChainInfoForWallets: the wallet's chain entry comes from the
// chain's own parameters.
func TestChainInfoForWallets(t *testing.T) {
	s, err := New(Options{Client: client.Context{}.WithChainID("gpunet-test-1"), Bech32Prefix: "gpunet", Denom: "ugpn", DisplayDenom: "GPN", Exponent: 6,
		GasPrice: sdk.NewDecCoinFromDec("ugpn", sdkDec("0.025"))})
	if err != nil {
		t.Fatal(err)
	}
	info := s.Info("http://127.0.0.1:8080/rpc", "")
	b, _ := json.Marshal(info.Suggest)
	for _, want := range []string{`"chainId":"gpunet-test-1"`, `"bech32PrefixAccAddr":"gpunet"`, `"coinMinimalDenom":"ugpn"`, `"coinDecimals":6`, `"low":0.025`, `"rpc":"http://127.0.0.1:8080/rpc"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("suggested chain lacks %s: %s", want, b)
		}
	}
}

func sdkDec(s string) sdkmath.LegacyDec { return sdkmath.LegacyMustNewDecFromStr(s) }

func TestTrimDec(t *testing.T) {
	for in, want := range map[string]string{"10600.000000000000000000": "10600", "10600.500000": "10600.5", "0.000100": "0.0001", "42": "42", "100": "100"} {
		if got := trimDec(in); got != want {
			t.Errorf("trimDec(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExplainNoBids: what no provider offers is named, need by need; when
// providers could run the order, the page is told why they may not bid.
func TestExplainNoBids(t *testing.T) {
	prov := func(attrs map[string]string, gpus ...providertypes.GPU) providertypes.ProviderView {
		p := providertypes.ProviderView{Provider: providertypes.Provider{Gpus: gpus, Capacity: providertypes.Capacity{CpuMillis: 16000, MemoryBytes: 64 << 30}}, Reliability: sdkmath.LegacyMustNewDecFromStr("0.8")}
		for k, v := range attrs {
			p.Provider.Attributes = append(p.Provider.Attributes, providertypes.Attribute{Key: k, Value: v})
		}
		return p
	}
	h100 := providertypes.GPU{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Interface: "sxm", Count: 2}
	providers := []providertypes.ProviderView{prov(map[string]string{"region": "eu"}, h100), prov(nil)}
	unit := func(models []string, units uint32, mem uint64) markettypes.ResourceUnit {
		return markettypes.ResourceUnit{Count: 1, CpuMillis: 1000, MemoryBytes: 1 << 30, Gpu: markettypes.GPUSpec{Units: units, Models: models, MinMemoryMib: mem}}
	}
	spec := func(u markettypes.ResourceUnit, req ...string) markettypes.GroupSpec {
		g := markettypes.GroupSpec{Name: "g", Resources: []markettypes.ResourceUnit{u}, MaxPrice: sdk.NewDecCoin("ugpn", sdkmath.NewInt(3_000_000))}
		for i := 0; i+1 < len(req); i += 2 {
			g.Requirements = append(g.Requirements, providertypes.Attribute{Key: req[i], Value: req[i+1]})
		}
		return g
	}
	for _, c := range []struct {
		name string
		spec markettypes.GroupSpec
		want string
	}{
		{"a model nobody has", spec(unit([]string{"b200"}, 1, 0)), "no provider offers a GPU of model b200 (offered here: h100 81559 MiB)"},
		{"more memory", spec(unit([]string{"h100"}, 1, 90000)), "no provider has a h100 GPU with at least 90000 MiB"},
		{"more GPUs", spec(unit([]string{"h100"}, 4, 0)), "no provider has 4 h100 GPUs for one replica"},
		{"an attribute", spec(unit(nil, 0, 0), "region", "us"), "no provider has the attribute region=us"},
		{"more CPU", spec(markettypes.ResourceUnit{Count: 1, CpuMillis: 64000, MemoryBytes: 1 << 30}), "no provider has 64000 millicores of CPU"},
		{"not on one provider", spec(unit([]string{"h100"}, 1, 0), "region", "eu"), "1 provider(s) offer what the order asks"},
		{"split needs", spec(markettypes.ResourceUnit{Count: 1, CpuMillis: 1000, MemoryBytes: 1 << 30, Gpu: markettypes.GPUSpec{Units: 1}}, "region", "eu"), "1 provider(s)"},
	} {
		got := strings.Join(explainNoBids(c.spec, providers), "; ")
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if got := explainNoBids(spec(unit(nil, 0, 0)), nil); len(got) != 1 || !strings.Contains(got[0], "no provider is registered") {
		t.Errorf("no providers: %v", got)
	}
	min := sdkmath.LegacyMustNewDecFromStr("0.9")
	s := spec(unit(nil, 0, 0))
	s.MinReliability = &min
	if got := strings.Join(explainNoBids(s, providers), "; "); !strings.Contains(got, "reliability score of at least 0.9 (the best has 0.8)") {
		t.Errorf("min reliability: %q", got)
	}
}
