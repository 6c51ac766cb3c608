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

// endpoint is where a provider serves its API and the SHA-256 of the
// certificate it registered there.
type endpoint struct {
	owner, host, pin string
}

// answer is an error the console answers with as it is.
type answer struct {
	code int
	apiError
}

// providerEndpoint reads a provider's endpoint from the chain; the error
// is what to answer instead: no such provider (404), the node failing, or
// a registered host that is not an https URL.
func (s *Server) providerEndpoint(ctx context.Context, owner string) (endpoint, *answer) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	view, err := s.lookup(ctx, owner)
	if status.Code(err) == codes.NotFound {
		return endpoint{}, &answer{http.StatusNotFound, apiError{"provider", "no provider " + owner + " is registered on chain"}}
	}
	if err != nil {
		s.log.Warn("node query failed", "err", err)
		return endpoint{}, &answer{http.StatusBadGateway, apiError{"node", "the node did not answer: " + err.Error()}}
	}
	p := view.Provider
	base, err := url.Parse(p.HostUri)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return endpoint{}, &answer{http.StatusBadGateway, apiError{"provider", fmt.Sprintf("provider %s registered host %q, not an https URL", owner, p.HostUri)}}
	}
	return endpoint{owner: owner, host: base.Host, pin: p.TlsCertSha256}, nil
}

// failed says why a request to the provider got no answer: a certificate
// that is not the pinned one (cert_mismatch), or the provider down or slow
// (provider_down).
func (e endpoint) failed(err error) (kind, msg string) {
	switch ne := (net.Error)(nil); {
	case errors.Is(err, leaseauth.ErrCertMismatch) || strings.Contains(err.Error(), leaseauth.ErrCertMismatch.Error()):
		return "cert_mismatch", fmt.Sprintf("provider %s at %s presented a TLS certificate that does not match the SHA-256 it registered on chain (%s…): refusing to talk to it", e.owner, e.host, e.pin[:min(16, len(e.pin))])
	case errors.As(err, &ne) && ne.Timeout():
		return "provider_down", fmt.Sprintf("provider %s at %s timed out: %v", e.owner, e.host, err)
	default:
		return "provider_down", fmt.Sprintf("provider %s at %s does not answer: %v", e.owner, e.host, err)
	}
}

// notData is a provider's answer the relay will not pass on.
type notData string

func (n notData) Error() string { return "the provider answered with " + string(n) }

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
	if !s.validAddress(w, owner, "provider") {
		return
	}
	ep, ans := s.providerEndpoint(r.Context(), owner)
	if ans != nil {
		writeError(w, ans.code, ans.Kind, ans.Message)
		return
	}
	path := "/" + r.PathValue("path")
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL = &url.URL{Scheme: "https", Host: ep.host, Path: path, RawQuery: r.URL.RawQuery}
			out.Host = ep.host
			kept := http.Header{}
			for _, h := range relayHeaders {
				if v := pr.In.Header.Values(h); len(v) > 0 {
					kept[http.CanonicalHeaderKey(h)] = v
				}
			}
			out.Header = kept
		},
		Transport:     leaseauth.PinnedClient(ep.pin, 0).Transport,
		FlushInterval: -1, // logs and events stream as they come
		// What comes back is data for the page, never a page: a provider
		// cannot send HTML or script into the console's origin, set a
		// cookie there, or send the browser elsewhere.
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode >= 300 && res.StatusCode < 400 {
				return notData(fmt.Sprintf("a redirect (%d)", res.StatusCode))
			}
			ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
			switch strings.TrimSpace(strings.ToLower(ct)) {
			case "application/json", "text/plain", "application/x-ndjson", "":
			default:
				return notData(fmt.Sprintf("%q, not data", ct))
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
			kind, msg := ep.failed(err)
			if nd := notData(""); errors.As(err, &nd) {
				kind, msg = "provider", fmt.Sprintf("provider %s: %v; the console passes on data only", owner, err)
			}
			s.log.Warn("relay to provider failed", "provider", owner, "kind", kind, "err", err)
			writeError(w, http.StatusBadGateway, kind, msg)
		},
	}
	proxy.ServeHTTP(w, r)
}
