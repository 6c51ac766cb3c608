package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gpunet/gpunet/provider/leaseauth"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// lookupProvider reads a provider's registered host and certificate pin.
func (s *Server) lookupProvider(ctx context.Context, owner string) (providertypes.ProviderView, error) {
	res, err := providertypes.NewQueryClient(s.opts.Client).Provider(ctx, &providertypes.QueryProviderRequest{Owner: owner})
	if err != nil {
		return providertypes.ProviderView{}, err
	}
	return res.Provider, nil
}

// relayHeaders are the request headers passed to a provider: the
// signature and what the request's body is. Nothing else of the browser's
// (cookies, its origin) goes on.
var relayHeaders = []string{
	leaseauth.HeaderSigner, leaseauth.HeaderPubKey, leaseauth.HeaderTimestamp, leaseauth.HeaderNonce, leaseauth.HeaderSignature, leaseauth.HeaderGrant,
	"Content-Type", "Accept", "Connection", "Upgrade",
}

// relay passes a signed request to a provider unchanged (method, path,
// query, body and signature headers), over TLS pinned to the certificate
// hash the provider registered on chain, and streams the answer back. A
// certificate that does not match the pin, and a provider that does not
// answer, are said as such (kinds cert_mismatch and provider_down).
func (s *Server) relay(w http.ResponseWriter, r *http.Request) {
	owner := r.PathValue("provider")
	if err := checkAddress(owner, s.opts.Bech32Prefix); err != nil {
		writeError(w, http.StatusBadRequest, "provider", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	view, err := s.lookup(ctx, owner)
	cancel()
	p := view.Provider
	if status.Code(err) == codes.NotFound {
		writeError(w, http.StatusNotFound, "provider", "no provider "+owner+" is registered on chain")
		return
	}
	if err != nil {
		s.nodeError(w, err)
		return
	}
	base, err := url.Parse(p.HostUri)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		writeError(w, http.StatusBadGateway, "provider", fmt.Sprintf("provider %s registered host %q, not an https URL", owner, p.HostUri))
		return
	}
	path := "/" + r.PathValue("path")
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL = &url.URL{Scheme: "https", Host: base.Host, Path: path, RawQuery: r.URL.RawQuery}
			out.Host = base.Host
			kept := http.Header{}
			for _, h := range relayHeaders {
				if v := pr.In.Header.Values(h); len(v) > 0 {
					kept[http.CanonicalHeaderKey(h)] = v
				}
			}
			out.Header = kept
		},
		Transport:     leaseauth.PinnedClient(p.TlsCertSha256, 0).Transport,
		FlushInterval: -1, // logs and events stream as they come
		// What comes back is data for the page, never a page: a provider
		// cannot send HTML or script into the console's origin, set a
		// cookie there, or send the browser elsewhere.
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode >= 300 && res.StatusCode < 400 {
				return fmt.Errorf("the provider answered with a redirect (%d)", res.StatusCode)
			}
			ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
			switch strings.TrimSpace(strings.ToLower(ct)) {
			case "application/json", "text/plain", "application/x-ndjson", "":
			default:
				return fmt.Errorf("the provider answered with %q, not data", ct)
			}
			res.Header.Del("Set-Cookie")
			res.Header.Set("Content-Security-Policy", "sandbox; default-src 'none'")
			res.Header.Set("X-Content-Type-Options", "nosniff")
			if res.Header.Get("Content-Type") == "" {
				res.Header.Set("Content-Type", "text/plain; charset=utf-8")
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			kind, msg := "provider_down", fmt.Sprintf("provider %s at %s does not answer: %v", owner, base.Host, err)
			if strings.Contains(err.Error(), "the provider answered with") {
				kind, msg = "provider", fmt.Sprintf("provider %s: %v; the console passes on data only", owner, err)
			} else if errors.Is(err, leaseauth.ErrCertMismatch) || strings.Contains(err.Error(), leaseauth.ErrCertMismatch.Error()) {
				kind = "cert_mismatch"
				msg = fmt.Sprintf("provider %s at %s presented a TLS certificate that does not match the SHA-256 it registered on chain (%s…): refusing to talk to it", owner, base.Host, p.TlsCertSha256[:min(16, len(p.TlsCertSha256))])
			} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
				msg = fmt.Sprintf("provider %s at %s timed out: %v", owner, base.Host, err)
			}
			s.log.Warn("relay to provider failed", "provider", owner, "kind", kind, "err", err)
			writeError(w, http.StatusBadGateway, kind, msg)
		},
	}
	proxy.ServeHTTP(w, r)
}
