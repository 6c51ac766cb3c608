package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
)

// The HTTP ingress: a lease's global tcp expose as port 80 is served on
// the provider's ingress address under a default hostname of its own
// (<hash>.<ingress domain>) and the hostnames its SDL accepts, routed by
// the Host header to the replicas' published ports.

// ingressRoute is where one hostname goes.
type ingressRoute struct {
	lease   string // order key
	ref     runtime.LeaseRef
	service string
	port    uint32 // the container port
	opts    *sdl.HTTPOptions
}

// ingressTable maps hostnames to routes; a hostname belongs to one lease.
type ingressTable struct {
	mu      sync.RWMutex
	domain  string
	byHost  map[string]ingressRoute
	byLease map[string][]string
}

func newIngressTable(domain string) *ingressTable {
	return &ingressTable{domain: strings.ToLower(domain), byHost: map[string]ingressRoute{}, byLease: map[string][]string{}}
}

// defaultHost is a lease service's own hostname under the domain.
func (t *ingressTable) defaultHost(lease, service string) string {
	sum := sha256.Sum256([]byte(lease + "/" + service))
	return hex.EncodeToString(sum[:6]) + "." + t.domain
}

// routesOf are the hostnames and routes of a lease's manifest group.
func (t *ingressTable) routesOf(lease string, ref runtime.LeaseRef, g sdl.ManifestGroup) map[string]ingressRoute {
	out := map[string]ingressRoute{}
	for _, s := range g.Services {
		for _, e := range s.Expose {
			if !e.IsIngress() {
				continue
			}
			r := ingressRoute{lease: lease, ref: ref, service: s.Name, port: e.Port, opts: e.HTTPOptions}
			out[t.defaultHost(lease, s.Name)] = r
			for _, h := range e.Hosts {
				out[h] = r
			}
		}
	}
	return out
}

// set replaces a lease's routes; a hostname another lease holds is
// refused, and nothing changes.
func (t *ingressTable) set(lease string, ref runtime.LeaseRef, g sdl.ManifestGroup) error {
	_, err := t.claim([]leaseGroup{{key: lease, ref: ref, group: g}})
	return err
}

// leaseGroup is one lease of a manifest with its group.
type leaseGroup struct {
	key   string
	ref   runtime.LeaseRef
	group sdl.ManifestGroup
}

// claim sets the routes of a manifest's leases in one step: when any of
// their hostnames is another lease's (here or in the same manifest),
// nothing changes. undo puts back the routes those leases had before.
func (t *ingressTable) claim(leases []leaseGroup) (undo func(), err error) {
	routes := make([]map[string]ingressRoute, len(leases))
	for i, l := range leases {
		routes[i] = t.routesOf(l.key, l.ref, l.group)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	wanted := map[string]string{}
	for i, l := range leases {
		for h := range routes[i] {
			if other, ok := t.byHost[h]; ok && other.lease != l.key {
				return nil, fmt.Errorf("hostname %s is served for another lease on this provider", h)
			}
			if other, ok := wanted[h]; ok && other != l.key {
				return nil, fmt.Errorf("hostname %s is asked for by two leases of this deployment", h)
			}
			wanted[h] = l.key
		}
	}
	before := make([]map[string]ingressRoute, len(leases))
	for i, l := range leases {
		before[i] = map[string]ingressRoute{}
		for _, h := range t.byLease[l.key] {
			before[i][h] = t.byHost[h]
		}
		t.replace(l.key, routes[i])
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		for i, l := range leases {
			t.replace(l.key, before[i])
		}
	}, nil
}

// replace puts routes in place of lease's; the caller holds mu.
func (t *ingressTable) replace(lease string, routes map[string]ingressRoute) {
	for _, h := range t.byLease[lease] {
		delete(t.byHost, h)
	}
	hosts := make([]string, 0, len(routes))
	for h, r := range routes {
		t.byHost[h] = r
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	if len(hosts) == 0 {
		delete(t.byLease, lease)
	} else {
		t.byLease[lease] = hosts
	}
}

func (t *ingressTable) remove(lease string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range t.byLease[lease] {
		delete(t.byHost, h)
	}
	delete(t.byLease, lease)
}

// hosts are a lease's hostnames, sorted.
func (t *ingressTable) hosts(lease string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]string(nil), t.byLease[lease]...)
}

func (t *ingressTable) route(host string) (ingressRoute, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.byHost[host]
	return r, ok
}

// ingressProxy serves the table's routes.
type ingressProxy struct {
	table *ingressTable
	rt    Runtime
	next  atomic.Uint64 // round-robin over replicas

	mu     sync.Mutex
	status map[string]cachedStatus // lease → its status, briefly
}

type cachedStatus struct {
	st runtime.LeaseStatus
	at time.Time
}

// statusTTL is how long a lease's replica addresses are reused.
const statusTTL = 2 * time.Second

// backends are the host addresses of the replicas of the route's service
// that publish its port and run.
func (p *ingressProxy) backends(ctx context.Context, r ingressRoute) ([]string, error) {
	p.mu.Lock()
	c, ok := p.status[r.lease]
	p.mu.Unlock()
	if !ok || time.Since(c.at) > statusTTL {
		st, err := p.rt.Status(ctx, r.ref)
		if err != nil {
			return nil, err
		}
		c = cachedStatus{st: st, at: time.Now()}
		p.mu.Lock()
		if len(p.status) >= 256 { // leases come and go: forget stale entries
			for k, v := range p.status {
				if time.Since(v.at) > statusTTL {
					delete(p.status, k)
				}
			}
		}
		p.status[r.lease] = c
		p.mu.Unlock()
	}
	var out []string
	for _, rep := range c.st.Services[r.service] {
		if rep.State != "running" {
			continue
		}
		for _, port := range rep.Ports {
			if uint32(port.ContainerPort) == r.port && port.Proto == "tcp" {
				ip := port.HostIP
				if ip == "" || ip == "0.0.0.0" || ip == "::" {
					ip = "127.0.0.1"
				}
				out = append(out, net.JoinHostPort(ip, fmt.Sprint(port.HostPort)))
			}
		}
	}
	return out, nil
}

func (p *ingressProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host := strings.ToLower(req.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	r, ok := p.table.route(host)
	if !ok {
		http.Error(w, "no lease serves "+host+" on this provider", http.StatusNotFound)
		return
	}
	backends, err := p.backends(req.Context(), r)
	if err != nil || len(backends) == 0 {
		http.Error(w, "the lease's service is not running", http.StatusBadGateway)
		return
	}
	opts := sdl.HTTPOptions{}
	if r.opts != nil {
		opts = *r.opts
	}
	if opts.MaxBodySize > 0 {
		if req.ContentLength > int64(opts.MaxBodySize) {
			http.Error(w, fmt.Sprintf("request body over the route's %d bytes", opts.MaxBodySize), http.StatusRequestEntityTooLarge)
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, int64(opts.MaxBodySize))
	}
	// Requests without a body are tried on the next replica after a failed
	// connection, up to next_tries more (one by default).
	tries := 1
	if req.Body == nil || req.Body == http.NoBody {
		tries += int(max(opts.NextTries, 1))
	}
	start := int(p.next.Add(1))
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = backends[start%len(backends)]
			pr.Out.Host = pr.In.Host // the application sees the name it was called by
		},
		Transport: &retryTransport{backends: backends, start: start, tries: tries, base: ingressTransport(opts)},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			code := http.StatusBadGateway
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "upstream: "+err.Error(), code)
		},
	}
	proxy.ServeHTTP(w, req)
}

// retryTransport sends a request to the next backend when the connection
// to one fails.
type retryTransport struct {
	backends []string
	start    int
	tries    int
	base     http.RoundTripper
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var err error
	for i := 0; i < t.tries; i++ {
		r := req
		if i > 0 {
			r = req.Clone(req.Context())
		}
		r.URL.Host = t.backends[(t.start+i)%len(t.backends)]
		var res *http.Response
		if res, err = t.base.RoundTrip(r); err == nil {
			return res, nil
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return nil, err // only a refused connection is safe to retry
		}
	}
	return nil, err
}

var (
	transportsMu sync.Mutex
	transports   = map[uint64]*http.Transport{}
)

// ingressTransport is the shared transport for a response-header timeout
// (read_timeout, default 60 s).
func ingressTransport(o sdl.HTTPOptions) *http.Transport {
	ms := o.ReadTimeout
	if ms == 0 {
		ms = 60_000
	}
	// Whole seconds, rounded up: at most 61 transports whatever tenants ask.
	secs := (ms + 999) / 1000
	transportsMu.Lock()
	defer transportsMu.Unlock()
	if t, ok := transports[secs]; ok {
		return t
	}
	t := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: time.Duration(secs) * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
	}
	transports[secs] = t
	return t
}

// startIngress serves the ingress on ingress.listen and, over HTTPS, on
// ingress.tls_listen (each unless off).
func (d *Daemon) startIngress(errc chan<- error) error {
	if !d.cfg.IngressOn() {
		return nil
	}
	type listener struct {
		net.Listener
		scheme string
	}
	var lns []listener
	fail := func(err error) error {
		for _, ln := range lns {
			_ = ln.Close() // the error that made us give up is the one to report
		}
		return err
	}
	if addr := d.cfg.Ingress.Listen; addr != "off" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("ingress listen %s (port 80 needs root or CAP_NET_BIND_SERVICE; or set ingress.listen): %w", addr, err))
		}
		lns = append(lns, listener{ln, "http"})
	}
	if addr := d.cfg.Ingress.TLSListen; addr != "off" {
		in := d.cfg.Ingress
		d.ingressCerts = newIngressCerts(in.TLSCert, in.TLSKey, in.CertsDir, d.ingress)
		if err := d.ingressCerts.check(d.ingress.domain); err != nil {
			return fail(err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("ingress tls_listen %s (port 443 needs root or CAP_NET_BIND_SERVICE; or set ingress.tls_listen): %w", addr, err))
		}
		lns = append(lns, listener{tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: d.ingressCerts.getCertificate}), "https"})
	}
	proxy := &ingressProxy{table: d.ingress, rt: d.rt, status: map[string]cachedStatus{}}
	d.ingressSrv = &http.Server{Handler: proxy, ReadHeaderTimeout: apiHeaderTimeout, IdleTimeout: apiIdleTimeout, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)} // failed handshakes are the clients' business
	for _, ln := range lns {
		d.log.Info("ingress listening", "addr", ln.Addr().String(), "scheme", ln.scheme, "domain", d.ingress.domain)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.ingressSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("ingress server stopped: %w", err)
			}
		}()
	}
	return nil
}

// routeLease gives a lease's HTTP exposes their hostnames (after a
// restart, from the stored manifest).
func (d *Daemon) routeLease(key string, ref runtime.LeaseRef, g sdl.ManifestGroup) {
	if err := d.ingress.set(key, ref, g); err != nil {
		d.log.Warn("ingress route refused", "lease", key, "err", err)
	}
}

// leaseURIs are the ingress addresses of a lease: https for each name a
// certificate covers, when the HTTPS ingress is on, and http.
func (d *Daemon) leaseURIs(key string) []string {
	uri := func(scheme, listen, host, defaultPort string) string {
		_, port, _ := net.SplitHostPort(listen)
		if port == defaultPort {
			return scheme + "://" + host + "/"
		}
		return scheme + "://" + net.JoinHostPort(host, port) + "/"
	}
	var out []string
	for _, h := range d.ingress.hosts(key) {
		if d.ingressCerts != nil {
			if _, err := d.ingressCerts.forHost(h); err == nil {
				out = append(out, uri("https", d.cfg.Ingress.TLSListen, h, "443"))
			}
		}
		if d.cfg.Ingress.Listen != "off" {
			out = append(out, uri("http", d.cfg.Ingress.Listen, h, "80"))
		}
	}
	return out
}
