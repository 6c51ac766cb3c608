package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/leaseauth"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/provider/runtime/imagebuild"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// workloadImage is the runtime tests' workload (provider/runtime/testdata/
// workload): it listens, dials, writes, forks or prints as its flags say.
const workloadImage = "gpunet/workload:e2e"

var (
	buildWorkloadOnce sync.Once
	buildWorkloadErr  error
)

func ensureWorkloadImage(t *testing.T) {
	t.Helper()
	cli := dockerClient(t)
	buildWorkloadOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		buildWorkloadErr = imagebuild.BuildGoImage(ctx, cli, workloadImage, filepath.Join(repoRoot(), "provider", "runtime", "testdata", "workload"))
	})
	if buildWorkloadErr != nil {
		t.Fatalf("build %s: %v", workloadImage, buildWorkloadErr)
	}
}

// svcDef is one service of workloadSDL: its name, its args (a YAML flow
// list's inside) and raw YAML for its expose list ("" for none).
type svcDef struct {
	name, args, expose string
}

// workloadSDL is a deployment of the workload image, one replica of each
// service with 0.5 core, 256 MiB and storage (e.g. "64Mi"), and one GPU of
// gpuModel each when it is not "".
func workloadSDL(storage, gpuModel string, svcs ...svcDef) string {
	var b strings.Builder
	b.WriteString("version: \"2.0\"\nservices:\n")
	for _, s := range svcs {
		fmt.Fprintf(&b, "  %s:\n    image: %s\n    args: [%s]\n", s.name, workloadImage, s.args)
		if s.expose != "" {
			b.WriteString("    expose:\n" + s.expose)
		}
	}
	gpu := ""
	if gpuModel != "" {
		gpu = "\n        gpu:\n          units: 1\n          attributes:\n            vendor:\n              nvidia:\n                - model: " + gpuModel
	}
	fmt.Fprintf(&b, `profiles:
  compute:
    small:
      resources:
        cpu:
          units: 0.5
        memory:
          size: 256Mi
        storage:
          size: %s%s
  placement:
    local:
      pricing:
        small:
          denom: ugpn
          amount: 5000000000
deployment:
`, storage, gpu)
	for _, s := range svcs {
		fmt.Fprintf(&b, "  %s:\n    local:\n      profile: small\n      count: 1\n", s.name)
	}
	return b.String()
}

// serviceContainer is the lease's container of service name.
func serviceContainer(t *testing.T, owner string, dseq uint64, name string) containerInfo {
	t.Helper()
	for _, c := range leaseContainers(t, owner, dseq) {
		if c.Config.Labels["gpunet.service"] == name {
			return c
		}
	}
	t.Fatalf("deployment %d has no container of service %q", dseq, name)
	return containerInfo{}
}

// dialFrom runs the workload's -dial inside a container and reports
// whether the connection was made, with the workload's words.
func dialFrom(t *testing.T, containerID, target string) (bool, string) {
	t.Helper()
	out, _ := exec.Command("docker", "exec", containerID, "/app", "-dial", target, "-dial-timeout", "2s").CombinedOutput()
	s := strings.TrimSpace(string(out))
	switch {
	case strings.Contains(s, ": ok"):
		return true, s
	case strings.Contains(s, ": failed"):
		return false, s
	}
	t.Fatalf("docker exec %s /app -dial %s: %s", containerID, target, s)
	return false, ""
}

// hostListener accepts connections on addr until the test ends, answering
// each with a line; it returns the port.
func hostListener(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "host service")
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// dummyInterface puts addrs on a dummy interface of this host (removed when
// the test ends): stand-ins for a metadata service and a LAN host that
// keep any traffic that gets through on this machine. A kernel without the
// dummy driver gets them on the loopback interface instead, just as local.
func dummyInterface(t *testing.T, name string, addrs ...string) {
	t.Helper()
	run := func(args ...string) {
		if out, err := asRoot("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s (this test needs root, as the provider daemon does)", strings.Join(args, " "), err, out)
		}
	}
	_ = asRoot("ip", "link", "del", name).Run() // left by a killed run
	dev := name
	if err := asRoot("ip", "link", "add", name, "type", "dummy").Run(); err != nil {
		dev = "lo"
		for _, a := range addrs {
			_ = asRoot("ip", "addr", "del", a+"/32", "dev", dev).Run() // left by a killed run
		}
	} else {
		t.Cleanup(func() { _ = asRoot("ip", "link", "del", name).Run() })
	}
	for _, a := range addrs {
		run("addr", "add", a+"/32", "dev", dev)
		if dev == "lo" {
			a := a
			t.Cleanup(func() { _ = asRoot("ip", "addr", "del", a+"/32", "dev", "lo").Run() })
		}
	}
	run("link", "set", dev, "up")
}

// healthz is the daemon's /healthz.
func healthz(t *testing.T, p *providerProc) map[string]any {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: insecureTransport()}
	res, err := hc.Get(p.apiURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var h map[string]any
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHostileEgress: a lease cannot reach the host's services through its
// gateway, a link-local (metadata-like) address, a private LAN address or
// another lease's container, while its own services reach each other. The
// targets are addresses this test puts on a dummy interface, with its own
// listeners, so nothing leaves the machine even if a rule were missing.
// The daemon put the filter in place itself and says so on /healthz.
func TestHostileEgress(t *testing.T) {
	dummyInterface(t, "gpntest0", "169.254.77.1", "10.99.0.1")
	metaPort := hostListener(t, "169.254.77.1:0")
	lanPort := hostListener(t, "10.99.0.1:0")
	hostPort := hostListener(t, "0.0.0.0:0")
	ensureWorkloadImage(t)

	nw := startNetwork(t, 1)
	// Leases run as nobody (runtime.container_user): the inventory and
	// /healthz say they do not run as host root.
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{`container_user: ""`: `container_user: "65534:65534"`}})
	owner := nw.Keys["tenant"]
	iso, _ := healthz(t, prov)["isolation"].(map[string]any)
	if iso["egress_filter"] != "install" || iso["egress_filter_error"] != nil || iso["leases_run_as_host_root"] != false || iso["container_user"] != "65534:65534" {
		t.Fatalf("healthz isolation: %v", iso)
	}
	if inv := prov.inv.Isolation; inv == nil || inv.LeasesRunAsHostRoot || inv.ContainerUser != "65534:65534" || inv.StorageLimit == "" {
		t.Fatalf("inventory isolation: %+v", inv)
	}

	internal := "      - port: 8080\n        to:\n          - service: client\n"
	a, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "",
		svcDef{"web", `"-listen", ":8080"`, internal}, svcDef{"client", `"-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy A: %v\n%s", err, out)
	}
	b, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"web", `"-listen", ":8080"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy B: %v\n%s", err, out)
	}
	client := serviceContainer(t, owner, a.DSeq, "client")
	other := serviceContainer(t, owner, b.DSeq, "web")
	if client.Config.User != "65534:65534" {
		t.Fatalf("lease container runs as %q", client.Config.User)
	}
	var gateway, otherIP string
	for _, n := range client.NetworkSettings.Networks {
		gateway = n.Gateway
	}
	for _, n := range other.NetworkSettings.Networks {
		otherIP = n.IPAddress
	}
	if gateway == "" || otherIP == "" {
		t.Fatalf("gateway %q, other lease's address %q", gateway, otherIP)
	}

	// The lease's own service answers by name (retrying while it starts).
	ok, said := false, ""
	for i := 0; i < 20 && !ok; i++ {
		if ok, said = dialFrom(t, client.ID, "web:8080"); !ok {
			time.Sleep(250 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatalf("the lease's own service is unreachable: %s", said)
	}
	for _, target := range []string{
		net.JoinHostPort(gateway, strconv.Itoa(hostPort)),        // a host service, through the bridge gateway
		net.JoinHostPort("169.254.77.1", strconv.Itoa(metaPort)), // link-local, where cloud metadata lives
		net.JoinHostPort("10.99.0.1", strconv.Itoa(lanPort)),     // a private (LAN) address
		net.JoinHostPort(otherIP, "8080"),                        // another lease's container
	} {
		if ok, said := dialFrom(t, client.ID, target); ok {
			t.Errorf("a lease reached %s: %s", target, said)
		}
	}
	// A single-container lease shares the provider's one network with
	// other single-container leases (B): it still cannot reach them, nor
	// the host through that network's gateway.
	c, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"probe", `"-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy C: %v\n%s", err, out)
	}
	probe := serviceContainer(t, owner, c.DSeq, "probe")
	var sharedGateway string
	for name, n := range probe.NetworkSettings.Networks {
		if _, ok := other.NetworkSettings.Networks[name]; !ok {
			t.Fatalf("C is on %s, B on %v: want one shared network", name, other.NetworkSettings.Networks)
		}
		sharedGateway = n.Gateway
	}
	for _, target := range []string{
		net.JoinHostPort(otherIP, "8080"), // B, on the same bridge
		"web:8080",                        // B's service, by name
		net.JoinHostPort(sharedGateway, strconv.Itoa(hostPort)),  // a host service, through the shared gateway
		net.JoinHostPort("169.254.77.1", strconv.Itoa(metaPort)), // link-local
	} {
		if ok, said := dialFrom(t, probe.ID, target); ok {
			t.Errorf("a lease on the shared network reached %s: %s", target, said)
		}
	}
	// The test can reach all of them itself: the refusals are the filter's.
	for _, target := range []string{fmt.Sprintf("10.99.0.1:%d", lanPort), fmt.Sprintf("169.254.77.1:%d", metaPort), net.JoinHostPort(otherIP, "8080")} {
		c, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			t.Fatalf("the host itself cannot reach %s: %v", target, err)
		}
		c.Close()
	}
}

// TestHostileDiskAndProcesses: a replica writing past its storage size is
// stopped with "no space" while a neighbour lease keeps running, and a
// fork bomb stays inside its lease's process budget.
func TestHostileDiskAndProcesses(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"storage_check_interval: 10s":                                     "storage_check_interval: 1s",
		"lease_pids_limit: 4096     # processes of a whole lease, shared": "lease_pids_limit: 1024     # processes of a whole lease, shared",
		"max_replicas_per_lease: 64":                                      "max_replicas_per_lease: 16",
	}})
	owner := nw.Keys["tenant"]
	iso, _ := healthz(t, prov)["isolation"].(map[string]any)
	if iso["storage_limit"] != "watch" && iso["storage_limit"] != "quota" {
		t.Fatalf("storage limit %v", iso)
	}
	if _, ok := iso["leases_run_as_host_root"].(bool); !ok {
		t.Fatalf("healthz does not say whether leases run as host root: %v", iso)
	}

	neighbour, out, err := deploy(t, nw, writeSDL(t, workloadSDL("64Mi", "", svcDef{"calm", `"-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy neighbour: %v\n%s", err, out)
	}
	filler, out, err := deploy(t, nw, writeSDL(t, workloadSDL("64Mi", "", svcDef{"fill", `"-write-mib", "200", "-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy filler: %v\n%s", err, out)
	}
	deadline := time.Now().Add(60 * time.Second)
	var st string
	for time.Now().Before(deadline) {
		c := serviceContainer(t, owner, filler.DSeq, "fill")
		if c.State.Status == "exited" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	st = leaseStatusText(t, nw, filler.DSeq)
	if !strings.Contains(st, "no space") {
		t.Fatalf("the filler's status does not say no space:\n%s", st)
	}
	if c := serviceContainer(t, owner, filler.DSeq, "fill"); c.State.Status != "exited" {
		t.Fatalf("the filler is %s, want stopped", c.State.Status)
	}
	if c := serviceContainer(t, owner, neighbour.DSeq, "calm"); c.State.Status != "running" {
		t.Fatalf("the neighbour is %s", c.State.Status)
	}

	// A fork bomb: its one replica gets min(pids_limit 512, 1024/1).
	bomb, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"bomb", `"-fork", "5000", "-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy the fork bomb: %v\n%s", err, out)
	}
	c := serviceContainer(t, owner, bomb.DSeq, "bomb")
	var logs []byte
	for i := 0; i < 60; i++ {
		logs, _ = exec.Command("docker", "logs", c.ID).CombinedOutput()
		if strings.Contains(string(logs), "started ") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var started, asked int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(logs)), "started %d of %d", &started, &asked); err != nil {
		t.Fatalf("fork bomb output: %q", logs)
	}
	if started >= 512 || started < 16 {
		t.Fatalf("the fork bomb started %d processes; its budget is 512", started)
	}
	if c := serviceContainer(t, owner, neighbour.DSeq, "calm"); c.State.Status != "running" {
		t.Fatalf("the neighbour is %s after the fork bomb", c.State.Status)
	}
	if h := healthz(t, prov); h["status"] != "ok" {
		t.Fatalf("daemon after the fork bomb: %v", h)
	}
}

// leaseStatusText is `gpunetd lease status` for the tenant's deployment.
func leaseStatusText(t *testing.T, nw *localnet.Network, dseq uint64) string {
	t.Helper()
	out, err := nw.CLI(context.Background(), "lease", "status", strconv.FormatUint(dseq, 10), "--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID)
	if err != nil {
		t.Fatalf("lease status %d: %v\n%s", dseq, err, out)
	}
	return out
}

func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}

// TestHostileRestartKeepsGPUOwnership: the operator stops the daemon while
// a GPU lease runs, changes the config and loses the saved reservations;
// the restarted daemon learns from the running container which GPU is
// taken and never hands that UUID to a second lease.
func TestHostileRestartKeepsGPUOwnership(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "20000000"})
	owner := nw.Keys["tenant"]
	gpuSDL := writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, prov.gpuModel))
	// Lease A gets the second GPU: a first lease takes the first and ends.
	first, out, err := deploy(t, nw, gpuSDL, "--deposit", "20000000ugpn")
	if err != nil {
		t.Fatalf("deploy the first lease: %v\n%s", err, out)
	}
	a, out, err := deploy(t, nw, gpuSDL, "--deposit", "20000000ugpn")
	if err != nil {
		t.Fatalf("deploy A: %v\n%s", err, out)
	}
	held := serviceContainer(t, owner, a.DSeq, "job").Config.Labels["gpunet.gpus"]
	if held == "" || held == serviceContainer(t, owner, first.DSeq, "job").Config.Labels["gpunet.gpus"] {
		t.Fatalf("lease A's container holds GPU %q", held)
	}
	if out, err := nw.CLI(context.Background(), "tx", "market", "close-deployment", strconv.FormatUint(first.DSeq, 10), "--from", "tenant", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close the first lease: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); len(leaseContainers(t, owner, first.DSeq)) > 0; time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first lease's container outlived its close")
		}
	}

	prov.stop(syscall.SIGTERM)
	raw, err := os.ReadFile(prov.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for old, new := range map[string]string{`cpu: "4"`: `cpu: "2"`, "h100: 20000000": "h100: 30000000"} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("provider.yaml lacks %q", old)
		}
		cfg = strings.Replace(cfg, old, new, 1)
	}
	if err := os.WriteFile(prov.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(prov.dir, "data", "reservations.json")); err != nil {
		t.Fatalf("the daemon saved no reservations where expected: %v", err)
	}
	prov.start()

	free := func() []string {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: insecureTransport()}
		res, err := hc.Get(prov.apiURL + "/v1/inventory")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var inv struct {
			FreeGPUs []string `json:"free_gpus"`
		}
		if err := json.NewDecoder(res.Body).Decode(&inv); err != nil {
			t.Fatal(err)
		}
		return inv.FreeGPUs
	}
	if f := free(); len(f) != 1 || f[0] == held {
		t.Fatalf("after the restart the daemon offers GPUs %v; lease A's container holds %s", f, held)
	}
	b, out, err := deploy(t, nw, gpuSDL, "--deposit", "20000000ugpn")
	if err != nil {
		t.Fatalf("deploy B: %v\n%s", err, out)
	}
	if got := serviceContainer(t, owner, b.DSeq, "job").Config.Labels["gpunet.gpus"]; got == "" || got == held {
		t.Fatalf("lease B got GPU %q; lease A holds %s", got, held)
	}
	if f := free(); len(f) != 0 {
		t.Fatalf("both GPUs are leased, yet %v are offered", f)
	}
}

// tlsProxy terminates TLS (ALPN h2, a certificate made for the test) in
// front of a plain-text gRPC backend; it returns its address and the CA
// file that checks it.
func tlsProxy(t *testing.T, backend string) (addr, caFile string) {
	t.Helper()
	certPEM, keyPEM, err := leaseauth.GenerateCert([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c) }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	caFile = filepath.Join(t.TempDir(), "grpc-ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), caFile
}

// rssKiB is a process's resident memory.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// lineStats counts what a log stream delivers: bytes, lines, the longest
// line and how many were cut.
type lineStats struct {
	mu                     sync.Mutex
	bytes, lines, cut, max int
	partial                int
}

func (s *lineStats) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes += len(p)
	for _, b := range p {
		s.partial++
		if b == '\n' {
			s.lines++
			s.max = max(s.max, s.partial)
			s.partial = 0
		}
	}
	s.cut += strings.Count(string(p), "[gpunet: line cut]")
	return len(p), nil
}

// TestHostileClients: strangers flooding the tenant API with fresh keys
// get refusals (never a 5xx) while the real tenant is served; a client
// whose body never ends is disconnected; and a lease printing one endless
// line streams as cut lines while the daemon's memory stays flat. The
// daemon talks to its node's gRPC over TLS throughout.
func TestHostileClients(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	// The daemon reaches its node's gRPC only over TLS here (a proxy with
	// a certificate of the test's own, as an operator would put in front).
	grpcTLS, ca := tlsProxy(t, nw.Nodes[0].GRPCAddr())
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		fmt.Sprintf("grpc: %q", nw.Nodes[0].GRPCAddr()): fmt.Sprintf("grpc: %q", grpcTLS),
		"grpc_tls: false":  "grpc_tls: true",
		`grpc_ca_file: ""`: fmt.Sprintf("grpc_ca_file: %q", ca),
	}})
	owner := nw.Keys["tenant"]
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"loud", `"-endless-line"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	sign := exportKey(t, nw, "tenant")
	cl := api.NewClient(prov.apiURL, nw.Config.ChainID, prov.addr, providerCert(t, nw, prov.addr), owner, sign)
	statusPath := api.LeasePath(owner, res.DSeq, 1, 1, "status")

	// A tenant-signed manifest whose body stops after ten bytes.
	slow := make(chan error, 1)
	var slowTook time.Duration
	stall := make(chan struct{})
	defer close(stall)
	go func() {
		body := []byte(strings.Repeat("x", 100_000))
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write(body[:10])
			<-stall
			_ = pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v1/deployments/%s/%d/manifest", prov.apiURL, owner, res.DSeq), pr)
		req.ContentLength = int64(len(body))
		if err := leaseauth.Sign(req, body, nw.Config.ChainID, prov.addr, owner, sign, time.Now()); err != nil {
			slow <- err
			return
		}
		start := time.Now()
		resp, err := (&http.Client{Transport: insecureTransport(), Timeout: 90 * time.Second}).Do(req)
		slowTook = time.Since(start)
		switch {
		case err != nil:
			slow <- nil // disconnected
		case resp.StatusCode >= 400:
			resp.Body.Close()
			slow <- nil // refused
		default:
			resp.Body.Close()
			slow <- fmt.Errorf("the slow body was accepted: %s", resp.Status)
		}
	}()

	// The flood: 400 requests from another address (127.0.0.2), each
	// signed by a key made for it, for the tenant's lease or the key's own.
	flooder := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				key := secp256k1.GenPrivKey()
				addr := sdk.AccAddress(key.PubKey().Address()).String()
				path := statusPath
				if i%2 == 1 {
					path = api.LeasePath(addr, res.DSeq, 1, 1, "status")
				}
				req, _ := http.NewRequest(http.MethodGet, prov.apiURL+path, nil)
				_ = leaseauth.Sign(req, nil, nw.Config.ChainID, prov.addr, addr, func(msg []byte) ([]byte, cryptotypes.PubKey, error) {
					sig, err := key.Sign(msg)
					return sig, key.PubKey(), err
				}, time.Now())
				code := -1
				if resp, err := flooder.Do(req); err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	served := 0
	for i := 0; i < 400; i++ {
		work <- i
		if i%50 == 0 {
			if _, err := cl.Status(context.Background(), owner, res.DSeq, 1, 1); err != nil {
				t.Errorf("the real tenant during the flood: %v", err)
			} else {
				served++
			}
		}
	}
	close(work)
	wg.Wait()
	for code, n := range codes {
		if code != http.StatusUnauthorized && code != http.StatusNotFound && code != http.StatusTooManyRequests {
			t.Errorf("%d flood requests got %d, want only 401, 404 or 429 (all: %v)", n, code, codes)
		}
	}
	t.Logf("flood: %v; real tenant served %d of 8", codes, served)
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("400 requests from one address were never rate-limited: %v", codes)
	}
	if served != 8 {
		t.Errorf("the real tenant was served %d of 8 times during the flood", served)
	}

	// No work before authentication: an unsigned manifest whose body never
	// ends is refused on its headers, long before the 30 s the server
	// would wait for a body it reads.
	unsignedBody, unsignedEnd := io.Pipe()
	go func() { _, _ = unsignedEnd.Write([]byte("{\"version\":")) }()
	unsigned, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/v1/deployments/%s/%d/manifest", prov.apiURL, owner, res.DSeq), unsignedBody)
	unsigned.ContentLength = 100_000
	began := time.Now()
	resp, err := (&http.Client{Transport: insecureTransport(), Timeout: 40 * time.Second}).Do(unsigned)
	took := time.Since(began)
	_ = unsignedEnd.Close()
	code := 0
	if err == nil {
		code = resp.StatusCode
		resp.Body.Close()
	}
	if code != http.StatusUnauthorized || took > 15*time.Second {
		t.Errorf("an unsigned request with a body that never ends: %d (%v) after %s, want 401 without waiting for the body", code, err, took)
	}

	// One endless line, followed for 8 seconds.
	pid := prov.cmd.Process.Pid
	before := rssKiB(t, pid)
	var stats lineStats
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	_ = cl.Logs(ctx, owner, res.DSeq, 1, 1, "", true, 0, &stats)
	cancel()
	after := rssKiB(t, pid)
	stats.mu.Lock()
	t.Logf("endless line: %d bytes, %d lines, %d cut, longest %d; daemon RSS %d → %d KiB", stats.bytes, stats.lines, stats.cut, stats.max, before, after)
	if stats.bytes < 1<<20 || stats.cut == 0 || stats.max > runtime.MaxLogLine+64 {
		t.Errorf("endless line streamed %d bytes in %d lines (%d cut, longest %d); want over 1 MiB in lines of at most %d", stats.bytes, stats.lines, stats.cut, stats.max, runtime.MaxLogLine)
	}
	stats.mu.Unlock()
	if grew := after - before; grew > 48<<10 {
		t.Errorf("the daemon grew by %d KiB streaming one endless line (%d → %d KiB)", grew, before, after)
	}

	select {
	case err := <-slow:
		if err != nil || slowTook > 45*time.Second {
			t.Errorf("the slow body client: %v after %s, want it cut at the 30 s read timeout", err, slowTook)
		}
	case <-time.After(60 * time.Second):
		t.Error("the slow body client is still connected after a minute")
	}
	if _, err := cl.Status(context.Background(), owner, res.DSeq, 1, 1); err != nil {
		t.Errorf("the real tenant after it all: %v", err)
	}
}
