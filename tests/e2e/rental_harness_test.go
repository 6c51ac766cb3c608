package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
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

	"github.com/docker/docker/client"

	"github.com/gpunet/gpunet/provider/runtime/imagebuild"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// jobImage is the sample job image, built once from examples/images/gpu-job.
const jobImage = "gpunet/gpu-job:e2e"

var buildImageOnce sync.Once
var buildImageErr error

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		t.Fatalf("Docker engine unreachable (%v): start dockerd (scripts/setup.sh does)", err)
	}
	return cli
}

func ensureJobImage(t *testing.T) {
	t.Helper()
	cli := dockerClient(t)
	buildImageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		buildImageErr = imagebuild.BuildGoImage(ctx, cli, jobImage, filepath.Join(repoRoot(), "examples", "images", "gpu-job"))
	})
	if buildImageErr != nil {
		t.Fatalf("build %s: %v", jobImage, buildImageErr)
	}
}

// providerProc is a running gpunet-provider daemon.
type providerProc struct {
	t       *testing.T
	dir     string
	config  string
	logPath string
	addr    string
	apiURL  string
	// metricsURL is the daemon's Prometheus endpoint (loopback, plain HTTP).
	metricsURL string
	cmd        *exec.Cmd
	// inv is the daemon's inventory; gpuModel the model slug of its GPUs,
	// for SDL files that rent one.
	inv      inventoryReport
	gpuModel string
}

// inventoryReport is `gpunet-provider inventory --json`.
type inventoryReport struct {
	Source        string `json:"source"`
	DriverVersion string `json:"driver_version"`
	NVMLError     string `json:"nvml_error"`
	GPUs          []struct {
		UUID      string `json:"uuid"`
		Model     string `json:"model"`
		MemoryMiB uint64 `json:"memory_mib"`
		Interface string `json:"interface"`
		Healthy   bool   `json:"healthy"`
	} `json:"gpus"`
	// Isolation is how the host contains leases (from the Docker engine).
	Isolation *struct {
		LeasesRunAsHostRoot bool   `json:"leases_run_as_host_root"`
		ContainerUser       string `json:"container_user"`
		StorageLimit        string `json:"storage_limit"`
	} `json:"isolation"`
}

// startProvider initialises, registers and runs a provider daemon for the
// network's "provider" key. Every GPU is priced at gpuPrice ugpn/h: the GPUs
// NVML detects when this host has an NVIDIA driver, otherwise two declared
// h100s, and the chain record must say which (gpu-inventory=nvml or
// declared). Its containers are removed when the test ends.
func startProvider(t *testing.T, nw *localnet.Network, gpuPrice string) *providerProc {
	t.Helper()
	return startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: gpuPrice})
}

// providerOpts say whose daemon to start and how it differs from the
// default test provider.
type providerOpts struct {
	Key      string // the account, a key of nw's keyring
	GPUPrice string // ugpn per GPU-hour
	CPUPrice string // ugpn per core-hour; "" is 20000
	// Edits replace more lines of provider.yaml (old → new).
	Edits map[string]string
	// Kube: the daemon runs leases on the local Kubernetes cluster (its
	// inventory is the cluster's, not NVML's or the declared GPUs).
	Kube bool
}

// startProviderWith is startProvider for any account and config.
func startProviderWith(t *testing.T, nw *localnet.Network, o providerOpts) *providerProc {
	t.Helper()
	if !o.Kube {
		ensureJobImage(t)
	}
	node := nw.Nodes[0]
	port := freeLocalPort(t)
	if o.CPUPrice == "" {
		o.CPUPrice = "20000"
	}
	gpuPrice := o.GPUPrice
	p := &providerProc{t: t, dir: t.TempDir(), addr: nw.Keys[o.Key], apiURL: fmt.Sprintf("https://127.0.0.1:%d", port)}
	metricsPort := freeLocalPort(t)
	p.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	p.config = filepath.Join(p.dir, "provider.yaml")
	p.logPath = filepath.Join(p.dir, "daemon.log")
	p.exec("init", "--chain-id", nw.Config.ChainID, "--key", o.Key, "--keyring-backend", "test", "--host-uri", p.apiURL,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--rpc", node.RPCURL(), "--grpc", node.GRPCAddr())
	raw, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	edits := map[string]string{
		`keyring_dir: ""`:                           fmt.Sprintf("keyring_dir: %q", nw.KeyringHome()),
		"publish_host: 0.0.0.0":                     "publish_host: 127.0.0.1",
		"pull_images: true":                         "pull_images: false",
		"declared: []":                              "declared:\n    - {model: h100, memory_mib: 81559, interface: sxm, count: 2}",
		"reconcile_interval: 30s":                   "reconcile_interval: 3s",
		"withdraw_interval: 1h":                     "withdraw_interval: 10s",
		"h100: 2000000":                             "h100: " + gpuPrice,
		"a100: 1200000":                             "a100: " + gpuPrice,
		"rtx4090: 400000":                           "rtx4090: " + gpuPrice,
		"default: 1000000":                          "default: " + gpuPrice,
		"cpu_core_per_hour: 10000":                  "cpu_core_per_hour: " + o.CPUPrice,
		"metrics_listen: 127.0.0.1:9465":            fmt.Sprintf("metrics_listen: 127.0.0.1:%d", metricsPort),
		`cpu: ""                    # cores`:        `cpu: "4"                   # cores`,
		"listen: 0.0.0.0:80         # HTTP ingress": `listen: "off"              # HTTP ingress`,
	}
	for old, new := range o.Edits {
		edits[old] = new
	}
	for old, new := range edits {
		if !strings.Contains(cfg, old) {
			t.Fatalf("provider.yaml template lacks %q", old)
		}
		cfg = strings.Replace(cfg, old, new, 1)
	}
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 && strings.Contains(cfg, "egress_filter: install") {
		// Not root: the lease egress filter is installed through sudo, as
		// an operator whose daemon runs unprivileged would, and verified.
		if out, err := asRoot("sh", "-c", p.exec("egress", "rules")).CombinedOutput(); err != nil {
			t.Fatalf("install the egress filter (the e2e tests need root or passwordless sudo): %v\n%s", err, out)
		}
		cfg = strings.Replace(cfg, "egress_filter: install", "egress_filter: verify", 1)
		if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := json.Unmarshal([]byte(localnet.LastJSON(p.exec("inventory", "--json"))), &p.inv); err != nil {
		t.Fatalf("inventory --json: %v", err)
	}
	out := p.exec("register")
	if !strings.Contains(out, "registered in block") {
		t.Fatalf("register output:\n%s", out)
	}
	if o.Kube {
		if p.inv.Source != "kubernetes" || !strings.Contains(out, "inventory kubernetes") {
			t.Fatalf("a provider on Kubernetes: inventory %+v, register output:\n%s", p.inv, out)
		}
		for _, g := range p.inv.GPUs {
			p.gpuModel = g.Model
		}
	} else {
		p.gpuModel = checkInventory(t, nw, p, out)
	}
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if !o.Kube {
			removeProviderContainers(t, p.addr)
		}
		if t.Failed() {
			dumpLogTail(t, p.logPath)
		}
	})
	p.start()
	return p
}

// asRoot runs a command as root: directly when the tests are root, else
// through passwordless sudo.
func asRoot(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command(name, args...)
	}
	return exec.Command("sudo", append([]string{"-n", name}, args...)...)
}

func (p *providerProc) exec(args ...string) string {
	p.t.Helper()
	cmd := exec.Command(providerBin, append([]string{"--config", p.config}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("gpunet-provider %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs the daemon and waits until its API answers.
func (p *providerProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(providerBin, "--config", p.config, "run")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// The daemon's collector settings come from its config, as on a
	// provider's host, not from whatever this test's environment holds.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close() }()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := hc.Get(p.apiURL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	dumpLogTail(p.t, p.logPath)
	p.t.Fatal("provider API did not come up within 30s")
}

// stop signals the daemon and waits for it to exit.
func (p *providerProc) stop(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && p.cmd.ProcessState == nil {
		if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.cmd = nil
}

// log returns the daemon's log so far.
func (p *providerProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// logAfter is what the daemon logged past offset from (a length of log()).
func (p *providerProc) logAfter(from int) string {
	log := p.log()
	if from > len(log) {
		return ""
	}
	return log[from:]
}

// waitLog waits until the daemon has logged a line containing every part.
func (p *providerProc) waitLog(timeout time.Duration, parts ...string) string {
	p.t.Helper()
	return p.waitLogAfter(0, timeout, parts...)
}

// waitLogAfter is waitLog over what the daemon logged past offset from.
func (p *providerProc) waitLogAfter(from int, timeout time.Duration, parts ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if line, ok := findLine(p.logAfter(from), parts); ok {
			return line
		}
		time.Sleep(200 * time.Millisecond)
	}
	dumpLogTail(p.t, p.logPath)
	p.t.Fatalf("provider never logged a line with %q", parts)
	return ""
}

// findLine returns the first line of log that contains every part.
func findLine(log string, parts []string) (string, bool) {
	for _, line := range strings.Split(log, "\n") {
		if lineHas(line, parts) {
			return line, true
		}
	}
	return "", false
}

// lineHas reports whether a log line contains every part.
func lineHas(line string, parts []string) bool {
	for _, part := range parts {
		if !strings.Contains(line, part) {
			return false
		}
	}
	return true
}

func removeProviderContainers(t *testing.T, provider string) {
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=gpunet.provider="+provider).Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
	out, _ = exec.Command("docker", "network", "ls", "-q", "--filter", "label=gpunet.provider="+provider).Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		_ = exec.Command("docker", append([]string{"network", "rm"}, ids...)...).Run()
	}
}

// leaseContainers lists the containers of a tenant's deployment on the engine.
func leaseContainers(t *testing.T, owner string, dseq uint64) []containerInfo {
	t.Helper()
	// A container the daemon removes between the listing and the inspect
	// makes inspect fail: list again.
	for attempt := 0; ; attempt++ {
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=gpunet.owner="+owner, "--filter", fmt.Sprintf("label=gpunet.dseq=%d", dseq)).Output()
		if err != nil {
			t.Fatal(err)
		}
		ids := strings.Fields(string(out))
		if len(ids) == 0 {
			return nil
		}
		raw, err := exec.Command("docker", append([]string{"inspect"}, ids...)...).Output()
		if err != nil {
			if attempt < 5 {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			t.Fatalf("docker inspect %v: %v", ids, err)
		}
		var infos []containerInfo
		if err := json.Unmarshal(raw, &infos); err != nil {
			t.Fatal(err)
		}
		return infos
	}
}

type containerInfo struct {
	ID           string `json:"Id"`
	Name         string `json:"Name"`
	RestartCount int    `json:"RestartCount"`
	State        struct {
		Status    string `json:"Status"`
		ExitCode  int    `json:"ExitCode"`
		StartedAt string `json:"StartedAt"`
	} `json:"State"`
	HostConfig struct {
		NanoCpus    int64    `json:"NanoCpus"`
		Memory      int64    `json:"Memory"`
		PidsLimit   *int64   `json:"PidsLimit"`
		Privileged  bool     `json:"Privileged"`
		CapDrop     []string `json:"CapDrop"`
		NetworkMode string   `json:"NetworkMode"`
		Runtime     string   `json:"Runtime"`
	} `json:"HostConfig"`
	Config struct {
		Env    []string          `json:"Env"`
		Labels map[string]string `json:"Labels"`
		User   string            `json:"User"`
	} `json:"Config"`
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
			Gateway   string `json:"Gateway"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

func freeLocalPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// deployResult is `gpunetd deploy -o json`.
type deployResult struct {
	Owner   string `json:"owner"`
	DSeq    uint64 `json:"dseq"`
	Height  int64  `json:"height"`
	Fee     string `json:"fee"`
	Deposit struct {
		Amount string `json:"amount"`
	} `json:"deposit"`
	Bids []struct {
		Provider string `json:"provider"`
		Price    string `json:"price_per_hour"`
	} `json:"bids"`
	Leases []struct {
		ID       string `json:"id"`
		Provider string `json:"provider"`
		Price    string `json:"price_per_hour"`
		Replicas []struct {
			Service string `json:"service"`
			State   string `json:"state"`
		} `json:"replicas"`
	} `json:"leases"`
	Closed []struct {
		Reason string `json:"reason"`
	} `json:"closed"`
	Settlement *struct {
		TenantPaid     coin `json:"tenant_paid"`
		ProviderEarned coin `json:"provider_earned"`
		StakersTake    coin `json:"stakers_take"`
		Refunded       coin `json:"refunded"`
	} `json:"settlement"`
}

type coin struct {
	Amount string `json:"amount"`
}

// deploy runs `gpunetd deploy` as the tenant; it returns the JSON result,
// the progress/log output, and the command's error.
func deploy(t *testing.T, nw *localnet.Network, sdlPath string, args ...string) (deployResult, string, error) {
	t.Helper()
	full := append([]string{"deploy", sdlPath, "--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID,
		"--home", nw.KeyringHome(), "--node", nw.Nodes[0].RPCAddr(), "--output", "json"}, args...)
	cmd := exec.Command(gpunetd, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res deployResult
	if jerr := json.Unmarshal([]byte(localnet.LastJSON(stdout.String())), &res); jerr != nil && err == nil {
		t.Fatalf("decode deploy output: %v\n%s\n%s", jerr, stdout.String(), stderr.String())
	}
	if err != nil {
		return res, stderr.String() + stdout.String(), err
	}
	return res, stderr.String(), nil
}

// deployOutcome is what deploy returned.
type deployOutcome struct {
	res deployResult
	out string
	err error
}

// deployAsync runs deploy in a goroutine; its outcome arrives on the
// channel.
func deployAsync(t *testing.T, nw *localnet.Network, sdlPath string, args ...string) <-chan deployOutcome {
	done := make(chan deployOutcome, 1)
	go func() {
		res, out, err := deploy(t, nw, sdlPath, args...)
		done <- deployOutcome{res, out, err}
	}()
	return done
}

// writeSDL writes an SDL file into the test's temp dir.
func writeSDL(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "deploy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// moduleBalance is the ugpn balance of a module account.
func moduleBalance(t *testing.T, nw *localnet.Network, module string) int64 {
	t.Helper()
	return balanceCLI(t, nw, nw.Nodes[0], moduleAddress(t, nw, module))
}

// moduleAddress is the address of a module account.
func moduleAddress(t *testing.T, nw *localnet.Network, module string) string {
	t.Helper()
	var acc struct {
		Account struct {
			Value struct {
				Address string `json:"address"`
			} `json:"value"`
			BaseAccount struct {
				Address string `json:"address"`
			} `json:"base_account"`
		} `json:"account"`
	}
	out, err := nw.CLI(context.Background(), "query", "auth", "module-account", module, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	raw := localnet.LastJSON(out)
	if err := json.Unmarshal([]byte(raw), &acc); err != nil {
		t.Fatalf("decode module account: %v\n%s", err, raw)
	}
	addr := acc.Account.Value.Address
	if addr == "" {
		addr = acc.Account.BaseAccount.Address
	}
	if addr == "" {
		var generic map[string]any
		_ = json.Unmarshal([]byte(raw), &generic)
		addr = findAddress(generic)
	}
	if addr == "" {
		t.Fatalf("no address for module %s in %s", module, raw)
	}
	return addr
}

func findAddress(v any) string {
	switch x := v.(type) {
	case map[string]any:
		if a, ok := x["address"].(string); ok {
			return a
		}
		for _, e := range x {
			if a := findAddress(e); a != "" {
				return a
			}
		}
	}
	return ""
}

// nvidiaDriverPresent is the test's own look at the host, independent of the
// daemon's: NVML can start when the NVIDIA kernel driver's control device
// exists and the dynamic loader finds libnvidia-ml.so.1.
func nvidiaDriverPresent() bool {
	if _, err := os.Stat("/dev/nvidiactl"); err != nil {
		return false
	}
	for _, ldconfig := range []string{"ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"} {
		if out, err := exec.Command(ldconfig, "-p").Output(); err == nil && strings.Contains(string(out), "libnvidia-ml.so.1") {
			return true
		}
	}
	dirs := append(filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")), "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
		"/usr/lib64", "/usr/lib", "/lib64", "/lib", "/usr/local/nvidia/lib64")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "libnvidia-ml.so.1")); err == nil {
			return true
		}
	}
	return false
}

// flexInt decodes a JSON integer written as a number or as a string.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(strings.Trim(string(b), `"`), 10, 64)
	*f = flexInt(v)
	return err
}

// checkInventory asserts that the daemon's inventory, the register output
// and the chain record agree with the host: GPUs detected by NVML and
// marked gpu-inventory=nvml when an NVIDIA driver is present, the two
// declared h100s marked gpu-inventory=declared when not (or when the daemon
// was built without cgo and cannot use NVML). It returns the model slug to
// rent.
func checkInventory(t *testing.T, nw *localnet.Network, p *providerProc, registerOut string) string {
	t.Helper()
	var rec struct {
		Provider struct {
			Provider struct {
				Attributes []struct {
					Key   string `json:"key"`
					Value string `json:"value"`
				} `json:"attributes"`
				GPUs []struct {
					Vendor    string  `json:"vendor"`
					Model     string  `json:"model"`
					MemoryMiB flexInt `json:"memory_mib"`
					Interface string  `json:"interface"`
					Count     flexInt `json:"count"`
				} `json:"gpus"`
			} `json:"provider"`
		} `json:"provider"`
	}
	cli(t, nw, nw.Nodes[0], &rec, "query", "provider", "provider", p.addr, "--output", "json")
	marking := ""
	for _, a := range rec.Provider.Provider.Attributes {
		if a.Key == "gpu-inventory" {
			marking = a.Value
		}
	}
	onChain := rec.Provider.Provider.GPUs
	inv := p.inv
	cgoOff := strings.Contains(inv.NVMLError, "CGO_ENABLED=0")
	if nvidiaDriverPresent() && !cgoOff {
		// Detected: real devices, the chain says nvml, nothing declared.
		models := map[string]int64{}
		for _, g := range inv.GPUs {
			if strings.HasPrefix(g.UUID, "declared-") {
				t.Fatalf("NVIDIA driver present but the inventory holds declared GPU %s: %+v", g.UUID, inv)
			}
			if g.Healthy {
				models[g.Model]++
			}
		}
		if inv.Source != "nvml" || inv.DriverVersion == "" || inv.NVMLError != "" || len(models) == 0 {
			t.Fatalf("NVIDIA driver present: want healthy GPUs detected by NVML, inventory says %+v", inv)
		}
		if !strings.Contains(registerOut, "inventory nvml") || strings.Contains(registerOut, "declared") {
			t.Fatalf("register output with NVML GPUs:\n%s", registerOut)
		}
		if marking != "nvml" {
			t.Fatalf("chain record marks gpu-inventory=%q, want nvml", marking)
		}
		for _, g := range onChain {
			models[g.Model] -= int64(g.Count)
		}
		for m, n := range models {
			if n != 0 {
				t.Fatalf("chain record GPUs %+v differ from NVML's healthy GPUs (%s off by %d)", onChain, m, n)
			}
		}
		for _, g := range inv.GPUs {
			if g.Healthy {
				return g.Model
			}
		}
	}
	// No driver: the declared h100s, marked as declared everywhere.
	if inv.Source != "declared" || inv.NVMLError == "" || len(inv.GPUs) != 2 {
		t.Fatalf("no NVIDIA driver: want the 2 declared h100s, inventory says %+v", inv)
	}
	for _, g := range inv.GPUs {
		if !strings.HasPrefix(g.UUID, "declared-h100-") || g.Model != "h100" || g.MemoryMiB != 81559 || !g.Healthy {
			t.Fatalf("declared GPU %+v", g)
		}
	}
	if !strings.Contains(registerOut, "inventory declared") || !strings.Contains(registerOut, "gpu-inventory=declared") {
		t.Fatalf("register output with declared GPUs:\n%s", registerOut)
	}
	if marking != "declared" {
		t.Fatalf("chain record marks gpu-inventory=%q, want declared", marking)
	}
	if len(onChain) != 1 || onChain[0].Vendor != "nvidia" || onChain[0].Model != "h100" || onChain[0].MemoryMiB != 81559 ||
		onChain[0].Interface != "sxm" || onChain[0].Count != 2 {
		t.Fatalf("chain record GPUs %+v, want 2 declared nvidia h100 81559 MiB sxm", onChain)
	}
	return "h100"
}
