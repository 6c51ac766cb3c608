package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/internal/clientcodec"
	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/leaseauth"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// The tenant API over HTTP, with requests signed as the tenant CLI signs
// them: the manifest (checked against the chain, answered with a signed
// receipt, handed to the lease's manager), status, logs and the public
// endpoints; and every refusal a stranger or a careless tenant meets.

type apiWorld struct {
	*world
	srv   *httptest.Server
	key   *secp256k1.PrivKey
	owner string
}

func newAPIWorld(t *testing.T) *apiWorld {
	t.Helper()
	w := newWorld(t)
	enc, err := clientcodec.New()
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.NewInMemory(enc.Codec)
	if _, _, err := kr.NewMnemonic("provider", keyring.English, sdk.FullFundraiserPath, keyring.DefaultBIP39Passphrase, hd.Secp256k1); err != nil {
		t.Fatal(err)
	}
	w.d.keys, w.d.keyName = kr, "provider"
	key := secp256k1.GenPrivKey()
	a := &apiWorld{world: w, key: key, owner: sdk.AccAddress(key.PubKey().Address()).String()}
	w.chain.pubKeys[a.owner] = key.PubKey().Bytes()
	a.srv = httptest.NewServer(w.d.routes(w.d.newVerifier()))
	t.Cleanup(a.srv.Close)
	return a
}

// do sends a request signed by key as signer.
func (a *apiWorld) do(method, path string, body []byte, key *secp256k1.PrivKey, signer string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if key != nil {
		sign := signerOf(key)
		if err := leaseauth.Sign(req, body, "gpunet-test-1", testProvider, signer, sign, time.Now()); err != nil {
			a.t.Fatal(err)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// deployment puts the tenant's deployment 7 with our pending lease on the
// fake chain and returns the manifest to send.
func (a *apiWorld) deployment() (markettypes.Lease, []byte) {
	a.t.Helper()
	spec, man, raw := testDeployment(a.t, false, 0)
	hash, err := man.Hash()
	if err != nil {
		a.t.Fatal(err)
	}
	l := testLease(1, markettypes.LEASE_STATE_PENDING)
	l.Id.Order.Owner = a.owner
	o := markettypes.Order{Id: l.Id.Order, State: markettypes.ORDER_STATE_MATCHED, Spec: spec}
	a.chain.orders[orderKey(o.Id)] = o
	a.chain.deployments[deploymentKey(a.owner, 7)] = &markettypes.QueryDeploymentResponse{
		Deployment: markettypes.Deployment{Owner: a.owner, Dseq: 7, ManifestHash: hash}, Orders: []markettypes.Order{o}, Leases: []markettypes.Lease{l},
	}
	return l, raw
}

func TestManifestIsAcceptedWithAReceiptAndRuns(t *testing.T) {
	a := newAPIWorld(t)
	l, raw := a.deployment()
	path := fmt.Sprintf("/v1/deployments/%s/7/manifest", a.owner)
	// Before the daemon has seen the lease, the tenant is not served yet
	// (it retries).
	if code, body := a.do("PUT", path, raw, a.key, a.owner); code != http.StatusNotFound || !strings.Contains(body, "holds no live lease") {
		t.Fatalf("manifest before the lease is seen: %d %s", code, body)
	}
	if _, err := a.d.leaseManager(context.Background(), l); err != nil { // the watcher saw it
		t.Fatal(err)
	}
	code, body := a.do("PUT", path, raw, a.key, a.owner)
	if code != http.StatusAccepted {
		t.Fatalf("manifest: %d %s", code, body)
	}
	var acc api.ManifestAccepted
	if err := json.Unmarshal([]byte(body), &acc); err != nil || len(acc.Receipts) != 1 || acc.Receipts[0].OSeq != 1 {
		t.Fatalf("accepted %s (%v)", body, err)
	}
	a.started(1) // the lease's manager deployed and started it
	started := time.Unix(1_700_000_000, 0)
	a.rt.mu.Lock()
	a.rt.status[l.Id.Order.Name()] = runtime.LeaseStatus{Services: map[string][]runtime.ReplicaStatus{"app": {
		{Service: "app", Replica: 0, State: "running", StartedAt: started, ContainerName: "c0", Ports: []runtime.PortStatus{{ContainerPort: 80, Proto: "tcp", HostIP: "127.0.0.1", HostPort: 30080}}},
		{Service: "app", Replica: 1, State: "exited", StartedAt: started, FinishedAt: started.Add(time.Minute), ExitCode: 1},
	}}}
	a.rt.mu.Unlock()
	status := fmt.Sprintf("/v1/leases/%s/7/1/1/status", a.owner)
	code, body = a.do("GET", status, nil, a.key, a.owner)
	if code != http.StatusOK || !strings.Contains(body, `"phase":"running"`) || !strings.Contains(body, `"manifest_received":true`) || !strings.Contains(body, `30080`) {
		t.Fatalf("status: %d %s", code, body)
	}
	code, body = a.do("GET", fmt.Sprintf("/v1/leases/%s/7/1/1/logs?tail=5&service=app", a.owner), nil, a.key, a.owner)
	if code != http.StatusOK || !strings.Contains(body, "[app] hello") {
		t.Fatalf("logs: %d %s", code, body)
	}
	if code, body = a.do("GET", fmt.Sprintf("/v1/leases/%s/7/1/1/logs?tail=-1", a.owner), nil, a.key, a.owner); code != http.StatusBadRequest {
		t.Errorf("negative tail: %d %s", code, body)
	}
	if code, _ = a.do("GET", fmt.Sprintf("/v1/leases/%s/7/1/2/status", a.owner), nil, a.key, a.owner); code != http.StatusNotFound {
		t.Errorf("status of a lease not here: %d", code)
	}
	_ = l
}

// A tenant whose only lease here was closed for its fault can still read
// the lease's events, and so why (within the hour they are kept); its
// status is gone, and a stranger is refused as before.
func TestClosedLeaseTellsItsTenantWhy(t *testing.T) {
	a := newAPIWorld(t)
	l, raw := a.deployment()
	a.rt.mu.Lock()
	a.rt.pull = func(ctx context.Context, wl runtime.Workload) error {
		return fmt.Errorf("%w: example.com/gone:1 is not on the engine and could not be pulled", runtime.ErrImageUnavailable)
	}
	a.rt.mu.Unlock()
	m, err := a.d.leaseManager(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := a.do("PUT", fmt.Sprintf("/v1/deployments/%s/7/manifest", a.owner), raw, a.key, a.owner); code != http.StatusAccepted {
		t.Fatalf("manifest: %d %s", code, body)
	}
	a.closedAs(markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE)
	a.finish(m, "image_unavailable")

	code, body := a.do("GET", fmt.Sprintf("/v1/leases/%s/7/1/1/events", a.owner), nil, a.key, a.owner)
	if code != http.StatusOK || !strings.Contains(body, `"kind":"deploy_failed"`) || !strings.Contains(body, "example.com/gone:1 is not on the engine") || !strings.Contains(body, "image_unavailable") {
		t.Fatalf("events of the closed lease: %d %s", code, body)
	}
	if code, body := a.do("GET", fmt.Sprintf("/v1/leases/%s/7/1/1/status", a.owner), nil, a.key, a.owner); code != http.StatusNotFound {
		t.Errorf("status of a closed lease: %d %s", code, body)
	}
	stranger := secp256k1.GenPrivKey()
	addr := sdk.AccAddress(stranger.PubKey().Address()).String()
	a.chain.pubKeys[addr] = stranger.PubKey().Bytes()
	if code, body := a.do("GET", fmt.Sprintf("/v1/leases/%s/7/1/1/events", addr), nil, stranger, addr); code != http.StatusNotFound || !strings.Contains(body, "holds no live lease") {
		t.Errorf("a stranger reading events: %d %s", code, body)
	}
}

func TestManifestRefusals(t *testing.T) {
	a := newAPIWorld(t)
	l, raw := a.deployment()
	if _, err := a.d.leaseManager(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/v1/deployments/%s/7/manifest", a.owner)
	stranger := secp256k1.GenPrivKey()
	strangerAddr := sdk.AccAddress(stranger.PubKey().Address()).String()
	other := bytes.Replace(raw, []byte(`app:1`), []byte(`app:2`), 1)
	for name, c := range map[string]struct {
		method, path string
		body         []byte
		key          *secp256k1.PrivKey
		signer       string
		want         int
	}{
		"unsigned":                 {"PUT", path, raw, nil, "", http.StatusUnauthorized},
		"signed by a stranger":     {"PUT", path, raw, stranger, strangerAddr, http.StatusNotFound},
		"a stranger's own path":    {"PUT", fmt.Sprintf("/v1/deployments/%s/7/manifest", strangerAddr), raw, stranger, strangerAddr, http.StatusNotFound},
		"another manifest":         {"PUT", path, other, a.key, a.owner, http.StatusUnprocessableEntity},
		"not JSON":                 {"PUT", path, []byte("version: 2"), a.key, a.owner, http.StatusBadRequest},
		"dseq not a number":        {"PUT", fmt.Sprintf("/v1/deployments/%s/x/manifest", a.owner), raw, a.key, a.owner, http.StatusBadRequest},
		"deployment not on chain":  {"PUT", fmt.Sprintf("/v1/deployments/%s/8/manifest", a.owner), raw, a.key, a.owner, http.StatusNotFound},
		"status of no lease":       {"GET", fmt.Sprintf("/v1/leases/%s/7/1/5/status", a.owner), nil, a.key, a.owner, http.StatusNotFound},
		"body over the size limit": {"PUT", path, make([]byte, MaxManifestBytes+1), a.key, a.owner, http.StatusRequestEntityTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			if code, body := a.do(c.method, c.path, c.body, c.key, c.signer); code != c.want {
				t.Errorf("got %d %s, want %d", code, body, c.want)
			}
		})
	}
	if n := len(a.d.leaseManagers()); n != 1 {
		t.Errorf("refused requests changed the managed leases: %d", n)
	}
	// A manifest the tenant committed to on chain that asks for every GPU
	// of the host through the environment (no SDL parser in between).
	var man sdl.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	man.Groups[0].Services[0].Env = []string{"NVIDIA_VISIBLE_DEVICES=all"}
	hostile, _ := man.CanonicalJSON()
	hash, _ := man.Hash()
	dep := a.chain.deployments[deploymentKey(a.owner, 7)]
	honest := dep.Deployment.ManifestHash
	dep.Deployment.ManifestHash = hash
	if code, body := a.do("PUT", path, hostile, a.key, a.owner); code != http.StatusUnprocessableEntity || !strings.Contains(body, "NVIDIA_VISIBLE_DEVICES is set by the provider") {
		t.Errorf("GPU-widening env: %d %s", code, body)
	}
	dep.Deployment.ManifestHash = honest
	// A deployment of which this provider holds no lease.
	dep.Leases[0].Id.Provider = "gpunet1else"
	if code, body := a.do("PUT", path, raw, a.key, a.owner); code != http.StatusNotFound || !strings.Contains(body, "holds no lease") {
		t.Errorf("no lease here: %d %s", code, body)
	}
}

// A provider sent its own group whole and another group's digest only
// takes the manifest, keeps nothing of the other group and signs the
// chain's hash; its own group withheld, or a withheld group carrying
// services, is refused. A deployment made before group digests (its hash
// the whole manifest's) still takes the whole manifest, and only that.
func TestManifestWithheldGroups(t *testing.T) {
	a := newAPIWorld(t)
	l, raw := a.deployment()
	if _, err := a.d.leaseManager(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	var man sdl.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	secret := man.Groups[0].Services[0]
	secret.Image, secret.Env = "registry.example/team/worker:1", []string{"TOKEN=s3cret-of-the-other-group"}
	man.Groups = append(man.Groups, sdl.ManifestGroup{Name: "other", Services: []sdl.ManifestService{secret}})
	dep := a.chain.deployments[deploymentKey(a.owner, 7)]
	hash, _ := man.Hash()
	dep.Deployment.ManifestHash = hash
	path := fmt.Sprintf("/v1/deployments/%s/7/manifest", a.owner)
	send := func(m sdl.Manifest) (int, string) {
		body, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return a.do("PUT", path, body, a.key, a.owner)
	}
	forUs, _ := man.For(func(i int) bool { return i == 0 })
	code, body := send(forUs)
	if code != http.StatusAccepted || !strings.Contains(body, fmt.Sprintf("%x", hash)) {
		t.Fatalf("our group whole, the other withheld: %d %s", code, body)
	}
	kept, err := a.d.store.loadManifest(deploymentKey(a.owner, 7))
	if err != nil || strings.Contains(string(kept), "s3cret-of-the-other-group") || strings.Contains(string(kept), "registry.example") {
		t.Fatalf("kept manifest (%v): %s", err, kept)
	}
	ourWithheld, _ := man.For(func(i int) bool { return i == 1 })
	if code, body := send(ourWithheld); code != http.StatusUnprocessableEntity || !strings.Contains(body, `group \"dc\" is withheld from this provider, which runs it`) {
		t.Errorf("our own group withheld: %d %s", code, body)
	}
	dressed := forUs
	dressed.Groups = slices.Clone(forUs.Groups)
	dressed.Groups[1].Services = []sdl.ManifestService{secret}
	if code, body := send(dressed); code != http.StatusBadRequest || !strings.Contains(body, "withheld yet lists services") {
		t.Errorf("a withheld group with services: %d %s", code, body)
	}

	legacy, _ := man.LegacyHash()
	dep.Deployment.ManifestHash = legacy
	if code, body := send(forUs); code != http.StatusUnprocessableEntity {
		t.Errorf("a redacted manifest for a legacy deployment: %d %s", code, body)
	}
	code, body = send(man)
	if code != http.StatusAccepted || !strings.Contains(body, fmt.Sprintf(`"manifest_hash":"%x"`, legacy)) {
		t.Errorf("the whole manifest of a legacy deployment: %d %s", code, body)
	}
}

// A request refused on its headers is answered at once, its body unread,
// even when the body never comes: unsigned, signed by a stranger, or for
// another owner's deployment. (The server would otherwise read the body
// before answering, to keep the connection.)
func TestRefusalsDoNotWaitForTheBody(t *testing.T) {
	a := newAPIWorld(t)
	l, _ := a.deployment()
	if _, err := a.d.leaseManager(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	stranger := secp256k1.GenPrivKey()
	strangerAddr := sdk.AccAddress(stranger.PubKey().Address()).String()
	for name, c := range map[string]struct {
		key    *secp256k1.PrivKey
		signer string
		want   int
	}{
		"unsigned":             {nil, "", http.StatusUnauthorized},
		"a stranger":           {stranger, strangerAddr, http.StatusNotFound},
		"another owner's path": {a.key, a.owner, http.StatusForbidden},
	} {
		t.Run(name, func(t *testing.T) {
			path := fmt.Sprintf("/v1/deployments/%s/7/manifest", a.owner)
			if c.want == http.StatusForbidden {
				path = fmt.Sprintf("/v1/deployments/%s/7/manifest", strangerAddr)
			}
			body, never := io.Pipe()
			defer never.Close()
			go func() { _, _ = never.Write([]byte(`{"version":`)) }()
			req, err := http.NewRequest(http.MethodPut, a.srv.URL+path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 100_000
			if c.key != nil {
				if err := leaseauth.Sign(req, make([]byte, 100_000), "gpunet-test-1", testProvider, c.signer, signerOf(c.key), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			// Were the body waited for, the answer would come only once
			// the body is cut, three seconds on.
			began := time.Now()
			cut := time.AfterFunc(3*time.Second, func() { never.CloseWithError(errors.New("the body never came")) })
			defer cut.Stop()
			res, err := http.DefaultClient.Do(req)
			if took := time.Since(began); err != nil || took >= 3*time.Second {
				t.Fatalf("answered after %s (%v): the refusal waited for the body", took, err)
			}
			res.Body.Close()
			if res.StatusCode != c.want {
				t.Errorf("got %d, want %d", res.StatusCode, c.want)
			}
		})
	}
}

func TestPublicEndpoints(t *testing.T) {
	a := newAPIWorld(t)
	for path, want := range map[string]string{"/healthz": `"status":"ok"`, "/v1/inventory": `"free_gpus"`} {
		code, body := a.do("GET", path, nil, nil, "")
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	// Metrics are not public: they have their own (loopback) address.
	if code, _ := a.do("GET", "/metrics", nil, nil, ""); code != http.StatusNotFound {
		t.Errorf("/metrics on the public API: %d", code)
	}
	a.d.cfg.API.MetricsListen = "127.0.0.1:0"
	errc := make(chan error, 1)
	if err := a.d.startMetrics(errc); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.d.shutdown() }()
	res, err := http.Get("http://" + a.d.metricsAt + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d %s", res.StatusCode, body)
	}
	// The daemon's gauges, and its own footprint for the operator.
	for _, name := range []string{"gpunet_provider_leases ", "go_goroutines ", "go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes ", "process_resident_memory_bytes "} {
		if !strings.Contains(string(body), "\n"+name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

// A client flooding the API from one address, with fresh keys each time,
// gets 404 (it holds nothing here; nothing is kept for it) and then 429;
// a tenant at another address is still served.
func TestFloodOfFreshKeysDoesNotStarveTenants(t *testing.T) {
	a := newAPIWorld(t)
	l, _ := a.deployment()
	if _, err := a.d.leaseManager(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	h := a.d.routes(a.d.newVerifier())
	send := func(key *secp256k1.PrivKey, from string) int {
		owner := sdk.AccAddress(key.PubKey().Address()).String()
		req := httptest.NewRequest("GET", fmt.Sprintf("/v1/leases/%s/7/1/1/status", owner), nil)
		req.RemoteAddr = from
		sign := signerOf(key)
		if err := leaseauth.Sign(req, nil, "gpunet-test-1", testProvider, owner, sign, time.Now()); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	codes := map[int]int{}
	for range 3 * apiBurst {
		codes[send(secp256k1.GenPrivKey(), "203.0.113.9:4000")]++
	}
	if codes[http.StatusNotFound] == 0 || codes[http.StatusTooManyRequests] == 0 || codes[http.StatusOK] != 0 {
		t.Errorf("flood answered %v, want 404s then 429s", codes)
	}
	if code := send(a.key, "198.51.100.7:5000"); code != http.StatusOK {
		t.Errorf("the tenant during the flood: %d", code)
	}
}

// A tenant's client (authentic headers) that then dribbles its body is cut
// at the read deadline instead of holding a connection and a goroutine.
func TestSlowBodyIsCut(t *testing.T) {
	a := newAPIWorld(t)
	l, raw := a.deployment()
	if _, err := a.d.leaseManager(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.d.routes(a.d.newVerifier()))
	srv.Config = a.d.apiServer(srv.Config.Handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond // the production value is apiReadTimeout
	srv.Start()
	defer srv.Close()
	path := fmt.Sprintf("/v1/deployments/%s/7/manifest", a.owner)
	req := httptest.NewRequest("PUT", path, nil)
	sign := signerOf(a.key)
	if err := leaseauth.Sign(req, raw, "gpunet-test-1", testProvider, a.owner, sign, time.Now()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: p\r\nContent-Length: %d\r\n", path, len(raw))
	for k := range req.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, req.Header.Get(k))
	}
	fmt.Fprintf(conn, "\r\n%s", raw[:10]) // and the rest never comes
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(conn)
	if time.Since(start) > 3*time.Second {
		t.Fatalf("a slow body held the connection for %s", time.Since(start))
	}
	if strings.Contains(string(reply), " 202 ") {
		t.Fatalf("a truncated body was accepted: %s", reply)
	}
}

// Followed log streams are capped per lease (the next one gets 429 until
// one closes) and end after logIdleTimeout without output.
func TestLogStreamsAreBounded(t *testing.T) {
	a := newAPIWorld(t)
	l, _ := a.deployment()
	if _, err := a.d.leaseManager(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/v1/leases/%s/7/1/1/logs?follow=true", a.owner)
	open := func() (*http.Response, error) {
		req, err := http.NewRequest("GET", a.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		sign := signerOf(a.key)
		if err := leaseauth.Sign(req, nil, "gpunet-test-1", testProvider, a.owner, sign, time.Now()); err != nil {
			t.Fatal(err)
		}
		return http.DefaultClient.Do(req)
	}
	var open4 []*http.Response
	for range maxStreamsPerLease {
		res, err := open()
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", res, err)
		}
		open4 = append(open4, res)
	}
	res, err := open()
	if err != nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("stream over the cap: %v %v", res, err)
	}
	res.Body.Close()
	open4[0].Body.Close() // one client leaves
	eventually(t, "a stream slot freed", func() bool {
		res, err := open()
		if err != nil {
			return false
		}
		ok := res.StatusCode == http.StatusOK
		if ok {
			open4[0] = res
		} else {
			res.Body.Close()
		}
		return ok
	})
	for _, r := range open4 {
		r.Body.Close()
	}
	// An idle stream ends by itself.
	logIdleTimeout.Store(int64(200 * time.Millisecond))
	defer logIdleTimeout.Store(int64(30 * time.Minute))
	eventually(t, "streams released", func() bool {
		a.d.mu.Lock()
		defer a.d.mu.Unlock()
		return len(a.d.streams) == 0
	})
	res, err = open()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", res, err)
	}
	done := make(chan struct{})
	go func() { _, _ = io.ReadAll(res.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("an idle stream was not ended")
	}
	res.Body.Close()
}

// signerOf signs provider API requests with key, as the tenant CLI does.
func signerOf(key *secp256k1.PrivKey) leaseauth.SignFunc {
	return func(msg []byte) ([]byte, cryptotypes.PubKey, error) {
		sig, err := key.Sign(msg)
		return sig, key.PubKey(), err
	}
}
