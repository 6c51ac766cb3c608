package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpunet/gpunet/internal/testpki"
)

// shmSDL is a deployment written as Akash users write them: a ram volume
// mounted at /dev/shm, a service that starts after another, lowercase
// size units and an env entry without "=".
const shmSDL = `version: "2.0"
services:
  db:
    image: ` + workloadImage + `
    args: ["-listen", ":5432"]
    env: [DEBUG]
  llm:
    image: ` + workloadImage + `
    args: ["-sleep", "1h"]
    depends_on: [db]
    params:
      storage:
        shm:
          mount: /dev/shm
profiles:
  compute:
    small:
      resources:
        cpu: {units: 0.5}
        memory: {size: 128mi}
        storage: {size: 1gi}
    shm:
      resources:
        cpu: {units: 0.5}
        memory: {size: 256mi}
        storage:
          - size: 1gi
          - name: shm
            size: 192mi
            attributes: {class: ram, persistent: false}
  placement:
    local:
      pricing:
        small: {denom: ugpn, amount: 5000000000}
        shm: {denom: ugpn, amount: 5000000000}
deployment:
  db:
    local: {profile: small, count: 1}
  llm:
    local: {profile: shm, count: 1}
`

// TestShmVolumeAndDependencies: a ram volume at /dev/shm is a shared-memory
// mount of the requested size inside the container, counted in its
// memory limit, and a service listed in another's depends_on is started
// first.
func TestShmVolumeAndDependencies(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	startProvider(t, nw, "2000000000")
	owner := nw.Keys["tenant"]
	res, out, err := deploy(t, nw, writeSDL(t, shmSDL), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	llm := serviceContainer(t, owner, res.DSeq, "llm")
	db := serviceContainer(t, owner, res.DSeq, "db")
	said, _ := exec.Command("docker", "exec", llm.ID, "/app", "-statfs", "/dev/shm").CombinedOutput()
	if want := "statfs /dev/shm: size=" + strconv.Itoa(192<<20); !strings.Contains(string(said), want) {
		t.Fatalf("/dev/shm in the container: %q, want %q", said, want)
	}
	if llm.HostConfig.Memory != (256+192)<<20 {
		t.Fatalf("memory limit %d, want 256Mi + the 192Mi ram volume", llm.HostConfig.Memory)
	}
	if !slices.Contains(db.Config.Env, "DEBUG=") {
		t.Fatalf("db env %v, want DEBUG= for the entry without =", db.Config.Env)
	}
	dbStart, err1 := time.Parse(time.RFC3339Nano, db.State.StartedAt)
	llmStart, err2 := time.Parse(time.RFC3339Nano, llm.State.StartedAt)
	if err1 != nil || err2 != nil || llmStart.Before(dbStart) {
		t.Fatalf("db started %s, llm (depends on db) %s", db.State.StartedAt, llm.State.StartedAt)
	}
}

// TestAuditSignedByServesOnlyAuditedProviders: an order whose placement
// names an auditor under signedBy is bid on and won only by the provider
// that auditor vouched for, though another bids less for everything else;
// once the auditor withdraws, the provider no longer bids on such orders.
func TestAuditSignedByServesOnlyAuditedProviders(t *testing.T) {
	nw := adversarialNetwork(t, "cheap", "auditor")
	audited := startProvider(t, nw, "2000000000")
	cheap := startProviderWith(t, nw, providerOpts{Key: "cheap", GPUPrice: "2000000000", CPUPrice: "10000",
		Edits: map[string]string{"lease_subnets: 10.240.0.0/12": "lease_subnets: 10.224.0.0/12"}})
	auditor := nw.Keys["auditor"]
	txAs(t, nw, "auditor", "tx", "audit", "sign", audited.addr, "region=local")
	out, err := nw.CLI(context.Background(), "query", "audit", "provider", audited.addr, "--output", "json")
	if err != nil || !strings.Contains(out, auditor) || !strings.Contains(out, `"region"`) {
		t.Fatalf("query audit provider: %v\n%s", err, out)
	}

	sdlText := strings.Replace(jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, ""),
		"    local:\n      pricing:", "    local:\n      attributes: {region: local}\n      signedBy:\n        anyOf: ["+auditor+"]\n      pricing:", 1)
	res, out, err := deploy(t, nw, writeSDL(t, sdlText), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if len(res.Leases) != 1 || res.Leases[0].Provider != audited.addr {
		t.Fatalf("leases %+v, want one with the audited provider %s", res.Leases, audited.addr)
	}
	for _, b := range res.Bids {
		if b.Provider == cheap.addr {
			t.Fatalf("the unaudited provider bid: %+v", res.Bids)
		}
	}
	cheap.waitLog(20*time.Second, "bid skipped", "needs the attributes signed by auditors")

	// Without a signedBy the cheaper provider wins, as always.
	plain, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, "")), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy without signedBy: %v\n%s", err, out)
	}
	if len(plain.Leases) != 1 || plain.Leases[0].Provider != cheap.addr {
		t.Fatalf("leases %+v, want the cheaper provider %s", plain.Leases, cheap.addr)
	}

	// The auditor withdraws: nobody may serve the next such order.
	txAs(t, nw, "auditor", "tx", "audit", "revoke", audited.addr)
	_, out, err = deploy(t, nw, writeSDL(t, sdlText), "--deposit", "5000000ugpn", "--wait", "20s")
	if err == nil || strings.Contains(out, `"leases":[{`) {
		t.Fatalf("an order naming a withdrawn auditor got a lease:\n%s", out)
	}
	audited.waitLog(20*time.Second, "bid skipped", "needs the attributes signed by auditors")
}

// TestIngressRoutesByHostname: two leases on one provider are served on
// the provider's one ingress port by the Host header, each under the
// hostname its SDL accepts and under a default name shown by lease status;
// a third lease may not take a hostname another holds, an unknown name gets
// 404, and a closed lease's names stop answering.
func TestIngressRoutesByHostname(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	port, tlsPort := freeLocalPort(t), freeLocalPort(t)
	// The operator's certificates: a wildcard for the default names, and
	// one for a.example.com in certs_dir (b.example.com has none).
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	pki, certs := t.TempDir(), t.TempDir()
	issue := func(certPath, keyPath string, names ...string) {
		c, k, err := ca.Issue(names...)
		if err != nil {
			t.Fatal(err)
		}
		if os.WriteFile(certPath, c, 0o644) != nil || os.WriteFile(keyPath, k, 0o600) != nil {
			t.Fatal("write certificate")
		}
	}
	issue(filepath.Join(pki, "wild.crt"), filepath.Join(pki, "wild.key"), "*.ingress.test")
	issue(filepath.Join(certs, "a.example.com.crt"), filepath.Join(certs, "a.example.com.key"), "a.example.com")
	startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"listen: 0.0.0.0:80         # HTTP ingress": fmt.Sprintf("listen: 127.0.0.1:%d    # HTTP ingress", port),
		`domain: ""                 # leases get`:   `domain: ingress.test       # leases get`,
		`tls_listen: "off"          # HTTPS`:        fmt.Sprintf("tls_listen: 127.0.0.1:%d # HTTPS", tlsPort),
		`tls_cert: ""`:                              "tls_cert: " + filepath.Join(pki, "wild.crt"),
		`tls_key: ""`:                               "tls_key: " + filepath.Join(pki, "wild.key"),
		`certs_dir: ""`:                             "certs_dir: " + certs,
	}})
	web := func(svc, host string) string {
		expose := "      - port: 8080\n        as: 80\n        to:\n          - global: true\n        accept: [" + host + "]\n        http_options: {max_body_size: 1024}\n"
		return workloadSDL("1Gi", "", svcDef{svc, `"-http", ":8080"`, expose})
	}
	a, out, err := deploy(t, nw, writeSDL(t, web("alpha", "a.example.com")), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy alpha: %v\n%s", err, out)
	}
	if _, out, err := deploy(t, nw, writeSDL(t, web("beta", "b.example.com")), "--deposit", "5000000ugpn"); err != nil {
		t.Fatalf("deploy beta: %v\n%s", err, out)
	}
	get := func(host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = host
		for i := 0; ; i++ {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusBadGateway || i >= 40 { // a replica still starting
					return res.StatusCode, string(body)
				}
			} else if i >= 40 {
				t.Fatalf("GET %s: %v", host, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	if code, body := get("a.example.com"); code != 200 || !strings.Contains(body, "hello from alpha-0 for a.example.com") {
		t.Fatalf("a.example.com: %d %q", code, body)
	}
	if code, body := get("b.example.com"); code != 200 || !strings.Contains(body, "hello from beta-0") {
		t.Fatalf("b.example.com: %d %q", code, body)
	}
	if code, _ := get("nobody.example.com"); code != http.StatusNotFound {
		t.Fatalf("an unknown host: %d", code)
	}
	// The default name, as lease status shows it.
	status := leaseStatusText(t, nw, a.DSeq)
	var uri string
	for _, l := range strings.Split(status, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "uri "); ok && strings.HasPrefix(u, "http://") && strings.Contains(u, ".ingress.test") {
			uri = u
		}
	}
	if uri == "" {
		t.Fatalf("lease status shows no ingress URI:\n%s", status)
	}
	host := strings.TrimPrefix(uri, "http://")
	host = host[:strings.IndexAny(host, ":/")]
	if code, body := get(host); code != 200 || !strings.Contains(body, "hello from alpha-0") {
		t.Fatalf("default name %s: %d %q", host, code, body)
	}

	// HTTPS on the same routes: each name with its certificate, verified
	// against the operator's CA; a name without one gets no handshake.
	getTLS := func(name string) (string, string, error) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: name},
		}}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/", tlsPort), nil)
		req.Host = name
		res, err := c.Do(req)
		if err != nil {
			return "", "", err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.TLS.PeerCertificates[0].DNSNames[0], fmt.Sprintf("%d %s", res.StatusCode, body), nil
	}
	if cert, said, err := getTLS("a.example.com"); err != nil || cert != "a.example.com" || !strings.Contains(said, "200 hello from alpha-0 for a.example.com") {
		t.Fatalf("https a.example.com: %v %q %q", err, cert, said)
	}
	if cert, said, err := getTLS(host); err != nil || cert != "*.ingress.test" || !strings.Contains(said, "200 hello from alpha-0") {
		t.Fatalf("https %s: %v %q %q", host, err, cert, said)
	}
	if _, _, err := getTLS("b.example.com"); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Fatalf("https b.example.com (no certificate): %v", err)
	}
	if !strings.Contains(status, "uri https://"+host+":") || !strings.Contains(status, "uri https://a.example.com:") {
		t.Fatalf("lease status lacks the https URIs:\n%s", status)
	}
	// max_body_size: 1024.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/", port), strings.NewReader(strings.Repeat("x", 4096)))
	req.Host = "a.example.com"
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over max_body_size: %v %v", res, err)
	}

	// Another lease may not take a.example.com.
	if _, out, err := deploy(t, nw, writeSDL(t, web("gamma", "a.example.com")), "--deposit", "5000000ugpn", "--wait", "30s"); err == nil || !strings.Contains(out, "a.example.com is served for another lease") {
		t.Fatalf("a second lease took a.example.com: %v\n%s", err, out)
	}
	if code, body := get("a.example.com"); code != 200 || !strings.Contains(body, "alpha-0") {
		t.Fatalf("a.example.com after the refused claim: %d %q", code, body)
	}

	// Closing alpha frees its names.
	if out, err := nw.CLI(context.Background(), "tx", "market", "close-deployment", strconv.FormatUint(a.DSeq, 10), "--from", "tenant", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close alpha: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if code, _ := get("a.example.com"); code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a.example.com still answers after its lease closed")
		}
	}
}

// TestStoragePersistentVolume: a file written to a persistent volume
// survives kill -9 of the daemon (with the volume unmounted meanwhile, as
// by a reboot) and a restart of its container; writing
// past the volume's size fails inside the container with "no space"; and
// the volume is gone once the lease closes. The provider offers the class
// (beta2) on chain and the order asks for it.
func TestStoragePersistentVolume(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	volumes := volumeClassDir(t)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"storage_classes: {}": fmt.Sprintf("storage_classes: {beta2: {path: %s, size: 2Gi}}", volumes),
	}})
	owner := nw.Keys["tenant"]
	sdlText := strings.Replace(workloadSDL("1Gi", "", svcDef{"db", `"-sleep", "1h"`, ""}),
		"        storage:\n          size: 1Gi", "        storage:\n          - size: 1Gi\n          - name: data\n            size: 64Mi\n            attributes: {persistent: true, class: beta2}", 1)
	sdlText = strings.Replace(sdlText, `    args: ["-sleep", "1h"]`, "    args: [\"-sleep\", \"1h\"]\n    params:\n      storage:\n        data: {mount: /data}", 1)
	res, out, err := deploy(t, nw, writeSDL(t, sdlText), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	exec1 := func(args ...string) string {
		t.Helper()
		c := serviceContainer(t, owner, res.DSeq, "db")
		out, _ := exec.Command("docker", append([]string{"exec", c.ID, "/app"}, args...)...).CombinedOutput()
		return string(out)
	}
	if said := exec1("-write-mib", "8", "-write-path", "/data/keep"); !strings.Contains(said, "wrote 8 MiB") {
		t.Fatalf("write to the volume: %s", said)
	}
	// kill -9 of the daemon, then a host reboot as the engine sees it: the
	// container stops, the volume is unmounted, and the engine starts the
	// container again before the daemon is back. Meanwhile it cannot write
	// into the bare mount point (the host's disk); the restarted daemon
	// mounts the volume again and restarts the container onto it.
	prov.stop(syscall.SIGKILL)
	mnts, _ := filepath.Glob(filepath.Join(volumes, "lease-*", "*.mnt"))
	if len(mnts) != 1 {
		t.Fatalf("volume mount points: %v", mnts)
	}
	c0 := serviceContainer(t, owner, res.DSeq, "db")
	if out, err := exec.Command("docker", "stop", "-t", "0", c0.ID).CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	if out, err := exec.Command("umount", mnts[0]).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	if out, err := exec.Command("docker", "start", c0.ID).CombinedOutput(); err != nil {
		t.Fatalf("docker start: %v\n%s", err, out)
	}
	if said := exec1("-write-mib", "1", "-write-path", "/data/stray"); !strings.Contains(said, "operation not permitted") {
		t.Fatalf("a write into the bare mount point: %s", said)
	}
	if stray, _ := os.ReadDir(mnts[0]); len(stray) != 0 {
		t.Fatalf("the bare mount point holds %d entries", len(stray))
	}
	prov.start()
	prov.waitLog(20*time.Second, "persistent volumes mounted again")
	prov.waitLog(20*time.Second, "container restarted onto its re-mounted volume")
	if said := exec1("-stat", "/data/keep"); !strings.Contains(said, "size=8388608") {
		t.Fatalf("after kill -9 of the daemon and a reboot: %s", said)
	}
	// A restart of the container.
	c := serviceContainer(t, owner, res.DSeq, "db")
	if out, err := exec.Command("docker", "restart", "-t", "0", c.ID).CombinedOutput(); err != nil {
		t.Fatalf("docker restart: %v\n%s", err, out)
	}
	if said := exec1("-stat", "/data/keep"); !strings.Contains(said, "size=8388608") {
		t.Fatalf("after a container restart: %s", said)
	}
	// Past the size: the filesystem is full, inside the container.
	if said := exec1("-write-mib", "100", "-write-path", "/data/big"); !strings.Contains(said, "no space left on device") {
		t.Fatalf("writing past 64Mi: %s", said)
	}
	if said := exec1("-write-mib", "1", "-write-path", "/scratch"); strings.Contains(said, "no space") {
		t.Fatalf("the container's own disk is full too: %s", said)
	}
	entries, _ := os.ReadDir(volumes)
	if len(entries) != 1 {
		t.Fatalf("%d lease directories under the class path", len(entries))
	}
	// Closed: the volume is unmounted and gone.
	if out, err := nw.CLI(context.Background(), "tx", "market", "close-deployment", strconv.FormatUint(res.DSeq, 10), "--from", "tenant", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		entries, _ := os.ReadDir(volumes)
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if len(entries) == 0 && !strings.Contains(string(mounts), volumes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the volume outlived its lease: %d entries under %s", len(entries), volumes)
		}
	}
}

// TestGPUInterfaceIsMatched: an SDL naming the GPU interface is served only
// by a provider whose GPUs have it (the test provider declares SXM H100s).
func TestGPUInterfaceIsMatched(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	withInterface := func(iface string) string {
		return strings.Replace(jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, prov.gpuModel),
			"                - model: "+prov.gpuModel, "                - model: "+prov.gpuModel+"\n                  interface: "+iface, 1)
	}
	if _, out, err := deploy(t, nw, writeSDL(t, withInterface("pcie")), "--deposit", "20000000ugpn", "--wait", "15s"); err == nil {
		t.Fatalf("a PCIe order was served by SXM GPUs:\n%s", out)
	}
	prov.waitLog(10*time.Second, "bid skipped", "insufficient gpus")
	res, out, err := deploy(t, nw, writeSDL(t, withInterface("sxm")), "--deposit", "20000000ugpn")
	if err != nil || len(res.Leases) != 1 {
		t.Fatalf("an SXM order: %v\n%s", err, out)
	}

	// The tenant sees which GPU the replica holds, and what the container
	// uses; and the manifest the provider holds, checked against the chain.
	status := leaseStatusText(t, nw, res.DSeq)
	var gpuLine string
	for _, l := range strings.Split(status, "\n") {
		if strings.Contains(l, ": gpu ") {
			gpuLine = l
		}
	}
	if !strings.Contains(gpuLine, "("+prov.gpuModel+")") || !strings.Contains(gpuLine, "GPU-") && !strings.Contains(gpuLine, "declared-") {
		t.Fatalf("lease status names no GPU of the replica:\n%s", status)
	}
	if !strings.Contains(status, "CPU") || !regexp.MustCompile(`\d+\.\d%\s+\d+Mi/256Mi`).MatchString(status) {
		t.Fatalf("lease status shows no CPU and memory use:\n%s", status)
	}
	man, err := nw.CLI(context.Background(), "lease", "manifest", strconv.FormatUint(res.DSeq, 10), "--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID)
	if err != nil || !strings.Contains(man, "matches the chain") || !strings.Contains(man, `"interface"`) && !strings.Contains(man, "gpu_interface") {
		t.Fatalf("lease manifest: %v\n%s", err, man)
	}
}

// volumeClassDir is a temporary directory for a storage class. A test
// that fails before its lease closes leaves volumes mounted there, with
// immutable bare mount points: they are unmounted and freed first, so
// the directory can go.
func volumeClassDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		mnts, _ := filepath.Glob(filepath.Join(dir, "lease-*", "*.mnt"))
		for _, m := range mnts {
			_ = exec.Command("umount", "-l", m).Run() // not mounted: nothing to do
			_ = exec.Command("chattr", "-i", m).Run()
		}
	})
	return dir
}
