package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// followEvents runs `gpunetd lease events DSEQ --follow` until the test
// ends; its output so far is returned by the func.
func followEvents(t *testing.T, nw *localnet.Network, dseq uint64) func() string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, gpunetd, "lease", "events", strconv.FormatUint(dseq, 10), "--follow", "--from", "tenant", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--home", nw.KeyringHome(), "--node", nw.Nodes[0].RPCAddr())
	var mu sync.Mutex
	var out bytes.Buffer
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// waitFor polls get until it contains every part.
func waitFor(t *testing.T, what string, timeout time.Duration, get func() string, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := get()
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(s, p)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q within %s in:\n%s", what, parts, timeout, s)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestLeaseEventsShowOOMAndRestart: a service that runs out of memory is
// killed and restarted by the engine, and `lease events` tells the tenant
// each step: deploying, running, the OOM kill, the exit with code 137 and
// the start again. (The provider never closes for crash loops here.)
func TestLeaseEventsShowOOMAndRestart(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"crash_loop_restarts: 5     #": "crash_loop_restarts: -1    #",
	}})
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"hog", `"-print", "warming up", "-count", "3", "-interval", "1s", "-alloc-mib", "600", "-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	events := followEvents(t, nw, res.DSeq)
	got := waitFor(t, "lease events", 60*time.Second, events, "hog-0  oom: killed: out of memory", "hog-0  exited (exit code 137)")
	for _, want := range []string{"manifest: manifest received", "deploying", "running: every replica started", "hog-0  created", "hog-0  started"} {
		if !strings.Contains(got, want) {
			t.Errorf("lease events lack %q:\n%s", want, got)
		}
	}
	// The engine starts it again: a second start after the OOM exit.
	waitFor(t, "a restart", 30*time.Second, func() string {
		s := events()
		if i := strings.Index(s, "exit code 137"); i >= 0 && strings.Contains(s[i:], "hog-0  started: restart 1 by the engine") {
			return s + "\nRESTARTED"
		}
		return s
	}, "RESTARTED")
	// Without --follow, the same events, as JSON for scripts.
	js, err := nw.CLI(context.Background(), "lease", "events", strconv.FormatUint(res.DSeq, 10), "--from", "tenant", "--keyring-backend", "test", "--chain-id", nw.Config.ChainID, "--output", "json")
	if err != nil || !strings.Contains(js, `"kind":"oom"`) || !strings.Contains(js, `"exit_code":137`) {
		t.Fatalf("lease events --output json: %v\n%s", err, js)
	}
}

// TestCrashLoopClosesLeaseAsWorkloadFailed: a service that exits with an
// error again and again is closed by its provider as workload_failed after
// crash_loop_restarts exits, with the exit code and its last output in the
// lease's events, so the tenant stops paying for a dead service.
func TestCrashLoopClosesLeaseAsWorkloadFailed(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"crash_loop_restarts: 5     #": "crash_loop_restarts: 3     #",
	}})
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"flaky", `"-print", "cannot reach the database", "-count", "3", "-interval", "1s", "-exit", "3"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	events := followEvents(t, nw, res.DSeq)
	got := waitFor(t, "crash loop", 90*time.Second, events, "crash_loop (exit code 3)", "flaky-0 crashed 3 times", "cannot reach the database", "closing: the provider closes the lease: workload_failed")
	t.Logf("events:\n%s", got)
	prov.waitLog(30*time.Second, "lease closed", "reason=workload_failed")
	waitNoContainers(t, nw.Keys["tenant"], res.DSeq)
}

// TestLeaseShellRunsCommandsForTheOwnerOnly: `lease shell` runs a command
// in the lease's container: its output comes back and its exit code is
// the CLI's; stdin reaches it; a terminal gets the tenant's size and
// follows a resize. Another account is refused, and a closed lease too.
func TestLeaseShellRunsCommandsForTheOwnerOnly(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000"})
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	dseq := strconv.FormatUint(res.DSeq, 10)
	shell := func(stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(gpunetd, append([]string{"lease", "shell", dseq, "--from", "tenant", "--keyring-backend", "test",
			"--chain-id", nw.Config.ChainID, "--home", nw.KeyringHome(), "--node", nw.Nodes[0].RPCAddr()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		b, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(b), code
	}
	if out, code := shell("", "--", "/app", "-print", "hello from inside", "-exit", "7"); code != 7 || !strings.Contains(out, "hello from inside") {
		t.Fatalf("shell: exit %d, output %q; want 7 and the command's output", code, out)
	}
	if out, code := shell("one\ntwo\n", "--stdin", "--", "/app", "-echo-stdin"); code != 0 || !strings.Contains(out, "ONE\nTWO\nstdin ended") {
		t.Fatalf("shell with stdin: exit %d, output %q", code, out)
	}
	if out, code := shell("", "--service", "nope", "--", "/app"); code == 0 || !strings.Contains(out, `no lease of the deployment runs service "nope"`) {
		t.Fatalf("shell in a service that does not exist: exit %d, output %q", code, out)
	}

	// A terminal: the size given, then a resize, as the command sees them
	// (its first line may come before the engine sized the terminal).
	tenant := nw.Keys["tenant"]
	cl := api.NewClient(prov.apiURL, nw.Config.ChainID, prov.addr, providerCert(t, nw, prov.addr), tenant, exportKey(t, nw, "tenant"))
	resize := make(chan [2]uint16, 1)
	var got strings.Builder
	pr, pw := io.Pipe()
	go func() {
		// After the first size line, the terminal grows.
		buf := make([]byte, 256)
		for {
			n, err := pr.Read(buf)
			got.Write(buf[:n])
			if strings.Contains(got.String(), "winsize 33x101") {
				resize <- [2]uint16{40, 120}
				_, _ = io.Copy(&got, pr)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	code, err := cl.Shell(context.Background(), tenant, res.DSeq, 1, 1, api.ShellRequest{Cmd: []string{"/app", "-winsize", "4"}, TTY: true, Rows: 33, Cols: 101}, nil, pw, pw, resize)
	pw.Close()
	if err != nil || code != 0 {
		t.Fatalf("tty shell: %d %v", code, err)
	}
	time.Sleep(100 * time.Millisecond)
	if s := got.String(); !strings.Contains(s, "winsize 33x101\r\n") || !strings.Contains(s, "winsize 40x120") {
		t.Fatalf("the terminal's sizes as the command saw them: %q", s)
	}

	// Another account: refused; so is a closed lease.
	other := api.NewClient(prov.apiURL, nw.Config.ChainID, prov.addr, providerCert(t, nw, prov.addr), nw.Keys["validator"], exportKey(t, nw, "validator"))
	var se *api.StatusError
	if _, err := other.Shell(context.Background(), tenant, res.DSeq, 1, 1, api.ShellRequest{Cmd: []string{"/app"}}, nil, io.Discard, io.Discard, nil); !errors.As(err, &se) || se.Code != 403 && se.Code != 404 {
		t.Fatalf("a shell for another account: %v, want refused", err)
	}
	if out, err := nw.CLI(context.Background(), "tx", "market", "close-deployment", dseq, "--from", "tenant", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close: %v\n%s", err, out)
	}
	waitNoContainers(t, tenant, res.DSeq)
	if _, err := cl.Shell(context.Background(), tenant, res.DSeq, 1, 1, api.ShellRequest{Cmd: []string{"/app"}}, nil, io.Discard, io.Discard, nil); !errors.As(err, &se) || se.Code != 404 {
		t.Fatalf("a shell in a closed lease: %v, want 404", err)
	}
}

// TestFeeGranterPaysTheTenantsFees: with --fee-granter, a deploy's fees
// come from the allowance another account granted the tenant (x/feegrant):
// the tenant's balance falls by the deposit alone.
func TestFeeGranterPaysTheTenantsFees(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000"})
	chain := newChainReader(t, nw.Nodes[0])
	tenant, sponsor := nw.Keys["tenant"], nw.Keys["validator"]
	if out, err := nw.CLI(context.Background(), "tx", "feegrant", "grant", sponsor, tenant, "--spend-limit", "1000000ugpn", "--from", "validator", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--fees", "10000ugpn", "--yes"); err != nil {
		t.Fatalf("grant: %v\n%s", err, out)
	}
	h0 := chain.height() + 2
	chain.waitHeight(h0)
	before, sponsorBefore := chain.balanceAt(tenant, h0), chain.balanceAt(sponsor, h0)
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "5000000ugpn", "--fee-granter", sponsor)
	if err != nil {
		t.Fatalf("deploy with a fee granter: %v\n%s", err, out)
	}
	h1 := res.Height
	chain.waitHeight(h1)
	fee := mustInt(t, strings.TrimSuffix(res.Fee, "ugpn"))
	if got := before - chain.balanceAt(tenant, h1); got != 5_000_000 || fee <= 0 {
		t.Fatalf("tenant paid %d for a 5000000ugpn deposit with fee %d granted: the fee was not the granter's", got, fee)
	}
	if got := sponsorBefore - chain.balanceAt(sponsor, h1); got < fee {
		t.Fatalf("the granter's balance fell by %d, less than the fee %d", got, fee)
	}
}
