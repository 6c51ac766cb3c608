package main

import (
	"bufio"
	"bytes"
	"context"
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
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	sdk "github.com/cosmos/cosmos-sdk/types"
	dockerclient "github.com/docker/docker/client"

	"github.com/gpunet/gpunet/internal/coin"
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/runtime/imagebuild"
	"github.com/gpunet/gpunet/sdl"
	"github.com/gpunet/gpunet/tenant"
	"github.com/gpunet/gpunet/testutil/localnet"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

const image = "gpunet/gpu-job:bench"

type bench struct {
	gpunetd, provider, dir string
	providerGODEBUG        string
	nw                     *localnet.Network
	prov                   *exec.Cmd
	apiURL                 string
	metricsURL             string // the daemon's Prometheus endpoint
	// blockTime, when set, replaces config.yml's timeout_commit.
	blockTime time.Duration
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	port := l.Addr().(*net.TCPAddr).Port
	must(l.Close())
	return port
}

func (b *bench) startChain(ctx context.Context, cfgPath string) error {
	cfg, err := localnet.LoadConfig(cfgPath)
	if err != nil {
		return err
	}
	if b.blockTime > 0 {
		cfg.Consensus.TimeoutCommit = localnet.Duration(b.blockTime)
	}
	base := 31000 + (os.Getpid()%200)*10
	cfg.Ports = localnet.Ports{P2P: base, RPC: base + 1, GRPC: base + 2, API: base + 3, PortStep: 10}
	// Leases that never get a manifest must stay live for the footprint figure.
	app := cfg.Genesis["app_state"].(map[string]any)
	market, _ := app["market"].(map[string]any)
	if market == nil {
		market = map[string]any{}
		app["market"] = market
	}
	params, _ := market["params"].(map[string]any)
	if params == nil {
		params = map[string]any{}
		market["params"] = params
	}
	params["start_timeout"] = "100000"
	// The footprint figure sends its 1,000 manifests only once the daemon
	// has won every lease: none may close as manifest_missing meanwhile.
	params["manifest_timeout"] = "50000" // below start_timeout
	params["max_sweeps_per_block"] = 2000
	// The throughput load opens thousands of deployments (5 GPN each) and
	// bids: the tenant and validator accounts get a bench-sized purse.
	for i, a := range cfg.Accounts {
		if a.Name == "tenant" || a.Name == "validator" {
			cfg.Accounts[i].Coins = "10000000000000ugpn"
		}
	}
	b.nw, err = localnet.Create(ctx, cfg, localnet.Options{Binary: b.gpunetd, Dir: filepath.Join(b.dir, "chain"), Validators: 1})
	if err != nil {
		return err
	}
	return b.nw.Start(ctx, false)
}

func (b *bench) stop() {
	if b.prov != nil && b.prov.Process != nil {
		_ = b.prov.Process.Kill()
		_ = b.prov.Wait()
	}
	if b.nw == nil {
		return
	}
	_ = b.nw.Stop()
	if err := removeProvider(context.Background(), b.nw.Keys["provider"]); err != nil {
		fmt.Fprintf(os.Stderr, "removing the bench provider's containers and networks: %v\n", err)
	}
}

func (b *bench) buildImage(ctx context.Context, src string) error {
	cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	return imagebuild.BuildGoImage(ctx, cli, image, src)
}

func (b *bench) run(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

func (b *bench) startProvider(ctx context.Context, leases int) error {
	node := b.nw.Nodes[0]
	port := freePort()
	b.apiURL = fmt.Sprintf("https://127.0.0.1:%d", port)
	metricsPort := freePort()
	b.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	cfg := filepath.Join(b.dir, "provider", "provider.yaml")
	if _, err := b.run(b.provider, "--config", cfg, "init", "--chain-id", b.nw.Config.ChainID, "--key", "provider", "--keyring-backend", "test", "--host-uri", b.apiURL,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--rpc", node.RPCURL(), "--grpc", node.GRPCAddr()); err != nil {
		return err
	}
	raw, err := os.ReadFile(cfg)
	if err != nil {
		return err
	}
	s := string(raw)
	for old, new := range map[string]string{
		`keyring_dir: ""`:                    fmt.Sprintf("keyring_dir: %q", b.nw.KeyringHome()),
		"publish_host: 0.0.0.0":              "publish_host: 127.0.0.1",
		"pull_images: true":                  "pull_images: false",
		"reconcile_interval: 30s":            "reconcile_interval: 10s",
		`cpu: ""                    # cores`: fmt.Sprintf(`cpu: "%d" # cores`, leases),
		`memory: ""`:                         `memory: "2Ti"`,
		"storage: 100Gi":                     "storage: 10Ti",
		"log_format: text":                   "log_format: json",
		"metrics_listen: 127.0.0.1:9465":     fmt.Sprintf("metrics_listen: 127.0.0.1:%d", metricsPort),
	} {
		if !strings.Contains(s, old) {
			return fmt.Errorf("provider.yaml template lacks %q", old)
		}
		s = strings.Replace(s, old, new, 1)
	}
	if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
		return err
	}
	if _, err := b.run(b.provider, "--config", cfg, "register"); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(b.dir, "provider", "daemon.log"))
	if err != nil {
		return err
	}
	b.prov = exec.Command(b.provider, "--config", cfg, "run")
	b.prov.Stdout, b.prov.Stderr = logf, logf
	if b.providerGODEBUG != "" { // e.g. gctrace=1: the runtime's lines go to daemon.log
		b.prov.Env = append(os.Environ(), "GODEBUG="+b.providerGODEBUG)
	}
	if err := b.prov.Start(); err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		if _, err := b.metrics(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("provider API did not come up")
}

// local reads the daemon's loopback endpoints.
var local = &http.Client{Timeout: 5 * time.Second}

// metrics reads the daemon's Prometheus gauges and counters.
func (b *bench) metrics() (map[string]float64, error) {
	res, err := local.Get(b.metricsURL)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 2 {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[f[0]] = v
		}
	}
	return out, nil
}

type deployOut struct {
	DSeq            uint64  `json:"dseq"`
	FirstBidBlocks  int64   `json:"first_bid_blocks"`
	FirstBidSeconds float64 `json:"first_bid_seconds"`
	Steps           []struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"seconds"`
	} `json:"steps"`
}

// benchSDL is a one-replica job of the bench image with args, at 1 GPN/h.
func benchSDL(args, cpu, memory, storage string) string {
	return fmt.Sprintf(`version: "2.0"
services:
  job:
    image: %s
    args: [%s]
    restart: never
profiles:
  compute:
    job:
      resources:
        cpu: {units: %s}
        memory: {size: %s}
        storage: {size: %s}
  placement:
    local:
      pricing:
        job: {denom: ugpn, amount: 1000000}
deployment:
  job:
    local: {profile: job, count: 1}
`, image, args, cpu, memory, storage)
}

// jobSDL is the latency and throughput figures' job: 600 one-second steps.
var jobSDL = benchSDL(`"-steps", "600", "-interval", "1s", "-samples", "1000"`, "0.5", "128Mi", "1Gi")

// latency deploys n jobs one after another with a one-block auction and
// reports p50/p95 of submitted → first bid, → lease, → running.
func (b *bench) latency(ctx context.Context, n int) ([]Figure, error) {
	path := filepath.Join(b.dir, "job.yaml")
	if err := os.WriteFile(path, []byte(jobSDL), 0o600); err != nil {
		return nil, err
	}
	flags := []string{"--from", "tenant", "--keyring-backend", "test", "--chain-id", b.nw.Config.ChainID, "--home", b.nw.KeyringHome(), "--node", b.nw.Nodes[0].RPCAddr()}
	var firstBid, lease, running, bidBlocks []float64
	for i := 0; i < n; i++ {
		out, err := b.run(b.gpunetd, append([]string{"deploy", path, "--output", "json", "--bid-window", "1", "--deposit", "5000000ugpn"}, flags...)...)
		if err != nil {
			return nil, err
		}
		var d deployOut
		if err := json.Unmarshal([]byte(localnet.LastJSON(out)), &d); err != nil {
			return nil, fmt.Errorf("deploy output: %v\n%s", err, out)
		}
		step := map[string]float64{}
		for _, s := range d.Steps {
			step[s.Name] = s.Seconds
		}
		// "submitted" ends when the deployment's block is committed, which
		// is when the order exists; the tenant waited that long already.
		firstBid = append(firstBid, step["submitted"]+d.FirstBidSeconds)
		lease = append(lease, step["submitted"]+step["auction"])
		running = append(running, step["submitted"]+step["auction"]+step["manifest"]+step["running"])
		bidBlocks = append(bidBlocks, float64(d.FirstBidBlocks))
		if _, err := b.run(b.gpunetd, append([]string{"tx", "market", "close-deployment", strconv.FormatUint(d.DSeq, 10), "--fees", "10000ugpn", "--gas", "400000", "--yes"}, flags...)...); err != nil {
			return nil, err
		}
		time.Sleep(1200 * time.Millisecond) // let the close commit before the next deployment
	}
	note := fmt.Sprintf("%d deployments, bid window 1 block", n)
	figs := []Figure{
		{Name: "rental: submitted → first bid seen, p50", Value: percentile(firstBid, .5), Unit: "s", Note: note},
		{Name: "rental: submitted → first bid seen, p95", Value: percentile(firstBid, .95), Unit: "s", Note: note},
		{Name: "rental: first bid, blocks after the order, p50", Value: percentile(bidBlocks, .5), Unit: "blocks", Target: "≤ 1"},
		{Name: "rental: first bid, blocks after the order, max", Value: percentile(bidBlocks, 1), Unit: "blocks", Target: "≤ 1"},
		{Name: "rental: submitted → lease, p50", Value: percentile(lease, .5), Unit: "s", Note: note},
		{Name: "rental: submitted → lease, p95", Value: percentile(lease, .95), Unit: "s", Note: note},
		{Name: "rental: submitted → container running, p50", Value: percentile(running, .5), Unit: "s", Target: "≤ 2.0 s"},
		{Name: "rental: submitted → container running, p95", Value: percentile(running, .95), Unit: "s", Note: note},
	}
	if b.blockTime > 0 {
		for i := range figs {
			figs[i].Name = strings.Replace(figs[i].Name, "rental:", fmt.Sprintf("rental (%s blocks):", b.blockTime), 1)
			if strings.Contains(figs[i].Name, "container running, p50") {
				figs[i].Target = "report"
			}
		}
	}
	return figs, nil
}

// footprintSDL is a tiny job that sleeps: one step an hour.
var footprintSDL = benchSDL(`"-steps", "1000000", "-interval", "1h", "-samples", "1"`, "0.1", "32Mi", "64Mi")

// footprint opens n deployments in batches of 50 per transaction, waits
// until the daemon has won them, sends every manifest, waits until all n
// containers run, and then samples the daemon's RSS and CPU for 30 s.
func (b *bench) footprint(ctx context.Context, n int) ([]Figure, error) {
	idleRSS, idleParts := rssMB(b.prov.Process.Pid), b.rssParts(b.prov.Process.Pid)
	tc, err := b.client("tenant")
	if err != nil {
		return nil, err
	}
	alone, err := b.runtimeAlone(ctx, n, tc.Owner.String())
	if err != nil {
		return nil, err
	}
	d, err := sdl.Parse([]byte(footprintSDL))
	if err != nil {
		return nil, err
	}
	hash, _ := d.Manifest.Hash()
	canonical, err := d.Manifest.CanonicalJSON()
	if err != nil {
		return nil, err
	}
	m0, err := b.metrics()
	if err != nil {
		return nil, err
	}
	var dseqs []uint64
	for done := 0; done < n; done += 50 {
		var msgs []sdk.Msg
		for range min(50, n-done) {
			msgs = append(msgs, &markettypes.MsgCreateDeployment{Owner: tc.Owner.String(), Groups: d.Groups, ManifestHash: hash,
				Deposit: sdk.NewInt64Coin(coin.Denom, 5_000_000), BidWindow: 2})
		}
		res, err := tc.SendTx(ctx, msgs...)
		if err != nil {
			return nil, fmt.Errorf("open deployments: %w", err)
		}
		for _, ev := range res.Events {
			if m, err := chain.ParseEvent(ev); err == nil {
				if e, ok := m.(*markettypes.EventDeploymentCreated); ok {
					dseqs = append(dseqs, e.Dseq)
				}
			}
		}
	}
	if len(dseqs) != n {
		return nil, fmt.Errorf("opened %d deployments, want %d", len(dseqs), n)
	}
	want := m0["gpunet_provider_leases"] + float64(n)
	if err := b.awaitMetric("gpunet_provider_leases", want, 5*time.Minute); err != nil {
		return nil, err
	}
	cl, _, err := tc.ProviderAPI(ctx, b.nw.Keys["provider"])
	if err != nil {
		return nil, err
	}
	started, stopEvents, err := containerStarts(ctx, b.nw.Keys["provider"])
	if err != nil {
		return nil, err
	}
	defer stopEvents()
	t0 := time.Now()
	work := make(chan uint64)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dseq := range work {
				if _, err := cl.SendManifest(ctx, tc.Owner.String(), dseq, canonical); err != nil {
					select {
					case errs <- fmt.Errorf("manifest for deployment %d: %w", dseq, err):
					default:
					}
				}
			}
		}()
	}
	for _, dseq := range dseqs {
		work <- dseq
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	last, err := started(n, 30*time.Minute)
	if err != nil {
		return nil, err
	}
	startAll := last.Sub(t0)
	// The figures below are of the daemon tracking them all.
	if err := b.awaitMetric("gpunet_provider_containers_running", m0["gpunet_provider_containers_running"]+float64(n), 5*time.Minute); err != nil {
		return nil, err
	}
	pid := b.prov.Process.Pid
	cpu0, t1 := cpuTicks(pid), time.Now()
	var peak float64
	for time.Since(t1) < 30*time.Second {
		peak = max(peak, rssMB(pid))
		time.Sleep(time.Second)
	}
	parts := b.rssParts(pid)
	cpuPct := float64(cpuTicks(pid)-cpu0) / 100 / time.Since(t1).Seconds() * 100
	note := fmt.Sprintf("%d running leases, one sleeping container each (plus the earlier figures' leases), reconcile every 10 s", n)
	attested, gas, err := b.lastAttestation(ctx, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	return []Figure{
		{Name: fmt.Sprintf("attestation by the daemon of its %d active leases: one tx, gas", attested), Value: float64(gas), Unit: "gas",
			Target: "flat in leases", Note: "compare the in-process rows for 1, 300 and 1,000 leases"},
		{Name: "provider daemon RSS, idle", Value: idleRSS, Unit: "MB", Target: "≤ 40 MB", Note: idleParts},
		{Name: fmt.Sprintf("provider daemon RSS, %d running leases (peak of 30 s)", n), Value: peak, Unit: "MB", Target: "≤ 64 MB", Note: note + "; at the end: " + parts},
		{Name: fmt.Sprintf("provider daemon CPU, %d running leases (mean of 30 s)", n), Value: cpuPct, Unit: "% core", Note: note},
		alone,
		{Name: fmt.Sprintf("provider daemon: %d manifests sent → all containers running", n), Value: startAll.Seconds(), Unit: "s", Target: "≤ 120 s",
			Note: "to the engine's start event of the last container; the Docker engine on the same 2 cores creates the containers; the tenant API takes 20 manifests a second from one address"},
	}, nil
}

// lastAttestation waits for an attestation of the provider's leases that
// covers them all (its EventProviderAttested counts every active lease the
// daemon runs) and returns how many it attested and the gas it used.
func (b *bench) lastAttestation(ctx context.Context, wait time.Duration) (int, int64, error) {
	c, err := rpchttp.New(b.nw.Nodes[0].RPCURL(), "/websocket")
	if err != nil {
		return 0, 0, err
	}
	m, err := b.metrics()
	if err != nil {
		return 0, 0, err
	}
	want := int(m["gpunet_provider_containers_running"])
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		res, err := c.TxSearch(ctx, "message.action='/gpunet.market.v1.MsgAttest'", false, nil, nil, "desc")
		if err != nil {
			return 0, 0, fmt.Errorf("find the daemon's attestations: %w", err)
		}
		for _, tx := range res.Txs {
			for _, ev := range tx.TxResult.Events {
				if msg, err := chain.ParseEvent(ev); err == nil {
					if a, ok := msg.(*markettypes.EventProviderAttested); ok && int(a.Leases) >= want {
						return int(a.Leases), tx.TxResult.GasUsed, nil
					}
				}
			}
		}
		time.Sleep(2 * time.Second)
	}
	return 0, 0, fmt.Errorf("no attestation of %d leases within %s", want, wait)
}

// awaitMetric waits until the daemon's gauge reaches want.
func (b *bench) awaitMetric(name string, want float64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var last float64
	for time.Now().Before(deadline) {
		if m, err := b.metrics(); err == nil {
			if last = m[name]; last >= want {
				return nil
			}
		}
		time.Sleep(2 * time.Second)
	}
	return fmt.Errorf("daemon's %s is %v after %s, want %v", name, last, wait, want)
}

// client is a tenant client signing as the named key of the local network.
func (b *bench) client(name string) (*tenant.Client, error) {
	return b.nw.TxClient(name, b.nw.Nodes[0])
}

func rssMB(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// rssParts splits the daemon's resident set: anonymous memory, with the
// heap and stacks the Go runtime reports on /metrics, and pages of files
// (the executable and its libraries), with those the kernel mapped as whole
// 2 MB pages. Those depend on the page cache, not on the daemon: a binary
// just written is cached in large folios, and every 2 MB of it the daemon
// touches counts whole (measured after a cache drop, the same binary is
// about 30 MB smaller).
func (b *bench) rssParts(pid int) string {
	kb := func(file string, fields ...string) []float64 {
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		out := make([]float64, len(fields))
		for _, line := range strings.Split(string(raw), "\n") {
			for i, f := range fields {
				if v, ok := strings.CutPrefix(line, f+":"); ok && len(strings.Fields(v)) > 0 {
					out[i], _ = strconv.ParseFloat(strings.Fields(v)[0], 64)
				}
			}
		}
		return out
	}
	st, roll := kb("status", "RssAnon", "RssFile"), kb("smaps_rollup", "FilePmdMapped")
	m, _ := b.metrics()
	const mb = 1 << 20
	return fmt.Sprintf("anonymous %.1f MB (Go heap in use %.1f MB, stacks %.1f MB, %.0f goroutines), files %.1f MB (%.1f MB of it mapped as 2 MB pages)",
		st[0]/1024, m["go_memstats_heap_inuse_bytes"]/mb, m["go_memstats_stack_inuse_bytes"]/mb, m["go_goroutines"], st[1]/1024, roll[0]/1024)
}

// cpuTicks is utime+stime of pid in clock ticks (USER_HZ = 100).
func cpuTicks(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}
