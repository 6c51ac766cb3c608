package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"

	"github.com/cosmos/cosmos-sdk/types/tx/signing"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/provider/leaseauth"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// MaxManifestBytes bounds a manifest upload.
const MaxManifestBytes = 1 << 20

func (d *Daemon) startAPI(errc chan<- error) error {
	cert, err := tls.LoadX509KeyPair(d.cfg.CertFile(), d.cfg.KeyFile())
	if err != nil {
		return fmt.Errorf("API certificate (%s, %s): %w; run 'gpunet-provider init' to create one", d.cfg.CertFile(), d.cfg.KeyFile(), err)
	}
	ln, err := net.Listen("tcp", d.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("API listen %s: %w", d.cfg.API.Listen, err)
	}
	d.api = d.apiServer(d.routes(d.newVerifier()))
	d.api.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	// At most maxAPIConns connections at once: a flood waits in the
	// kernel's backlog instead of exhausting the daemon's descriptors.
	ln = netutil.LimitListener(ln, maxAPIConns)
	d.log.Info("tenant API listening", "addr", ln.Addr().String())
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.api.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("API server stopped: %w", err)
		}
	}()
	return nil
}

// The tenant API's limits against hostile clients.
const (
	maxAPIConns = 1024
	// A request must send its headers within apiHeaderTimeout and its body
	// within apiReadTimeout: a slow-body client is cut. Responses have no
	// write deadline (log streams run for hours); idle keep-alive
	// connections are closed after apiIdleTimeout.
	apiHeaderTimeout = 10 * time.Second
	apiReadTimeout   = 30 * time.Second
	apiIdleTimeout   = 2 * time.Minute
	// Each client address gets apiRate requests a second, apiBurst at once.
	apiRate  = 20
	apiBurst = 40
)

// apiServer is the tenant API's HTTP server with its timeouts.
func (d *Daemon) apiServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: apiHeaderTimeout, ReadTimeout: apiReadTimeout, IdleTimeout: apiIdleTimeout, MaxHeaderBytes: 32 << 10}
}

// newVerifier checks tenants' signatures; a signer that holds no lease on
// this provider is refused before any nonce of its is kept.
func (d *Daemon) newVerifier() *leaseauth.Verifier {
	v := leaseauth.NewVerifier(d.cfg.Chain.ID, d.provider, d.cfg.API.MaxClockSkew.D())
	v.Serves = d.serves
	v.RevokedBefore = d.revoked.before
	return v
}

// serves reports whether owner holds a lease this daemon manages, or had
// one torn down within the hour its events are kept (so that the tenant
// can read why it ended): asked on every request, strangers' included, so
// it is two map lookups.
func (d *Daemon) serves(owner string) bool {
	d.mu.Lock()
	live := d.owners[owner] > 0
	d.mu.Unlock()
	return live || d.leaseLog.recentOwner(owner)
}

// startMetrics serves /metrics on its own (by default loopback) address:
// what a provider earns and runs is not the public's business.
func (d *Daemon) startMetrics(errc chan<- error) error {
	if d.cfg.API.MetricsListen == "off" {
		return nil
	}
	ln, err := net.Listen("tcp", d.cfg.API.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", d.cfg.API.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	d.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: apiHeaderTimeout, ReadTimeout: apiReadTimeout, IdleTimeout: apiIdleTimeout}
	d.metricsAt = ln.Addr().String()
	d.log.Info("metrics listening", "addr", d.metricsAt)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("metrics server stopped: %w", err)
		}
	}()
	return nil
}

func (d *Daemon) routes(v *leaseauth.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		var height int64
		if d.watcher != nil {
			height = d.watcher.LastHeight()
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "provider": d.provider, "processed_height": height, "isolation": d.isolation()})
	})
	mux.HandleFunc("GET /v1/inventory", d.handleInventory)
	auth := &authorizer{d: d, v: v, keys: map[string]cachedKey{}}
	mux.HandleFunc("PUT /v1/deployments/{owner}/{dseq}/manifest", auth.wrap(d.handleManifest))
	mux.HandleFunc("GET /v1/deployments/{owner}/{dseq}/manifest", auth.wrap(d.handleGetManifest))
	mux.HandleFunc("GET /v1/leases/{owner}/{dseq}/{gseq}/{oseq}/status", auth.wrap(d.handleStatus))
	mux.HandleFunc("GET /v1/leases/{owner}/{dseq}/{gseq}/{oseq}/logs", auth.wrap(d.handleLogs))
	mux.HandleFunc("GET /v1/leases/{owner}/{dseq}/{gseq}/{oseq}/events", auth.wrap(d.handleEvents))
	mux.HandleFunc("POST /v1/leases/{owner}/{dseq}/{gseq}/{oseq}/shell", auth.wrap(d.handleShell))
	// An owner with no lease here (any more) may still revoke its browser
	// sessions, before it leases here again.
	rv := d.newVerifier()
	rv.Serves = nil
	revokeAuth := &authorizer{d: d, v: rv, keys: map[string]cachedKey{}}
	mux.HandleFunc("POST /v1/grants/{owner}/revoke", revokeAuth.wrap(d.handleRevokeGrants))
	return newRateLimit(apiRate, apiBurst).wrap(mux)
}

// rateLimit gives each client address a token bucket: a client that floods
// the API (fresh keys or not) gets 429 while everybody else is served.
type rateLimit struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	by    map[string]*rate.Limiter
}

func newRateLimit(perSecond float64, burst int) *rateLimit {
	return &rateLimit{rate: rate.Limit(perSecond), burst: burst, by: map[string]*rate.Limiter{}}
}

func (l *rateLimit) allow(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	l.mu.Lock()
	lim, ok := l.by[host]
	if !ok {
		if len(l.by) >= 100_000 { // forget everybody rather than grow without bound
			l.by = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.by[host] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

// dropUnreadBody makes a request refused before its body was read close
// its connection with the answer. Otherwise the server reads the body (up
// to 256 KiB) before it answers, to keep the connection: a body that
// never comes would hold the refusal, and the connection, for the whole
// read timeout.
func dropUnreadBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 { // -1: chunked, of unknown length
		w.Header().Set("Connection", "close")
	}
}

func (l *rateLimit) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.allow(r.RemoteAddr) {
			dropUnreadBody(w, r)
			w.Header().Set("Retry-After", "1")
			writeErr(w, http.StatusTooManyRequests, errors.New("too many requests from this address; slow down"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (d *Daemon) handleInventory(w http.ResponseWriter, _ *http.Request) {
	free, freeGPUs := d.engine.Free()
	writeJSON(w, http.StatusOK, map[string]any{
		"provider": d.provider, "source": d.inv.Source, "gpus": d.inv.GPUs,
		"cpu_millis": d.inv.CPUMillis, "memory_bytes": d.inv.MemoryBytes, "storage_bytes": d.inv.StorageBytes,
		"free": free, "free_gpus": freeGPUs, "isolation": d.isolation(),
		// What a tenant pays per hour, as configured (ugpn unless said).
		"prices": map[string]any{"gpu": d.cfg.Pricing.GPUPerHour, "cpu_core": d.cfg.Pricing.CPUCorePerHour,
			"memory_gib": d.cfg.Pricing.MemoryGiBPerHour, "storage_gib": d.cfg.Pricing.StorageGiBPerHour},
	})
}

// authorizer checks that a request is signed by the owner named in its path
// with the key the chain knows for that account.
type authorizer struct {
	d    *Daemon
	v    *leaseauth.Verifier
	mu   sync.Mutex
	keys map[string]cachedKey
}

type cachedKey struct {
	pub []byte
	at  time.Time
}

func (a *authorizer) wrap(h func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refuse := func(err error) {
			a.d.log.Info("api request refused", "path", r.URL.Path, "err", err)
			code := http.StatusUnauthorized
			switch {
			case errors.Is(err, leaseauth.ErrBusy):
				code = http.StatusServiceUnavailable
			case errors.Is(err, leaseauth.ErrNotServed):
				code = http.StatusNotFound // maybe not yet: the tenant retries
			}
			writeErr(w, code, err)
		}
		// The headers first: the body of a request that cannot be
		// authentic is never read.
		hdr, err := a.v.CheckHeaders(r)
		if err != nil {
			dropUnreadBody(w, r)
			refuse(err)
			return
		}
		owner := r.PathValue("owner")
		if hdr.Signer != owner {
			dropUnreadBody(w, r)
			writeErr(w, http.StatusForbidden, fmt.Errorf("signed by %s, but the deployment belongs to %s", hdr.Signer, owner))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxManifestBytes))
		if err != nil {
			writeErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes (or not sent in time)", MaxManifestBytes))
			return
		}
		ver, err := a.v.VerifyBody(r, hdr, body)
		if err != nil {
			refuse(err)
			return
		}
		onChain, err := a.pubKey(r.Context(), owner)
		if err != nil {
			writeErr(w, http.StatusBadGateway, fmt.Errorf("cannot read %s's account from the chain: %v", owner, err))
			return
		}
		if !bytes.Equal(onChain, ver.PubKey.Bytes()) {
			writeErr(w, http.StatusForbidden, errors.New("the signing key is not the key of the owner's account on chain"))
			return
		}
		h(w, r, body)
	}
}

// pubKey reads (and caches for a minute) an account's on-chain public key.
func (a *authorizer) pubKey(ctx context.Context, addr string) ([]byte, error) {
	a.mu.Lock()
	c, ok := a.keys[addr]
	a.mu.Unlock()
	if ok && time.Since(c.at) < time.Minute {
		return c.pub, nil
	}
	pub, err := a.d.chain.AccountPubKey(ctx, addr)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("account has no public key on chain yet")
	}
	a.mu.Lock()
	if len(a.keys) > 10_000 {
		a.keys = map[string]cachedKey{}
	}
	a.keys[addr] = cachedKey{pub: pub, at: time.Now()}
	a.mu.Unlock()
	return pub, nil
}

func (d *Daemon) handleManifest(w http.ResponseWriter, r *http.Request, body []byte) {
	owner := r.PathValue("owner")
	dseq, err := strconv.ParseUint(r.PathValue("dseq"), 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("dseq %q is not a number", r.PathValue("dseq")))
		return
	}
	m, hash, err := parseManifest(body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	res, err := d.chain.Deployment(r.Context(), &markettypes.QueryDeploymentRequest{Owner: owner, Dseq: dseq})
	if err != nil {
		if isNotFound(err) {
			writeErr(w, http.StatusNotFound, fmt.Errorf("deployment %s/%d not found on chain", owner, dseq))
			return
		}
		writeErr(w, http.StatusBadGateway, err)
		return
	}
	if !m.MatchesHash(res.Deployment.ManifestHash) {
		writeErr(w, http.StatusUnprocessableEntity, fmt.Errorf("manifest hash %x does not match the deployment's on-chain hash %x", hash, res.Deployment.ManifestHash))
		return
	}
	hash = res.Deployment.ManifestHash // what the receipts sign: a legacy deployment names the whole manifest's
	var ours []markettypes.Lease
	for _, l := range res.Leases {
		if l.Id.Provider == d.provider {
			ours = append(ours, l)
		}
	}
	if len(ours) == 0 {
		writeErr(w, http.StatusNotFound, fmt.Errorf("this provider holds no lease in deployment %s/%d", owner, dseq))
		return
	}
	groups := make([]sdl.ManifestGroup, len(ours))
	for i, l := range ours {
		var spec markettypes.GroupSpec
		for _, o := range res.Orders {
			if o.Id.Gseq == l.Id.Order.Gseq && o.Id.Oseq == l.Id.Order.Oseq {
				spec = o.Spec
			}
		}
		g, err := groupFor(m, spec)
		if err == nil {
			err = d.checkRegistries(g)
		}
		if err != nil {
			writeErr(w, http.StatusUnprocessableEntity, err)
			return
		}
		groups[i] = g
	}
	// Registry logins stay in memory, for the deploy's pull only: the copy
	// kept on disk has none.
	canonical, err := m.WithoutCredentials().CanonicalJSON()
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	// The leases' hostnames are claimed in one step, so two manifests
	// cannot both take a name; one another lease holds is refused before
	// anything is kept.
	claims := make([]leaseGroup, len(ours))
	for i, l := range ours {
		claims[i] = leaseGroup{key: orderKey(l.Id.Order), ref: l.Id, group: groups[i]}
	}
	undo, err := d.ingress.claim(claims)
	if err != nil {
		writeErr(w, http.StatusUnprocessableEntity, err)
		return
	}
	dep := deploymentKey(owner, dseq)
	if err := d.store.saveManifest(dep, canonical); err != nil {
		undo()
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("store manifest: %v", err))
		return
	}
	out := api.ManifestAccepted{Deployment: dep, Hash: fmt.Sprintf("%x", hash)}
	for i, l := range ours {
		key := orderKey(l.Id.Order)
		out.Leases = append(out.Leases, key)
		rc, err := d.signReceipt(l.Id, hash)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, fmt.Errorf("sign manifest receipt: %v", err))
			return
		}
		out.Receipts = append(out.Receipts, rc)
		d.log.Info("manifest received", "lease", key, "hash", out.Hash)
		lm, err := d.leaseManager(r.Context(), l)
		if err != nil {
			d.log.Warn("cannot start lease yet; reconcile will retry", "lease", key, "err", err)
			continue
		}
		lm.send(inManifest{group: groups[i]})
	}
	writeJSON(w, http.StatusAccepted, out)
}

// signReceipt signs, with the provider's account key, that this provider
// holds the manifest with hash for lease: the tenant's proof against a
// false manifest_missing close.
func (d *Daemon) signReceipt(id markettypes.BidID, hash []byte) (api.Receipt, error) {
	issued := time.Now().Unix()
	sig, _, err := d.keys.Sign(d.keyName, markettypes.ReceiptSignBytes(d.cfg.Chain.ID, id, hash, issued), signing.SignMode_SIGN_MODE_DIRECT)
	if err != nil {
		return api.Receipt{}, err
	}
	return api.Receipt{
		ChainID: d.cfg.Chain.ID, Owner: id.Order.Owner, DSeq: id.Order.Dseq, GSeq: id.Order.Gseq, OSeq: id.Order.Oseq,
		Provider: id.Provider, ManifestHash: fmt.Sprintf("%x", hash), IssuedAt: issued, Signature: sig,
	}, nil
}

// parseManifest decodes a manifest request body, refusing unknown fields
// and anything after the JSON value, and hashes its canonical form.
func parseManifest(body []byte) (sdl.Manifest, []byte, error) {
	var m sdl.Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return sdl.Manifest{}, nil, fmt.Errorf("manifest is not valid JSON of the gpunet manifest format: %v", err)
	}
	if dec.More() {
		return sdl.Manifest{}, nil, errors.New("manifest is followed by more data")
	}
	if err := m.CheckWithheld(); err != nil {
		return sdl.Manifest{}, nil, err
	}
	hash, err := m.Hash()
	if err != nil {
		return sdl.Manifest{}, nil, err
	}
	return m, hash, nil
}

// leaseFromPath finds a live lease of this provider named by the path.
func (d *Daemon) leaseFromPath(w http.ResponseWriter, r *http.Request) (*leaseManager, bool) {
	key := fmt.Sprintf("%s/%s/%s/%s", r.PathValue("owner"), r.PathValue("dseq"), r.PathValue("gseq"), r.PathValue("oseq"))
	l, ok := d.managed(key)
	if !ok || l.view().Phase == PhaseClosed {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no live lease %s on this provider", key))
		return nil, false
	}
	return l, true
}

// handleGetManifest returns the manifest the provider holds for one of
// its deployments (registry logins were never kept), with its hash.
func (d *Daemon) handleGetManifest(w http.ResponseWriter, r *http.Request, _ []byte) {
	owner := r.PathValue("owner")
	dseq, err := strconv.ParseUint(r.PathValue("dseq"), 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("dseq %q is not a number", r.PathValue("dseq")))
		return
	}
	live := false
	for _, m := range d.leaseManagers() {
		if m.ref.Order.Owner == owner && m.ref.Order.Dseq == dseq && m.view().Phase != PhaseClosed {
			live = true
		}
	}
	dep := deploymentKey(owner, dseq)
	raw, err := d.store.loadManifest(dep)
	if !live || err != nil || raw == nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("this provider holds no manifest of a live lease in deployment %s", dep))
		return
	}
	var m sdl.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("stored manifest unreadable: %v", err))
		return
	}
	hash, err := m.HashHex()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, api.HeldManifest{Deployment: dep, Hash: hash, Manifest: raw})
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request, _ []byte) {
	l, ok := d.leaseFromPath(w, r)
	if !ok {
		return
	}
	st, err := d.rt.Status(r.Context(), l.ref)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	v := l.view()
	reps := replicas(st)
	d.describeGPUs(reps, st)
	if r.URL.Query().Get("usage") == "1" {
		d.addUsage(r.Context(), l.ref, reps, st)
	}
	writeJSON(w, http.StatusOK, api.LeaseStatus{Lease: l.key, Provider: d.provider, State: stateName(v.State), Phase: v.Phase.String(),
		Price: api.FormatDecCoin(l.price.Amount.String(), l.price.Denom), Manifest: v.HasManifest, Replicas: reps, URIs: d.leaseURIs(l.key),
		Version: v.Manifest, UpdateError: v.UpdateError, UpdateFor: v.UpdateFor})
}

// describeGPUs names each replica's GPUs with their models.
func (d *Daemon) describeGPUs(reps []api.Replica, st runtime.LeaseStatus) {
	byID := map[string]runtime.ReplicaStatus{}
	for _, rs := range st.Services {
		for _, r := range rs {
			byID[r.ContainerName] = r
		}
	}
	for i := range reps {
		for _, uuid := range byID[reps[i].Container].GPUs {
			g := api.GPU{UUID: uuid}
			for _, inv := range d.inv.GPUs {
				if inv.UUID == uuid {
					g.Model, g.MemoryTotalMiB = inv.Model, inv.MemoryMiB
				}
			}
			reps[i].GPUs = append(reps[i].GPUs, g)
		}
	}
}

// addUsage adds what each running replica uses now: CPU and memory from
// the engine, and, where NVML reads the devices, GPU utilization and
// memory.
func (d *Daemon) addUsage(ctx context.Context, ref runtime.LeaseRef, reps []api.Replica, st runtime.LeaseStatus) {
	byName := map[string]string{} // container name → ID
	for _, rs := range st.Services {
		for _, r := range rs {
			byName[r.ContainerName] = r.ContainerID
		}
	}
	if use, err := d.rt.Usage(ctx, ref); err != nil {
		d.log.Warn("container usage unreadable", "lease", orderKey(ref.Order), "err", err)
	} else {
		for i := range reps {
			if u, ok := use[byName[reps[i].Container]]; ok {
				reps[i].Usage = &api.Usage{CPUPercent: math.Round(u.CPUPercent*10) / 10, MemoryUsedBytes: u.MemoryBytes, MemoryLimitBytes: u.MemoryLimit}
			}
		}
	}
	if d.inv.Source != inventory.SourceNVML {
		return // declared GPUs: no device to read
	}
	var uuids []string
	for _, r := range reps {
		for _, g := range r.GPUs {
			uuids = append(uuids, g.UUID)
		}
	}
	if len(uuids) == 0 {
		return
	}
	gpus, err := inventory.GPUUsage(uuids)
	if err != nil {
		d.log.Warn("GPU usage unreadable", "lease", orderKey(ref.Order), "err", err)
		return
	}
	for i := range reps {
		for j, g := range reps[i].GPUs {
			if u, ok := gpus[g.UUID]; ok {
				util, used := u.UtilizationPercent, u.MemoryUsedMiB
				reps[i].GPUs[j].UtilizationPercent, reps[i].GPUs[j].MemoryUsedMiB = &util, &used
				reps[i].GPUs[j].MemoryTotalMiB = u.MemoryTotalMiB
			}
		}
	}
}

func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request, _ []byte) {
	l, ok := d.leaseFromPath(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	tail := 0
	if s := q.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("tail %q is not a non-negative number", s))
			return
		}
		tail = n
	}
	ctx := r.Context()
	if follow {
		var done func()
		if ctx, w, done = d.followed(w, r, l.key, l.ref.Order.Owner); done == nil {
			return
		}
		defer done()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
		f.Flush()
	}
	if err := d.rt.Logs(ctx, l.ref, q.Get("service"), follow, tail, fw); err != nil && ctx.Err() == nil {
		fmt.Fprintf(fw, "\n[gpunet-provider] log stream ended: %v\n", err)
	}
}

// handleEvents streams a lease's events as JSON lines: those kept, then,
// with follow, new ones until the lease is torn down. A lease closed within
// the last hour still answers (without follow), so its tenant can read
// why it ended; since (RFC 3339) skips older events.
func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request, _ []byte) {
	key := fmt.Sprintf("%s/%s/%s/%s", r.PathValue("owner"), r.PathValue("dseq"), r.PathValue("gseq"), r.PathValue("oseq"))
	m, live := d.managed(key)
	live = live && m.view().Phase != PhaseClosed
	if _, kept := d.leaseLog.ended(key); !live && !kept {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no live or recently closed lease %s on this provider", key))
		return
	}
	q := r.URL.Query()
	follow := (q.Get("follow") == "true" || q.Get("follow") == "1") && live
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("since %q is not an RFC 3339 time", s))
			return
		}
		since = t
	}
	ctx := r.Context()
	past, next := d.leaseLog.events(key), (<-chan api.LeaseEvent)(nil)
	if follow {
		var done func()
		if ctx, w, done = d.followed(w, r, key, m.ref.Order.Owner); done == nil {
			return
		}
		defer done()
		var unsubscribe func()
		past, next, unsubscribe = d.leaseLog.subscribe(key)
		defer unsubscribe()
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fw := &flushWriter{w: w}
	if f, ok := w.(http.Flusher); ok {
		fw.f = f
	}
	enc := json.NewEncoder(fw)
	for _, ev := range past {
		if ev.Time.After(since) {
			if enc.Encode(ev) != nil {
				return
			}
		}
	}
	if fw.f != nil {
		fw.f.Flush()
	}
	for next != nil {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-next:
			if !ok {
				return // the lease was torn down
			}
			if enc.Encode(ev) != nil {
				return
			}
		}
	}
}

// followed takes one of the lease's stream slots for a followed response
// (429 when none is free: done is nil). A stream with nothing to say for
// logIdleTimeout is ended (the client may follow again), so forgotten
// streams do not pile up: its context ends. done gives the slot back.
func (d *Daemon) followed(w http.ResponseWriter, r *http.Request, key, owner string) (context.Context, http.ResponseWriter, func()) {
	release, ok := d.openStream(key, owner)
	if !ok {
		writeErr(w, http.StatusTooManyRequests, fmt.Errorf("too many streams open for this lease (%d) or owner (%d); close one", maxStreamsPerLease, maxStreamsPerOwner))
		return nil, w, nil
	}
	ctx, cancel := context.WithCancel(r.Context())
	after := time.Duration(logIdleTimeout.Load())
	idle := time.AfterFunc(after, cancel)
	return ctx, &idleResetWriter{ResponseWriter: w, timer: idle, after: after}, func() {
		idle.Stop()
		cancel()
		release()
	}
}

// Log streams are bounded: per lease, per owner, and by idleness.
const (
	maxStreamsPerLease = 4
	maxStreamsPerOwner = 16
)

// logIdleTimeout ends a followed log stream that wrote nothing for it
// (atomic: a test shortens it while streams run).
var logIdleTimeout atomic.Int64

func init() { logIdleTimeout.Store(int64(30 * time.Minute)) }

// openStream counts a followed log stream of a lease and its owner,
// refusing one over either cap; release ends it.
func (d *Daemon) openStream(lease, owner string) (release func(), ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.streams == nil {
		d.streams = map[string]int{}
	}
	lk, ok2 := "lease/"+lease, "owner/"+owner
	if d.streams[lk] >= maxStreamsPerLease || d.streams[ok2] >= maxStreamsPerOwner {
		return nil, false
	}
	d.streams[lk]++
	d.streams[ok2]++
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, k := range []string{lk, ok2} {
			if d.streams[k]--; d.streams[k] <= 0 {
				delete(d.streams, k)
			}
		}
	}, true
}

// idleResetWriter restarts the idle timer on every write.
type idleResetWriter struct {
	http.ResponseWriter
	timer *time.Timer
	after time.Duration
}

func (w *idleResetWriter) Write(p []byte) (int, error) {
	w.timer.Reset(w.after)
	return w.ResponseWriter.Write(p)
}

func (w *idleResetWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

func stateName(s markettypes.LeaseState) string {
	switch s {
	case markettypes.LEASE_STATE_PENDING:
		return "pending"
	case markettypes.LEASE_STATE_ACTIVE:
		return "active"
	}
	return "unknown"
}

// replicas turns the runtime's view into the API's, sorted by service and replica.
func replicas(st runtime.LeaseStatus) []api.Replica {
	names := make([]string, 0, len(st.Services))
	for name := range st.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []api.Replica
	for _, name := range names {
		reps := st.Services[name]
		sort.Slice(reps, func(i, j int) bool { return reps[i].Replica < reps[j].Replica })
		for _, r := range reps {
			a := api.Replica{Service: r.Service, Replica: r.Replica, Container: r.ContainerName, Image: r.Image, State: r.State,
				ExitCode: r.ExitCode, Error: r.Error, OOMKilled: r.OOMKilled, Restarts: r.RestartCount}
			if !r.StartedAt.IsZero() {
				t := r.StartedAt
				a.StartedAt = &t
			}
			if !r.FinishedAt.IsZero() {
				t := r.FinishedAt
				a.FinishedAt = &t
			}
			for _, p := range r.Ports {
				a.Ports = append(a.Ports, api.Port{Port: p.ContainerPort, Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort})
			}
			out = append(out, a)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, api.Error{Error: err.Error()})
}
