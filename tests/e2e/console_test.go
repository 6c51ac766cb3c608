package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gpunet/gpunet/console"
	"github.com/gpunet/gpunet/internal/testpki"
	"github.com/gpunet/gpunet/provider/leaseauth"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// TestConsoleConnectAndBalance: a person opens the console in a browser
// with a wallet, connects, and sees their address and balance, exactly as
// the chain has it; the wallet was offered the chain's own parameters.
func TestConsoleConnectAndBalance(t *testing.T) {
	nw := startNetwork(t, 1)
	c, w, ctx := startPage(t, nw, "tenant")
	tenant := nw.Keys["tenant"]
	want := gpn(balanceCLI(t, nw, nw.Nodes[0], tenant))

	var chain, address, balance string
	run(t, ctx, 60*time.Second,
		chromedp.Navigate(c.url+"/"),
		chromedp.WaitVisible(`[data-testid=connect]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=chain]").textContent !== ""`, nil),
		chromedp.Text(`[data-testid=chain]`, &chain, chromedp.ByQuery),
		chromedp.Click(`[data-testid=connect]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=balance]").textContent !== ""`, nil),
		chromedp.Text(`[data-testid=address]`, &address, chromedp.ByQuery),
		chromedp.Text(`[data-testid=balance]`, &balance, chromedp.ByQuery),
	)
	screenshot(t, ctx, "connected")
	if chain != nw.Config.ChainID || address != tenant || balance != want {
		t.Fatalf("the page shows chain %q, address %q, balance %q; want %q, %q, %q", chain, address, balance, nw.Config.ChainID, tenant, want)
	}
	w.mu.Lock()
	suggest := string(w.suggest)
	w.mu.Unlock()
	var s struct {
		ChainID       string `json:"chainId"`
		FeeCurrencies []struct {
			CoinMinimalDenom string `json:"coinMinimalDenom"`
			CoinDecimals     int    `json:"coinDecimals"`
		} `json:"feeCurrencies"`
		Bech32 struct {
			Acc string `json:"bech32PrefixAccAddr"`
		} `json:"bech32Config"`
	}
	if err := json.Unmarshal([]byte(suggest), &s); err != nil || s.ChainID != nw.Config.ChainID || len(s.FeeCurrencies) != 1 ||
		s.FeeCurrencies[0].CoinMinimalDenom != "ugpn" || s.FeeCurrencies[0].CoinDecimals != 6 || s.Bech32.Acc != "gpunet" || !strings.Contains(suggest, c.url+"/rpc") {
		t.Errorf("the chain suggested to the wallet: %v %s", err, suggest)
	}
}

// sessionClient is a browser session as the console page makes one: a
// P-256 key, a grant for it signed once by the owner's wallet (ADR-036),
// and each provider request signed with the session key and sent through
// the console's relay.
type sessionClient struct {
	t        *testing.T
	console  string
	provider string
	owner    string
	chainID  string
	key      *ecdsa.PrivateKey
	grant    string
}

func newSession(t *testing.T, nw *localnet.Network, console, provider, ownerKey string, issued time.Time) *sessionClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &sessionClient{t: t, console: console, provider: provider, owner: nw.Keys[ownerKey], chainID: nw.Config.ChainID, key: key}
	g, _ := json.Marshal(leaseauth.Grant{Type: leaseauth.GrantType, ChainID: s.chainID, Provider: provider, Owner: s.owner, SessionKey: leaseauth.SessionPubKey(&key.PublicKey),
		Issued: issued.Unix(), Expires: issued.Add(time.Hour).Unix()})
	sig, pub, err := exportKey(t, nw, ownerKey)(leaseauth.ADR36SignBytes(s.owner, g))
	if err != nil {
		t.Fatal(err)
	}
	sg, _ := json.Marshal(leaseauth.SignedGrant{Grant: string(g), PubKey: base64.StdEncoding.EncodeToString(pub.Bytes()), Signature: base64.StdEncoding.EncodeToString(sig)})
	s.grant = base64.StdEncoding.EncodeToString(sg)
	return s
}

// get sends a signed GET of the provider's path through the relay.
func (s *sessionClient) get(path string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.console+"/api/providers/"+s.provider+"/relay"+path, nil)
	req.Header.Set(console.HeaderConsole, "1")
	nonce := fmt.Sprintf("%032x", time.Now().UnixNano())
	ts := time.Now().Unix()
	sig, err := leaseauth.SessionSign(s.key, leaseauth.SignBytes(s.chainID, s.provider, "GET", path, nil, ts, nonce))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range map[string]string{leaseauth.HeaderSigner: s.owner, leaseauth.HeaderPubKey: leaseauth.SessionPubKey(&s.key.PublicKey),
		leaseauth.HeaderTimestamp: strconv.FormatInt(ts, 10), leaseauth.HeaderNonce: nonce, leaseauth.HeaderSignature: base64.StdEncoding.EncodeToString(sig), leaseauth.HeaderGrant: s.grant} {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestConsoleSessionReachesProviderUntilRevoked: a browser session (a
// session key under a grant the owner's wallet signed once) reads its
// lease through the console's relay from the real daemon; a grant made
// for another provider is refused there; `gpunetd lease revoke-sessions`
// cuts the session off at once, and a session opened afterwards works.
func TestConsoleSessionReachesProviderUntilRevoked(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	res := runningJob(t, nw)
	c := startConsole(t, nw)
	tenant := nw.Keys["tenant"]
	status := fmt.Sprintf("/v1/leases/%s/%d/1/1/status", tenant, res.DSeq)

	s := newSession(t, nw, c.url, prov.addr, "tenant", time.Now().Add(-5*time.Second))
	if code, body := s.get(status); code != http.StatusOK || !strings.Contains(body, fmt.Sprintf(`"lease":"%s/%d/1/1"`, tenant, res.DSeq)) || !strings.Contains(body, `"state":"running"`) {
		t.Fatalf("a session's status request through the console: %d %s", code, body)
	}
	// The same grant presented for another provider's name: the daemon
	// sees a grant that is not for it.
	foreign := newSession(t, nw, c.url, nw.Keys["validator"], "tenant", time.Now().Add(-5*time.Second))
	foreign.provider = prov.addr
	if code, body := foreign.get(status); code != http.StatusUnauthorized || !strings.Contains(body, "invalid session grant") {
		t.Errorf("a grant for another provider: %d %s", code, body)
	}

	if out, err := tenantCLI(t, nw, "lease", "revoke-sessions", strconv.FormatUint(res.DSeq, 10)); err != nil || !strings.Contains(out, "revoked on "+prov.addr) {
		t.Fatalf("revoke-sessions: %v\n%s", err, out)
	}
	if code, body := s.get(status); code != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Errorf("the session after its revocation: %d %s", code, body)
	}
	// A revocation covers grants issued up to the provider's clock skew
	// ahead (60 s here); one issued after that works.
	time.Sleep(3 * time.Second)
	fresh := newSession(t, nw, c.url, prov.addr, "tenant", time.Now().Add(59*time.Second))
	if code, body := fresh.get(status); code != http.StatusOK {
		t.Errorf("a session opened after the revocation: %d %s", code, body)
	}
}

// TestConsoleLogs: a tenant with a running lease opens the console,
// finds the deployment in its list, opens the lease and follows its logs,
// which the page reads from the provider through the console's relay with
// a session its wallet granted once.
func TestConsoleLogs(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	res := runningJob(t, nw)
	c, w, ctx := startPage(t, nw, "tenant")
	open := leaseButton(res.DSeq)
	var logs, status, events string
	run(t, ctx, 90*time.Second,
		c.connect(),
		openLease(open),
		chromedp.Click(`[data-testid=logs-follow]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=logs]").textContent.includes("[job-0] step 3/600")`, nil, chromedp.WithPollingTimeout(60*time.Second)),
		chromedp.Text(`[data-testid=logs]`, &logs, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=events]").textContent !== ""`, nil),
		chromedp.Text(`[data-testid=lease-status]`, &status, chromedp.ByQuery),
		chromedp.Text(`[data-testid=events]`, &events, chromedp.ByQuery),
	)
	if !strings.Contains(status, "job-0 running · "+jobImage) || !strings.Contains(events, "running: every replica started") {
		t.Errorf("the lease's page shows status:\n%s\nevents:\n%s", status, events)
	}
	screenshot(t, ctx, "logs")
	if !strings.Contains(logs, "[job-0] step 1/600") {
		t.Errorf("the page's logs lack the first step:\n%s", logs)
	}
	if signed := w.signatures(); signed != 1 {
		t.Errorf("the wallet signed %d times; want once (the session grant)", signed)
	}

	// Revoke: the provider takes the revocation, and the page opens no
	// new session until it can be issued after it.
	var revoked, said string
	run(t, ctx, 30*time.Second,
		chromedp.Click(`[data-testid=revoke]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=revoke-state]").textContent.startsWith("sessions revoked")`, nil),
		chromedp.Text(`[data-testid=revoke-state]`, &revoked, chromedp.ByQuery),
		chromedp.Click(`[data-testid=logs-follow]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=notice]").textContent.includes("were revoked")`, nil),
		chromedp.Text(`[data-testid=notice]`, &said, chromedp.ByQuery),
	)
	if !strings.Contains(prov.log(), "session grants revoked") {
		t.Errorf("the provider did not record the revocation (%q, %q)", revoked, said)
	}
}

// escrowDeposited is what a deployment's escrow account was given, in ugpn.
func escrowDeposited(t *testing.T, nw *localnet.Network, owner string, dseq uint64) int64 {
	t.Helper()
	var v struct {
		Account struct {
			Deposited string `json:"deposited"`
		} `json:"account"`
	}
	cli(t, nw, nw.Nodes[0], &v, "query", "escrow", "account", owner, strconv.FormatUint(dseq, 10), "--output", "json")
	return mustInt(t, v.Account.Deposited)
}

// TestConsoleAddFunds: from the lease's page the tenant adds 2.5 GPN: the
// console builds the deposit, the wallet signs it, and the escrow account
// was given exactly 2,500,000 ugpn more while the tenant's balance fell by
// that and the fee the page showed before the wallet signed.
func TestConsoleAddFunds(t *testing.T) {
	nw := startNetwork(t, 1)
	// 0.5 core at 500000 ugpn an hour: the 5 GPN deposit lasts under a day.
	startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", CPUPrice: "500000"})
	res := runningJob(t, nw)
	tenant := nw.Keys["tenant"]
	c, w, ctx := startPage(t, nw, "tenant")
	open := leaseButton(res.DSeq)
	run(t, ctx, 60*time.Second,
		c.connect(),
		openLease(open),
		chromedp.Poll(`document.querySelector("[data-testid=escrow]").textContent.includes("5 GPN deposited")`, nil),
	)
	var banner string
	run(t, ctx, 10*time.Second, chromedp.Text(`[data-testid=runway]`, &banner, chromedp.ByQuery))
	if !strings.Contains(banner, fmt.Sprintf("Deployment %d runs out of funds in", res.DSeq)) {
		t.Errorf("no banner for a deployment that runs out within a day: %q", banner)
	}
	before, deposited := balanceCLI(t, nw, nw.Nodes[0], tenant), escrowDeposited(t, nw, tenant, res.DSeq)

	// A bad amount is refused on the page, before anything is signed.
	var said string
	run(t, ctx, 10*time.Second,
		chromedp.SendKeys(`[data-testid=fund-amount]`, "2.5000001", chromedp.ByQuery),
		chromedp.Click(`[data-testid=fund]`, chromedp.ByQuery),
		chromedp.Poll(`!document.querySelector("[data-testid=notice]").hidden`, nil),
		chromedp.Text(`[data-testid=notice]`, &said, chromedp.ByQuery),
	)
	if !strings.Contains(said, "at most 6 decimals") {
		t.Errorf("a 7-decimal amount: the page says %q", said)
	}
	// More than the tenant has: the chain refuses, and the page shows its
	// message; nothing is signed.
	var refused string
	run(t, ctx, 30*time.Second,
		chromedp.SetValue(`[data-testid=fund-amount]`, "60000", chromedp.ByQuery),
		chromedp.Click(`[data-testid=fund]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=notice]").textContent.includes("refuses")`, nil),
		chromedp.Text(`[data-testid=notice]`, &refused, chromedp.ByQuery),
	)
	if !strings.Contains(refused, "insufficient funds") || w.signatures() != 1 {
		t.Errorf("a deposit above the balance: the page says %q, the wallet signed %d times (want only the session grant)", refused, w.signatures())
	}

	var fee, done string
	run(t, ctx, 60*time.Second,
		chromedp.SetValue(`[data-testid=fund-amount]`, "2.5", chromedp.ByQuery),
		chromedp.Click(`[data-testid=fund]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=fund-state]").textContent.startsWith("added")`, nil, chromedp.WithPollingTimeout(45*time.Second)),
		chromedp.Text(`[data-testid=fund-state]`, &done, chromedp.ByQuery),
		chromedp.AttributeValue(`[data-testid=fund-state]`, "data-fee", &fee, nil, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=escrow]").textContent.includes("7.5 GPN deposited")`, nil),
	)
	screenshot(t, ctx, "funds-added")
	var hidden bool
	run(t, ctx, 10*time.Second, chromedp.Evaluate(`document.querySelector("[data-testid=runway]").hidden`, &hidden))
	if !hidden {
		t.Errorf("the runway banner stays after the deposit lasts over a day")
	}
	if !strings.Contains(done, "added 2.5 GPN") || !strings.HasSuffix(fee, "ugpn") {
		t.Fatalf("the page says %q (fee %q)", done, fee)
	}
	if got := escrowDeposited(t, nw, tenant, res.DSeq) - deposited; got != 2_500_000 {
		t.Errorf("escrow was given %d ugpn more, want 2500000", got)
	}
	paid := mustInt(t, strings.TrimSuffix(fee, "ugpn"))
	if got := before - balanceCLI(t, nw, nw.Nodes[0], tenant); got != 2_500_000+paid {
		t.Errorf("the tenant's balance fell by %d, want 2500000 + the fee %d", got, paid)
	}
	if signed := w.signatures(); signed != 2 {
		t.Errorf("the wallet signed %d times; want twice (the session grant the lease page opened, and the deposit)", signed)
	}

	// An automatic top-up: 1 GPN per refill, 10 in all, paid by the tenant.
	run(t, ctx, 60*time.Second,
		chromedp.SetValue(`[data-testid=topup-amount]`, "1", chromedp.ByQuery),
		chromedp.SetValue(`[data-testid=topup-limit]`, "10", chromedp.ByQuery),
		chromedp.Click(`[data-testid=topup]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=topup-state]").textContent.startsWith("set in block")`, nil, chromedp.WithPollingTimeout(45*time.Second)),
	)
	var topup struct {
		AutoTopup struct {
			Payer  string `json:"payer"`
			Amount coin   `json:"amount"`
			Limit  coin   `json:"limit"`
		} `json:"auto_topup"`
	}
	cli(t, nw, nw.Nodes[0], &topup, "query", "escrow", "auto-topup", tenant, strconv.FormatUint(res.DSeq, 10), "--output", "json")
	if a := topup.AutoTopup; a.Payer != tenant || a.Amount.Amount != "1000000" || a.Limit.Amount != "10000000" {
		t.Errorf("the chain's auto top-up: %+v", a)
	}

	// Close, with a second click to confirm: the deployment is closed on
	// chain and the rest of the escrow comes back.
	closeBtn := fmt.Sprintf(`[data-testid="close-%d"]`, res.DSeq)
	var said2 string
	run(t, ctx, 60*time.Second,
		chromedp.Click(closeBtn, chromedp.ByQuery),
		chromedp.Poll(fmt.Sprintf(`document.querySelector('%s').textContent === "Confirm close"`, closeBtn), nil),
		chromedp.Click(closeBtn, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=notice]").textContent.includes("closed in block")`, nil, chromedp.WithPollingTimeout(45*time.Second)),
		chromedp.Text(`[data-testid=notice]`, &said2, chromedp.ByQuery),
	)
	if leases, found := deploymentLeases(t, nw, tenant, res.DSeq); found && (len(leases) != 1 || leases[0].State != "LEASE_STATE_CLOSED") {
		t.Errorf("after closing from the page: the deployment has leases %+v", leases)
	}
	if b := moduleBalance(t, nw, "escrow"); b != 0 {
		t.Errorf("escrow holds %d ugpn after the only deployment closed", b)
	}
}

// TestConsoleDeployTemplate: a person picks the gpu-job template, sees
// what it asks for and costs, deploys it with one wallet signature (and
// one for the session), watches the bids, and the page sends the manifest
// to the winner and shows the workload running.
func TestConsoleDeployTemplate(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000")
	// The template runs gpunet/gpu-job:latest: the sample image the tests
	// build, tagged so (when no such image is there already).
	if err := exec.Command("docker", "image", "inspect", "gpunet/gpu-job:latest").Run(); err != nil {
		if out, err := exec.Command("docker", "tag", jobImage, "gpunet/gpu-job:latest").CombinedOutput(); err != nil {
			t.Fatalf("docker tag: %v\n%s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("docker", "rmi", "gpunet/gpu-job:latest").Run() })
	}
	c, w, ctx := startPage(t, nw, "tenant")
	var plan, progress, bids string
	run(t, ctx, 150*time.Second,
		c.connect(),
		chromedp.Poll(`document.querySelectorAll("[data-testid=template] option").length > 1`, nil),
		chromedp.Evaluate(`(() => { const s = document.querySelector("[data-testid=template]"); s.value = "gpu-job"; s.dispatchEvent(new Event("change")); })()`, nil),
		chromedp.Poll(`document.querySelector("[data-testid=plan]").textContent.includes("per hour")`, nil),
		chromedp.Text(`[data-testid=plan]`, &plan, chromedp.ByQuery),
		chromedp.Click(`[data-testid=deploy]`, chromedp.ByQuery),
		chromedp.Poll(`(() => { const t = document.querySelector("[data-testid=deploy-progress]").textContent; return t.includes("running:") || t.includes("did not") || document.querySelector(".progress li.bad") !== null; })()`, nil,
			chromedp.WithPollingTimeout(140*time.Second)),
		chromedp.Text(`[data-testid=deploy-progress]`, &progress, chromedp.ByQuery),
		chromedp.Text(`[data-testid=bids]`, &bids, chromedp.ByQuery),
	)
	screenshot(t, ctx, "deployed")
	if !strings.Contains(bids, "h100 81559 MiB ×2") {
		t.Errorf("the bids table does not show the provider's h100s:\n%s", bids)
	}
	if !strings.Contains(plan, "at most 3 GPN per hour") || !strings.Contains(plan, "job ×1: gpunet/gpu-job:latest") || !strings.Contains(plan, "1 GPU (h100 or") {
		t.Errorf("the plan the page showed:\n%s", plan)
	}
	if !strings.Contains(progress, "manifest accepted by") || !strings.Contains(progress, "running: job-0") || !strings.Contains(progress, "won by "+prov.addr) {
		t.Fatalf("the deployment's progress on the page:\n%s", progress)
	}
	if signed := w.signatures(); signed != 2 {
		t.Errorf("the wallet signed %d times; want twice (the deployment and the session grant)", signed)
	}
}

// TestConsoleWhyNoBids: an order for a GPU no provider has gets no bid,
// and the page says so by name, with what the providers do offer.
func TestConsoleWhyNoBids(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000")
	c, _, ctx := startPage(t, nw, "tenant")
	file, _ := json.Marshal(strings.Replace(jobSDL(jobImage, `"-steps", "1"`, "b200"), "amount: 5000000000", "amount: 3000000", 1))
	var why string
	run(t, ctx, 90*time.Second,
		c.connect(),
		chromedp.WaitVisible(`[data-testid=sdl]`, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector("[data-testid=sdl]"); e.value = %s; e.dispatchEvent(new Event("input")); })()`, file), nil),
		chromedp.Click(`[data-testid=deploy]`, chromedp.ByQuery),
		chromedp.Poll(`!document.querySelector("[data-testid=why]").hidden`, nil, chromedp.WithPollingTimeout(60*time.Second)),
		chromedp.Text(`[data-testid=why]`, &why, chromedp.ByQuery),
	)
	screenshot(t, ctx, "why-no-bids")
	if !strings.Contains(why, "no provider offers a GPU of model b200") || !strings.Contains(why, "offered here: h100 81559 MiB") {
		t.Fatalf("the page says:\n%s", why)
	}
	// The providers list, and one provider's live inventory and prices.
	var detail string
	run(t, ctx, 30*time.Second,
		chromedp.Click(`[data-testid="provider-`+prov.addr+`"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=provider-detail]").textContent.includes("prices per hour")`, nil),
		chromedp.Text(`[data-testid=provider-detail]`, &detail, chromedp.ByQuery),
	)
	if !strings.Contains(detail, "GPUs: 2 (declared), 2 free") || !strings.Contains(detail, "h100 2000000/h") || !strings.Contains(detail, providerCert(t, nw, prov.addr)) {
		t.Errorf("the provider's details:\n%s", detail)
	}
	// The editor kept the file across a reload.
	var kept string
	run(t, ctx, 20*time.Second,
		chromedp.Reload(),
		chromedp.WaitReady(`[data-testid=sdl]`, chromedp.ByQuery),
		chromedp.Value(`[data-testid=sdl]`, &kept, chromedp.ByQuery),
	)
	if !strings.Contains(kept, "model: b200") {
		t.Errorf("the editor after a reload holds:\n%s", kept)
	}
}

// TestConsoleCertificateMismatch: the provider's record on chain now pins
// another certificate than the one its API presents (a man in the middle,
// or a provider that changed keys without saying so): the page refuses to
// talk to it and says exactly that (that no request reaches such a server
// is TestRelaySaysWhatWentWrong's).
func TestConsoleCertificateMismatch(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	res := runningJob(t, nw)
	// Register another certificate; the running daemon keeps serving its own.
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	before := providerCert(t, nw, prov.addr)
	cfg, err := os.ReadFile(prov.config)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(strings.Replace(string(cfg), `cert_file: ""`, "cert_file: "+certFile, 1), `key_file: ""`, "key_file: "+keyFile, 1)
	if err := os.WriteFile(prov.config, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	prov.exec("register")
	if after := providerCert(t, nw, prov.addr); after == before {
		t.Fatal("the provider's pinned certificate did not change")
	}

	c, _, ctx := startPage(t, nw, "tenant")
	open := leaseButton(res.DSeq)
	var said string
	run(t, ctx, 60*time.Second,
		c.connect(),
		openLease(open),
		chromedp.Click(`[data-testid=logs-follow]`, chromedp.ByQuery),
		chromedp.Poll(`!document.querySelector("[data-testid=notice]").hidden`, nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Text(`[data-testid=notice]`, &said, chromedp.ByQuery),
	)
	screenshot(t, ctx, "certificate-mismatch")
	if !strings.Contains(said, "presented a TLS certificate that does not match the SHA-256 it registered on chain") {
		t.Fatalf("the page says %q", said)
	}
}

// TestConsoleProviderWithdraw: a provider connects its own wallet and sees
// its dashboard (record, attestation health, leases, earnings); Withdraw
// takes what its lease earned in one signed transaction and its balance
// rises by more than the fee.
func TestConsoleProviderWithdraw(t *testing.T) {
	nw := startNetwork(t, 1)
	// A dear core and a daemon that does not withdraw by itself, so the
	// earnings are the page's to take and far above a fee.
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", CPUPrice: "2000000000", Edits: map[string]string{
		"withdraw_interval: 1h": "withdraw_interval: 1h",
	}})
	if _, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, "")), "--deposit", "900000000ugpn"); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	c, _, ctx := startPage(t, nw, "provider")
	time.Sleep(4 * time.Second) // earn something
	before := balanceCLI(t, nw, nw.Nodes[0], prov.addr)
	var leases, attest, done string
	run(t, ctx, 90*time.Second,
		c.connect(),
		chromedp.WaitVisible(`[data-testid=withdraw]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=p-leases]`, &leases, chromedp.ByQuery),
		chromedp.Text(`[data-testid=p-attest]`, &attest, chromedp.ByQuery),
		chromedp.Click(`[data-testid=withdraw]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=withdraw-state]").textContent.startsWith("withdrew")`, nil, chromedp.WithPollingTimeout(60*time.Second)),
		chromedp.Text(`[data-testid=withdraw-state]`, &done, chromedp.ByQuery),
	)
	screenshot(t, ctx, "provider-withdraw")
	if leases != "1 active" || !strings.Contains(attest, "attested at block") {
		t.Errorf("the dashboard shows leases %q, attestation %q", leases, attest)
	}
	if !strings.Contains(done, "balance up") {
		t.Errorf("the page says %q", done)
	}
	if after := balanceCLI(t, nw, nw.Nodes[0], prov.addr); after <= before {
		t.Errorf("the provider's balance went from %d to %d", before, after)
	}
}

// TestConsoleManualAccept: with "let me choose", the auction runs 60
// blocks and the page lists each bid with an Accept button; accepting one
// starts the lease at once (long before the auction would end), and the
// page carries on to the running workload.
func TestConsoleManualAccept(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000")
	c, w, ctx := startPage(t, nw, "tenant")
	file, _ := json.Marshal(strings.Replace(jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, ""), "amount: 5000000000", "amount: 3000000", 1))
	accept := `[data-testid="accept-1-1-` + prov.addr + `"]`
	var progress string
	began := mustHeight(t, nw)
	run(t, ctx, 120*time.Second,
		c.connect(),
		chromedp.WaitVisible(`[data-testid=sdl]`, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector("[data-testid=sdl]"); e.value = %s; e.dispatchEvent(new Event("input")); document.querySelector("[data-testid=accept-mode]").value = "manual"; })()`, file), nil),
		chromedp.Click(`[data-testid=deploy]`, chromedp.ByQuery),
		chromedp.WaitVisible(accept, chromedp.ByQuery),
		chromedp.Click(accept, chromedp.ByQuery),
		chromedp.Poll(`(() => { const t = document.querySelector("[data-testid=deploy-progress]").textContent; return t.includes("running:") || document.querySelector(".progress li.bad") !== null; })()`, nil,
			chromedp.WithPollingTimeout(90*time.Second)),
		chromedp.Text(`[data-testid=deploy-progress]`, &progress, chromedp.ByQuery),
	)
	screenshot(t, ctx, "manual-accept")
	if !strings.Contains(progress, "won by "+prov.addr) || !strings.Contains(progress, "running: job-0") {
		t.Fatalf("the page's progress:\n%s", progress)
	}
	if h := mustHeight(t, nw); h-began >= 60 {
		t.Errorf("the lease ran %d blocks after the deploy: the auction's end, not the acceptance, made it", h-began)
	}
	if signed := w.signatures(); signed != 3 {
		t.Errorf("the wallet signed %d times; want 3 (deployment, acceptance, session grant)", signed)
	}
}

// TestConsoleShell: from the lease's page the tenant runs a command in its
// container and talks to it: a line typed in the page comes back through
// the command (an echo round trip), the end of input ends it, and the
// page shows its exit code.
func TestConsoleShell(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	c, _, ctx := startPage(t, nw, "tenant")
	open := leaseButton(res.DSeq)
	var output, exit string
	run(t, ctx, 90*time.Second,
		c.connect(),
		openLease(open),
		chromedp.SetValue(`[data-testid=shell-cmd]`, "/app -echo-stdin", chromedp.ByQuery),
		chromedp.Click(`[data-testid=shell-run]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=shell-state]").textContent.startsWith("running")`, nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.SetValue(`[data-testid=shell-in]`, "hello from the page", chromedp.ByQuery),
		chromedp.Click(`[data-testid=shell-send]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=shell-out]").textContent.includes("HELLO FROM THE PAGE")`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Click(`[data-testid=shell-eof]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=shell-state]").textContent.startsWith("exit")`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Text(`[data-testid=shell-out]`, &output, chromedp.ByQuery),
		chromedp.Text(`[data-testid=shell-state]`, &exit, chromedp.ByQuery),
	)
	screenshot(t, ctx, "shell")
	if exit != "exit 0" || !strings.Contains(output, "stdin ended") {
		t.Fatalf("the shell ended %q with output:\n%s", exit, output)
	}

	// The provider goes away: the page says so, in those words.
	prov.stop(syscall.SIGKILL)
	var said string
	run(t, ctx, 60*time.Second,
		chromedp.Click(`[data-testid=logs-follow]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=notice]").textContent.includes("does not answer")`, nil, chromedp.WithPollingTimeout(45*time.Second)),
		chromedp.Text(`[data-testid=notice]`, &said, chromedp.ByQuery),
	)
	if !strings.Contains(said, prov.addr) {
		t.Errorf("with the provider down the page says %q", said)
	}
}

// TestConsoleLogsSurviveAnIdleMinute: a workload that says nothing for
// more than a minute keeps its followed logs open in the page through the
// console's relay: the line after the silence arrives in the same stream.
func TestConsoleLogsSurviveAnIdleMinute(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	startProvider(t, nw, "2000000000")
	res, out, err := deploy(t, nw, writeSDL(t, workloadSDL("1Gi", "", svcDef{"app", `"-print", "tick", "-count", "2", "-interval", "65s", "-sleep", "1h"`, ""})), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	c, _, ctx := startPage(t, nw, "tenant")
	open := leaseButton(res.DSeq)
	count := `document.querySelector("[data-testid=logs]").textContent.split("[app-0] tick").length - 1`
	run(t, ctx, 60*time.Second,
		c.connect(),
		openLease(open),
		chromedp.Click(`[data-testid=logs-follow]`, chromedp.ByQuery),
		chromedp.Poll(count+` === 1`, nil, chromedp.WithPollingTimeout(40*time.Second)),
	)
	began := time.Now()
	var state string
	run(t, ctx, 100*time.Second,
		chromedp.Poll(count+` === 2`, nil, chromedp.WithPollingTimeout(95*time.Second)),
		chromedp.Text(`[data-testid=logs-state]`, &state, chromedp.ByQuery),
	)
	screenshot(t, ctx, "logs-after-idle")
	if idle := time.Since(began); idle < 55*time.Second || state != "following" {
		t.Fatalf("the second line came %s after the first, the stream %q; want over a minute of silence in one stream still following", idle, state)
	}
}

// TestConsoleUpdateInPlace: the tenant edits the running service's file
// in the page and updates the lease in place: the new version runs under
// the same lease; a file that asks for other resources is refused by name
// before anything is signed.
func TestConsoleUpdateInPlace(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	startProvider(t, nw, "2000000000")
	version := func(text string) string {
		return workloadSDL("1Gi", "", svcDef{"app", `"-print", "` + text + `", "-sleep", "1h"`, ""})
	}
	res, out, err := deploy(t, nw, writeSDL(t, version("version one")), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	c, w, ctx := startPage(t, nw, "tenant")
	setSDL := func(file string) chromedp.Action {
		js, _ := json.Marshal(file)
		return chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector("[data-testid=sdl]"); e.value = %s; e.dispatchEvent(new Event("input")); })()`, js), nil)
	}
	var said, state string
	run(t, ctx, 60*time.Second,
		c.connect(),
		openLease(leaseButton(res.DSeq)),
		setSDL(strings.Replace(version("version two"), "size: 256Mi", "size: 512Mi", 1)),
		chromedp.Click(`[data-testid=update]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=notice]").textContent.includes("cannot update deployment")`, nil),
		chromedp.Text(`[data-testid=notice]`, &said, chromedp.ByQuery),
		setSDL(version("version two")),
		chromedp.Click(`[data-testid=update]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=update-state]").textContent.endsWith("running")`, nil, chromedp.WithPollingTimeout(45*time.Second)),
		chromedp.Text(`[data-testid=update-state]`, &state, chromedp.ByQuery),
	)
	screenshot(t, ctx, "updated")
	if !strings.Contains(said, "memory") || w.signatures() != 2 {
		t.Errorf("other resources: the page said %q; the wallet signed %d times (want the update and the session)", said, w.signatures())
	}
	logs, err := tenantCLI(t, nw, "lease", "logs", strconv.FormatUint(res.DSeq, 10))
	if err != nil || !strings.Contains(logs, "version two") || strings.Contains(logs, "version one") {
		t.Fatalf("after the update (%q), the lease's logs: %v\n%s", state, err, logs)
	}
	if leases, _ := deploymentLeases(t, nw, nw.Keys["tenant"], res.DSeq); len(leases) != 1 || leases[0].State != "LEASE_STATE_ACTIVE" {
		t.Errorf("leases after the update: %+v, want the one lease, active", leases)
	}
}

// TestConsoleLedgerSignsAminoJSON: with a hardware wallet (which signs
// legacy amino JSON only, and shows the messages readably), the console
// builds the amino sign doc of exactly its transaction; the deposit the
// Ledger signs is accepted on chain, and nothing was signed in direct mode.
func TestConsoleLedgerSignsAminoJSON(t *testing.T) {
	nw := startNetwork(t, 1)
	startProvider(t, nw, "2000000000")
	res := runningJob(t, nw)
	tenant := nw.Keys["tenant"]
	c := startConsole(t, nw)
	w := startWallet(t, nw, "tenant")
	w.ledger = true
	ctx := newBrowser(t, w)
	deposited := escrowDeposited(t, nw, tenant, res.DSeq)
	var done string
	run(t, ctx, 60*time.Second,
		c.connect(),
		openLease(leaseButton(res.DSeq)),
		chromedp.SetValue(`[data-testid=fund-amount]`, "1.25", chromedp.ByQuery),
		chromedp.Click(`[data-testid=fund]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("[data-testid=fund-state]").textContent.startsWith("added")`, nil, chromedp.WithPollingTimeout(45*time.Second)),
		chromedp.Text(`[data-testid=fund-state]`, &done, chromedp.ByQuery),
	)
	screenshot(t, ctx, "ledger-deposit")
	if got := escrowDeposited(t, nw, tenant, res.DSeq) - deposited; got != 1_250_000 {
		t.Errorf("escrow was given %d ugpn more, want 1250000 (the page says %q)", got, done)
	}
	w.mu.Lock()
	amino, all := w.amino, w.signed
	w.mu.Unlock()
	if amino != 1 || all != 2 { // the deposit in amino JSON, and the session grant
		t.Errorf("the Ledger signed %d amino docs of %d signatures; want the deposit's only, plus the session grant", amino, all)
	}
}

// TestConsoleDeploySendsEachProviderItsGroups: the page sends a provider
// only the groups it won whole (the others as name and digest, joined
// from the server's JSON of each group without re-encoding it): the
// provider takes the manifest against the chain's hash and runs its
// group, and the other group's secret reaches none of its files or logs.
func TestConsoleDeploySendsEachProviderItsGroups(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	const secret = "s3cret-token-the-page-withholds"
	c, _, ctx := startPage(t, nw, "tenant")
	file, _ := json.Marshal(twoGroupSDL(jobImage, secret))
	var progress string
	run(t, ctx, 150*time.Second,
		c.connect(),
		chromedp.WaitVisible(`[data-testid=sdl]`, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelector("[data-testid=sdl]"); e.value = %s; e.dispatchEvent(new Event("input")); })()`, file), nil),
		chromedp.Click(`[data-testid=deploy]`, chromedp.ByQuery),
		chromedp.Poll(`(() => { const t = document.querySelector("[data-testid=deploy-progress]").textContent; return t.includes("running:") || document.querySelector(".progress li.bad") !== null; })()`, nil,
			chromedp.WithPollingTimeout(140*time.Second)),
		chromedp.Text(`[data-testid=deploy-progress]`, &progress, chromedp.ByQuery),
	)
	if !strings.Contains(progress, "manifest accepted by") || !strings.Contains(progress, "running: job-0") {
		t.Fatalf("the deployment's progress on the page:\n%s", progress)
	}
	expectNotHeld(t, prov, secret, "b200-worker")
}
