// Package e2e holds black-box tests: they run the real gpunetd binary as
// separate processes on loopback, exactly as a validator or tenant would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpunet/gpunet/testutil/localnet"
)

// gpunetd and providerBin are the binaries under test: $GPUNETD_BIN and
// $GPUNET_PROVIDER_BIN (set by `make test-e2e`) or built by TestMain.
var gpunetd, providerBin string

func TestMain(m *testing.M) {
	gpunetd = os.Getenv("GPUNETD_BIN")
	providerBin = os.Getenv("GPUNET_PROVIDER_BIN")
	var dir string
	if gpunetd == "" || providerBin == "" {
		var err error
		if dir, err = os.MkdirTemp("", "gpunet-e2e-bin"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, b := range []struct {
			dst *string
			pkg string
		}{{&gpunetd, "cmd/gpunetd"}, {&providerBin, "cmd/gpunet-provider"}} {
			if *b.dst != "" {
				continue
			}
			*b.dst = filepath.Join(dir, filepath.Base(b.pkg))
			build := exec.Command("go", "build", "-o", *b.dst, "github.com/gpunet/gpunet/"+b.pkg)
			build.Stdout, build.Stderr = os.Stdout, os.Stderr
			if err := build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "build", b.pkg+":", err)
				os.Exit(1)
			}
		}
	}
	code := m.Run()
	stopCluster()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// freePorts picks a port block for n nodes from the repo's config.yml layout
// (p2p, rpc, grpc, api per node, step 10) where every port is free now.
func freePorts(t *testing.T, n int) localnet.Ports {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(400)*100
		ports := localnet.Ports{P2P: base, RPC: base + 1, GRPC: base + 2, API: base + 3, Prometheus: base + 4, PortStep: 10}
		ok := true
		for i := 0; i < n && ok; i++ {
			for _, p := range []int{ports.P2P, ports.RPC, ports.GRPC, ports.API, ports.Prometheus} {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i*ports.PortStep))
				if err != nil {
					ok = false
					break
				}
				l.Close()
			}
		}
		if ok {
			return ports
		}
	}
	t.Fatal("no free port block found")
	return localnet.Ports{}
}

// startNetwork creates and starts a network from the repository's config.yml
// with n validators on free loopback ports. It is stopped when the test ends;
// a failed test gets the tail of every node's log.
func startNetwork(t *testing.T, n int) *localnet.Network {
	return startNetworkWith(t, localnet.Options{Validators: n})
}

// startNetworkWith is startNetwork with more options (Binary and Dir are
// filled in).
func startNetworkWith(t *testing.T, opts localnet.Options) *localnet.Network {
	t.Helper()
	return startNetworkEdited(t, opts, nil)
}

// startNetworkEdited is startNetworkWith on config.yml as edit changes it
// (more accounts, other genesis params).
func startNetworkEdited(t *testing.T, opts localnet.Options, edit func(*localnet.Config)) *localnet.Network {
	t.Helper()
	cfg, err := localnet.LoadConfig(filepath.Join(repoRoot(), "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	cfg.Ports = freePorts(t, opts.Validators+2) // two more: a test may add full nodes
	ctx := context.Background()
	opts.Binary, opts.Dir = gpunetd, t.TempDir()
	nw, err := localnet.Create(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, node := range nw.Nodes {
			_ = node.Signal(syscall.SIGCONT) // a test may have frozen one
		}
		if err := nw.Stop(); err != nil {
			t.Errorf("stop network: %v", err)
		}
		checkInvariants(t, nw)
		if t.Failed() {
			for _, node := range nw.Nodes {
				dumpLogTail(t, filepath.Join(node.Home, "node.log"))
			}
		}
	})
	if err := nw.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	return nw
}

// checkInvariants runs `gpunetd invariants` on every stopped node: no ugpn
// created or lost (module accounts hold what they owe), every lease with
// its order, payment and provider, whatever the test did to the chain.
func checkInvariants(t *testing.T, nw *localnet.Network) {
	t.Helper()
	for _, node := range nw.Nodes {
		out, err := exec.Command(gpunetd, "invariants", "--home", node.Home).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "every invariant holds") && !strings.Contains(string(out), "nothing to check") {
			t.Errorf("invariants of %s after the test: %v\n%s", node.Home, err, out)
		}
	}
}

func dumpLogTail(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("--- tail of %s ---\n%s", path, strings.Join(lines, "\n"))
}

// cli runs gpunetd against node and decodes its JSON output into out (when
// out is not nil).
func cli(t *testing.T, nw *localnet.Network, node *localnet.Node, out any, args ...string) {
	t.Helper()
	res, err := nw.CLIOn(context.Background(), node, args...)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(localnet.LastJSON(res)), out); err != nil {
			t.Fatalf("decode output of %v: %v\n%s", args, err, res)
		}
	}
}

// txResponse is the part of a broadcast or query result the tests read.
type txResponse struct {
	Height string `json:"height"`
	TxHash string `json:"txhash"`
	Code   int    `json:"code"`
	RawLog string `json:"raw_log"`
	Events []struct {
		Type       string `json:"type"`
		Attributes []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"attributes"`
	} `json:"events"`
}

// eventAttr returns the first value of attribute key on an event of type typ.
func (r txResponse) eventAttr(typ, key string) string {
	for _, e := range r.Events {
		if e.Type != typ {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == key {
				return a.Value
			}
		}
	}
	return ""
}

// sendTx broadcasts a bank send through the CLI and returns the CheckTx result.
func sendTx(t *testing.T, nw *localnet.Network, node *localnet.Node, from, to, amount, fees string) txResponse {
	t.Helper()
	var res txResponse
	cli(t, nw, node, &res, "tx", "bank", "send", from, to, amount, "--fees", fees, "--yes", "--output", "json")
	return res
}

// waitTx waits until the transaction is in a block and returns its result.
// The SDK's wait-tx subscribes to the transaction's event and then looks it
// up in the index; a transaction committed just before the subscription
// whose indexing lags behind its event is missed by both, and wait-tx
// times out on a transaction that is in a block. The index is asked once
// more before that counts as a failure.
func waitTx(t *testing.T, nw *localnet.Network, node *localnet.Node, hash string) txResponse {
	t.Helper()
	var res txResponse
	out, err := nw.CLIOn(context.Background(), node, "query", "wait-tx", hash, "--timeout", "30s", "--output", "json")
	if err != nil {
		var qerr error
		if out, qerr = nw.CLIOn(context.Background(), node, "query", "tx", hash, "--output", "json"); qerr != nil {
			t.Fatalf("%v; then the index: %v", err, qerr)
		}
	}
	if err := json.Unmarshal([]byte(localnet.LastJSON(out)), &res); err != nil {
		t.Fatalf("decode the result of tx %s: %v\n%s", hash, err, out)
	}
	return res
}

// balanceCLI returns addr's ugpn balance as node's CLI reports it.
func balanceCLI(t *testing.T, nw *localnet.Network, node *localnet.Node, addr string) int64 {
	t.Helper()
	var res struct {
		Balance struct {
			Amount string `json:"amount"`
		} `json:"balance"`
	}
	cli(t, nw, node, &res, "query", "bank", "balance", addr, "ugpn", "--output", "json")
	return mustInt(t, res.Balance.Amount)
}

// balanceREST returns addr's ugpn balance from node's REST API.
func balanceREST(t *testing.T, node *localnet.Node, addr string) int64 {
	t.Helper()
	var res struct {
		Balance struct {
			Amount string `json:"amount"`
		} `json:"balance"`
	}
	httpJSON(t, http.MethodGet, node.APIURL()+"/cosmos/bank/v1beta1/balances/"+addr+"/by_denom?denom=ugpn", nil, &res)
	return mustInt(t, res.Balance.Amount)
}

func httpJSON(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("not an integer: %q", s)
	}
	return v
}

// waitBlocks waits until every node is k blocks past its current height.
func waitBlocks(t *testing.T, nw *localnet.Network, k int64) {
	t.Helper()
	h, err := nw.Nodes[0].Height(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.WaitForHeight(context.Background(), h+k, 60*time.Second); err != nil {
		t.Fatal(err)
	}
}
