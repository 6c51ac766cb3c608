package localnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/internal/clientcodec"
	"github.com/gpunet/gpunet/internal/coin"
	"github.com/gpunet/gpunet/tenant"
)

// Options say where and how to build a network.
type Options struct {
	// Binary is the gpunetd executable.
	Binary string
	// Dir holds one directory per node (node0, node1, ...). It is wiped first.
	Dir string
	// Validators is the number of validator nodes; 0 means as in the config.
	Validators int
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// PeerAddr, when set, is the host:port node from dials to reach node
	// to (a fault test routes peers through proxies it can cut); by
	// default it is to's P2P port on loopback.
	PeerAddr func(from, to *Node) string
	// Cosmovisor, when set, runs every node under this cosmovisor binary,
	// with Binary as the genesis binary and Upgrades (plan name → binary)
	// ready for governance upgrades.
	Cosmovisor string
	Upgrades   map[string]string
}

// Node is one gpunetd process of the network.
type Node struct {
	Index   int
	Moniker string
	Home    string
	P2P     int
	RPC     int
	GRPC    int
	API     int
	// Prometheus is the metrics port (0: metrics off).
	Prometheus int
	NodeID     string

	cmd *exec.Cmd
}

// RPCAddr is the node's CometBFT RPC address in the form the CLI's --node takes.
func (n *Node) RPCAddr() string { return fmt.Sprintf("tcp://127.0.0.1:%d", n.RPC) }

// RPCURL is the node's CometBFT RPC as an http URL.
func (n *Node) RPCURL() string { return fmt.Sprintf("http://127.0.0.1:%d", n.RPC) }

// APIURL is the node's REST (grpc-gateway) base URL.
func (n *Node) APIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", n.API) }

// MetricsURL is the node's Prometheus endpoint ("" with metrics off).
func (n *Node) MetricsURL() string {
	if n.Prometheus == 0 {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", n.Prometheus)
}

// GRPCAddr is the node's gRPC address.
func (n *Node) GRPCAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.GRPC) }

// Network is a set of nodes sharing one genesis.
type Network struct {
	Config Config
	Binary string
	Dir    string
	Nodes  []*Node
	// Keys maps account names to their bech32 addresses.
	Keys map[string]string

	log io.Writer
	// cosmovisor and upgrades: see Options.
	cosmovisor string
	upgrades   map[string]string
	peerAddr   func(from, to *Node) string
}

// KeyringHome is the home whose test keyring holds every account's key.
func (n *Network) KeyringHome() string { return n.Nodes[0].Home }

// Create initialises the node directories, keys and a shared genesis. It does
// not start any process.
func Create(ctx context.Context, cfg Config, opts Options) (*Network, error) {
	cfg, err := cfg.withValidators(opts.Validators)
	if err != nil {
		return nil, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	net := &Network{Config: cfg, Binary: opts.Binary, Dir: opts.Dir, Keys: map[string]string{}, log: logw, peerAddr: opts.PeerAddr,
		cosmovisor: opts.Cosmovisor, upgrades: opts.Upgrades}
	step := cfg.Ports.PortStep
	for i := range cfg.Validators {
		net.Nodes = append(net.Nodes, &Node{
			Index:   i,
			Moniker: fmt.Sprintf("node%d", i),
			Home:    filepath.Join(opts.Dir, fmt.Sprintf("node%d", i)),
			P2P:     cfg.Ports.P2P + i*step,
			RPC:     cfg.Ports.RPC + i*step,
			GRPC:    cfg.Ports.GRPC + i*step,
			API:     cfg.Ports.API + i*step,
		})
		if cfg.Ports.Prometheus > 0 {
			net.Nodes[i].Prometheus = cfg.Ports.Prometheus + i*step
		}
	}

	// 1. Node homes: keys, config files, node ids.
	for _, n := range net.Nodes {
		if _, err := net.run(ctx, nil, "init", n.Moniker, "--chain-id", cfg.ChainID, "--default-denom", coin.Denom, "--home", n.Home); err != nil {
			return nil, err
		}
		id, err := net.run(ctx, nil, "comet", "show-node-id", "--home", n.Home)
		if err != nil {
			return nil, err
		}
		n.NodeID = strings.TrimSpace(id)
	}
	fmt.Fprintf(logw, "initialised %d node(s) under %s\n", len(net.Nodes), opts.Dir)

	// 2. Accounts in node0's keyring, funded in node0's genesis.
	keyHome := net.KeyringHome()
	type keyRecord struct {
		Name     string `json:"name"`
		Address  string `json:"address"`
		Mnemonic string `json:"mnemonic,omitempty"`
	}
	var records []keyRecord
	for _, a := range cfg.Accounts {
		var out string
		if a.Mnemonic != "" {
			out, err = net.run(ctx, strings.NewReader(a.Mnemonic+"\n"), "keys", "add", a.Name, "--recover", "--keyring-backend", "test", "--home", keyHome, "--output", "json")
		} else {
			out, err = net.run(ctx, nil, "keys", "add", a.Name, "--keyring-backend", "test", "--home", keyHome, "--output", "json")
		}
		if err != nil {
			return nil, err
		}
		var rec keyRecord
		if err := json.Unmarshal([]byte(LastJSON(out)), &rec); err != nil {
			return nil, fmt.Errorf("parse keys add output for %s: %w (output: %s)", a.Name, err, out)
		}
		if rec.Mnemonic == "" {
			rec.Mnemonic = a.Mnemonic
		}
		records = append(records, rec)
		net.Keys[a.Name] = rec.Address
		if _, err := net.run(ctx, nil, "genesis", "add-genesis-account", rec.Address, a.Coins, "--home", keyHome); err != nil {
			return nil, err
		}
	}
	keysJSON, _ := json.MarshalIndent(records, "", "  ")
	if err := os.WriteFile(filepath.Join(opts.Dir, "keys.json"), keysJSON, 0o600); err != nil {
		return nil, err
	}

	// 3. Genesis overrides from config.yml, then the same file on every node.
	genPath := filepath.Join(keyHome, "config", "genesis.json")
	if err := applyGenesisOverrides(genPath, cfg.Genesis); err != nil {
		return nil, err
	}
	// Per-node config files carry the ports; gentx memos read the p2p port.
	for _, n := range net.Nodes {
		if err := net.writeNodeConfig(n); err != nil {
			return nil, err
		}
		if n.Index > 0 {
			if err := CopyFile(genPath, filepath.Join(n.Home, "config", "genesis.json")); err != nil {
				return nil, err
			}
		}
	}

	// 4. One gentx per validator, signed with the key in node0's keyring and
	// the consensus key of its own node.
	gentxDir := filepath.Join(opts.Dir, "gentx")
	if err := os.MkdirAll(gentxDir, 0o755); err != nil {
		return nil, err
	}
	for i, v := range cfg.Validators {
		n := net.Nodes[i]
		if _, err := net.run(ctx, nil, "genesis", "gentx", v.Name, v.Bonded,
			"--chain-id", cfg.ChainID, "--home", n.Home, "--keyring-dir", keyHome, "--keyring-backend", "test",
			"--moniker", n.Moniker, "--ip", "127.0.0.1", "--p2p-port", strconv.Itoa(n.P2P),
			"--output-document", filepath.Join(gentxDir, n.Moniker+".json")); err != nil {
			return nil, err
		}
	}
	if _, err := net.run(ctx, nil, "genesis", "collect-gentxs", "--gentx-dir", gentxDir, "--home", keyHome); err != nil {
		return nil, err
	}
	if _, err := net.run(ctx, nil, "genesis", "validate", "--home", keyHome); err != nil {
		return nil, err
	}
	for _, n := range net.Nodes[1:] {
		if err := CopyFile(genPath, filepath.Join(n.Home, "config", "genesis.json")); err != nil {
			return nil, err
		}
	}
	// collect-gentxs rewrites node0's config.toml with peers from the memos;
	// write every node's config again so all agree on the full peer list.
	for _, n := range net.Nodes {
		if err := net.writeNodeConfig(n); err != nil {
			return nil, err
		}
	}
	return net, nil
}

// AddNode makes a full node (not a validator) that joins the running
// network the way an operator's would: `gpunetd init`, this network's
// ports, then `gpunetd join` against the validators' RPCs, by state sync
// (or, with blockSync, from genesis). It is not started.
func (net *Network) AddNode(ctx context.Context, blockSync bool) (*Node, error) {
	i := len(net.Nodes)
	step := net.Config.Ports.PortStep
	p := net.Config.Ports
	n := &Node{Index: i, Moniker: fmt.Sprintf("node%d", i), Home: filepath.Join(net.Dir, fmt.Sprintf("node%d", i)),
		P2P: p.P2P + i*step, RPC: p.RPC + i*step, GRPC: p.GRPC + i*step, API: p.API + i*step}
	if p.Prometheus > 0 {
		n.Prometheus = p.Prometheus + i*step
	}
	if _, err := net.run(ctx, nil, "init", n.Moniker, "--chain-id", net.Config.ChainID, "--default-denom", coin.Denom, "--home", n.Home); err != nil {
		return nil, err
	}
	id, err := net.run(ctx, nil, "comet", "show-node-id", "--home", n.Home)
	if err != nil {
		return nil, err
	}
	n.NodeID = strings.TrimSpace(id)
	if err := net.writeNodeConfig(n); err != nil {
		return nil, err
	}
	var rpcs []string
	for _, v := range net.Nodes {
		rpcs = append(rpcs, v.RPCURL())
	}
	args := []string{"join", "--home", n.Home, "--chain-id", net.Config.ChainID, "--rpc-nodes", strings.Join(rpcs[:min(2, len(rpcs))], ","), "--trust-back", "5"}
	if blockSync {
		args = append(args, "--block-sync")
	}
	out, err := net.run(ctx, nil, args...)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(net.log, out)
	net.Nodes = append(net.Nodes, n)
	return n, nil
}

// Start launches every node. With detach the processes outlive the caller
// (for `localnet up`); otherwise Stop or the caller's exit ends them.
func (net *Network) Start(ctx context.Context, detach bool) error {
	for _, n := range net.Nodes {
		if err := net.StartNode(n, detach); err != nil {
			return err
		}
	}
	return net.WaitForHeight(ctx, 2, 90*time.Second)
}

// StartNode starts one node's gpunetd process, logging to <home>/node.log.
func (net *Network) StartNode(n *Node, detach bool) error {
	logFile, err := os.OpenFile(filepath.Join(n.Home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(net.Binary, "start", "--home", n.Home, "--log_no_color")
	if net.cosmovisor != "" {
		if err := net.cosmovisorHome(n); err != nil {
			return errors.Join(err, logFile.Close())
		}
		cmd = exec.Command(net.cosmovisor, "run", "start", "--home", n.Home, "--log_no_color")
		cmd.Env = append(os.Environ(), "DAEMON_NAME=gpunetd", "DAEMON_HOME="+n.Home, "DAEMON_ALLOW_DOWNLOAD_BINARIES=false",
			"DAEMON_RESTART_AFTER_UPGRADE=true", "UNSAFE_SKIP_BACKUP=true", "DAEMON_POLL_INTERVAL=200ms")
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return errors.Join(fmt.Errorf("start %s: %w", n.Moniker, err), logFile.Close())
	}
	if err := logFile.Close(); err != nil { // the child holds its own descriptor
		return err
	}
	n.cmd = cmd
	pid := strconv.Itoa(cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(n.Home, "gpunetd.pid"), []byte(pid), 0o644); err != nil {
		return err
	}
	if !detach {
		go func() { _ = cmd.Wait() }()
	}
	return nil
}

// cosmovisorHome lays out <home>/cosmovisor: the genesis binary, and each
// upgrade's binary under upgrades/<name>/bin (kept when already there: an
// upgrade may have happened).
func (net *Network) cosmovisorHome(n *Node) error {
	put := func(src, dir string) error {
		dst := filepath.Join(n.Home, "cosmovisor", dir, "bin", "gpunetd")
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := CopyFile(src, dst); err != nil {
			return err
		}
		return os.Chmod(dst, 0o755)
	}
	if err := put(net.Binary, "genesis"); err != nil {
		return err
	}
	for name, bin := range net.upgrades {
		if err := put(bin, filepath.Join("upgrades", name)); err != nil {
			return err
		}
	}
	return nil
}

// StopNode ends one node with SIGTERM, then SIGKILL after a grace period.
func (net *Network) StopNode(n *Node) error {
	_, err := StopHome(n.Home, 15*time.Second)
	return err
}

// StopHome stops the gpunetd whose pid file is in home, if it is running,
// and reports whether it was.
func StopHome(home string, grace time.Duration) (bool, error) {
	pid, err := readPID(home)
	if err != nil {
		return false, nil // never started, or already stopped
	}
	if err := os.Remove(filepath.Join(home, "gpunetd.pid")); err != nil {
		return false, err
	}
	if !alive(pid) {
		return false, nil
	}
	return true, terminate(pid, grace)
}

// HomeStatus describes the node in home: running or not, and its height.
func HomeStatus(ctx context.Context, home string) string {
	pid, err := readPID(home)
	if err != nil || !alive(pid) {
		return "stopped"
	}
	raw, err := os.ReadFile(filepath.Join(home, "config", "config.toml"))
	if err != nil {
		return fmt.Sprintf("running (pid %d)", pid)
	}
	n := &Node{}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			section = strings.Trim(t, "[]")
		}
		if section == "rpc" && strings.HasPrefix(t, "laddr = ") {
			addr := strings.Trim(strings.TrimPrefix(t, "laddr = "), `"`)
			if i := strings.LastIndexByte(addr, ':'); i >= 0 {
				n.RPC, _ = strconv.Atoi(addr[i+1:])
			}
		}
	}
	h, err := n.Height(ctx)
	if err != nil {
		return fmt.Sprintf("running (pid %d), rpc not answering: %v", pid, err)
	}
	return fmt.Sprintf("running (pid %d), rpc %s, height %d", pid, n.RPCAddr(), h)
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil && !isZombie(pid)
}

// Stop ends every node.
func (net *Network) Stop() error {
	var errs []error
	for _, n := range net.Nodes {
		errs = append(errs, net.StopNode(n))
	}
	return errors.Join(errs...)
}

// WaitForHeight waits until every node reports at least height h.
func (net *Network) WaitForHeight(ctx context.Context, h int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range net.Nodes {
		for {
			got, err := n.Height(ctx)
			if err == nil && got >= h {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not reach height %d within %s (last height %d, error %v); see %s",
					n.Moniker, h, timeout, got, err, filepath.Join(n.Home, "node.log"))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// Height returns the node's latest committed block height from its RPC.
func (n *Node) Height(ctx context.Context) (int64, error) {
	var st struct {
		Result struct {
			SyncInfo struct {
				LatestBlockHeight string `json:"latest_block_height"`
			} `json:"sync_info"`
		} `json:"result"`
	}
	if err := getJSON(ctx, n.RPCURL()+"/status", &st); err != nil {
		return 0, err
	}
	return strconv.ParseInt(st.Result.SyncInfo.LatestBlockHeight, 10, 64)
}

// CLI runs gpunetd with the given arguments against node0 and node0's keyring.
func (net *Network) CLI(ctx context.Context, args ...string) (string, error) {
	return net.CLIOn(ctx, net.Nodes[0], args...)
}

// CLIOn runs gpunetd against the given node's RPC, with node0's keyring.
func (net *Network) CLIOn(ctx context.Context, n *Node, args ...string) (string, error) {
	full := append([]string{}, args...)
	full = append(full, "--home", net.KeyringHome(), "--node", n.RPCAddr())
	return net.run(ctx, nil, full...)
}

func (net *Network) run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, net.Binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Stdin = stdin
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), fmt.Errorf("gpunetd %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()+" "+stdout.String()))
	}
	return stdout.String() + stderr.String(), nil
}

func (net *Network) writeNodeConfig(n *Node) error {
	var peers []string
	for _, o := range net.Nodes {
		if o.Index == n.Index {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", o.P2P)
		if net.peerAddr != nil {
			addr = net.peerAddr(n, o)
		}
		peers = append(peers, fmt.Sprintf("%s@%s", o.NodeID, addr))
	}
	cfgDir := filepath.Join(n.Home, "config")
	c := net.Config
	if err := editTOML(filepath.Join(cfgDir, "config.toml"), map[string]map[string]string{
		"": {
			"moniker": quote(n.Moniker),
		},
		"rpc": {
			"laddr":                quote(fmt.Sprintf("tcp://127.0.0.1:%d", n.RPC)),
			"cors_allowed_origins": `["*"]`,
			"pprof_laddr":          quote(""),
		},
		"p2p": {
			"laddr":              quote(fmt.Sprintf("tcp://127.0.0.1:%d", n.P2P)),
			"persistent_peers":   quote(strings.Join(peers, ",")),
			"addr_book_strict":   "false",
			"allow_duplicate_ip": "true",
			"pex":                "false",
		},
		"consensus": {
			"timeout_commit":  quote(time.Duration(c.Consensus.TimeoutCommit).String()),
			"timeout_propose": quote(time.Duration(c.Consensus.TimeoutPropose).String()),
		},
		"instrumentation": {
			"prometheus":             strconv.FormatBool(n.Prometheus > 0),
			"prometheus_listen_addr": quote(fmt.Sprintf("127.0.0.1:%d", n.Prometheus)),
		},
	}); err != nil {
		return err
	}
	if err := editTOML(filepath.Join(cfgDir, "app.toml"), map[string]map[string]string{
		"": {
			"minimum-gas-prices": quote(c.MinimumGasPrices),
		},
		"api": {
			"enable":              "true",
			"address":             quote(fmt.Sprintf("tcp://127.0.0.1:%d", n.API)),
			"enabled-unsafe-cors": "true",
		},
		"grpc": {
			"enable":  "true",
			"address": quote(fmt.Sprintf("127.0.0.1:%d", n.GRPC)),
		},
		"state-sync": {
			"snapshot-interval":    strconv.FormatUint(c.StateSync.SnapshotInterval, 10),
			"snapshot-keep-recent": strconv.FormatUint(uint64(c.StateSync.SnapshotKeepRecent), 10),
		},
	}); err != nil {
		return err
	}
	return editTOML(filepath.Join(cfgDir, "client.toml"), map[string]map[string]string{
		"": {
			"chain-id":        quote(c.ChainID),
			"keyring-backend": quote("test"),
			"node":            quote(n.RPCAddr()),
			"broadcast-mode":  quote("sync"),
		},
	})
}

func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// LastJSON returns the JSON object that ends out. gpunetd prints warnings
// before its JSON, and some commands indent it over several lines.
func LastJSON(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "{") {
			continue
		}
		if cand := strings.Join(lines[i:], "\n"); json.Valid([]byte(cand)) {
			return cand
		}
	}
	return out
}

// CopyFile copies a small file (genesis, keys) whole.
func CopyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func readPID(home string) (int, error) {
	b, err := os.ReadFile(filepath.Join(home, "gpunetd.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// terminate sends SIGTERM and waits for the process to go, then SIGKILLs it.
func terminate(pid int, grace time.Duration) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	// A node run by cosmovisor is cosmovisor's child: cosmovisor passes the
	// signal on but may exit before its gpunetd has closed its databases.
	// The node is stopped once both are gone.
	procs := append([]int{pid}, descendants(pid)...)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !slices.ContainsFunc(procs, alive) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	var errs []error
	for _, pid := range procs {
		if alive(pid) {
			errs = append(errs, syscall.Kill(pid, syscall.SIGKILL))
		}
	}
	return errors.Join(errs...)
}

// descendants lists the processes below pid (its children, theirs, ...),
// from /proc.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:]) // state, ppid, ...
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], child)
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// isZombie reports whether pid has exited but not been reaped (a child of a
// process that does not wait for it, such as a detached `localnet up`).
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// RunBinary runs gpunetd with exactly the given arguments.
func (net *Network) RunBinary(ctx context.Context, args ...string) (string, error) {
	return net.run(ctx, nil, args...)
}

// PID is the node's process id, or 0 when this Network did not start it.
func (n *Node) PID() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Signal sends sig to the node's process (SIGKILL to crash it, SIGSTOP and
// SIGCONT to freeze and thaw it).
func (n *Node) Signal(sig syscall.Signal) error {
	pid := n.PID()
	if pid == 0 {
		return fmt.Errorf("%s: not started by this network", n.Moniker)
	}
	return syscall.Kill(pid, sig)
}

// TxClient is a Go client signing as the named key of the network's test
// keyring and talking to node: it simulates, signs, broadcasts and waits
// for the block like `gpunetd tx`, without a process per transaction.
func (net *Network) TxClient(name string, node *Node) (*tenant.Client, error) {
	enc, err := clientcodec.New()
	if err != nil {
		return nil, err
	}
	kr, err := keyring.New(sdk.KeyringServiceName(), keyring.BackendTest, net.KeyringHome(), nil, enc.Codec)
	if err != nil {
		return nil, err
	}
	rec, err := kr.Key(name)
	if err != nil {
		return nil, err
	}
	addr, err := rec.GetAddress()
	if err != nil {
		return nil, err
	}
	rpc, err := client.NewClientFromNode(node.RPCAddr())
	if err != nil {
		return nil, err
	}
	ctx := client.Context{}.WithCodec(enc.Codec).WithInterfaceRegistry(enc.Registry).WithTxConfig(enc.TxConfig).
		WithKeyring(kr).WithChainID(net.Config.ChainID).WithClient(rpc).WithNodeURI(node.RPCAddr()).
		WithAccountRetriever(authtypes.AccountRetriever{}).WithFromName(name).WithFromAddress(addr).WithHomeDir(net.KeyringHome())
	return tenant.NewClient(ctx)
}
