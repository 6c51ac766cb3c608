package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"

	"github.com/gpunet/gpunet/provider/leaseauth"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// consoleProc is a running `gpunetd console`.
type consoleProc struct {
	url string
	log *bytes.Buffer
}

// startConsole runs `gpunetd console` against the network's first node
// and waits until it answers.
func startConsole(t *testing.T, nw *localnet.Network) *consoleProc {
	t.Helper()
	port := freeLocalPort(t)
	c := &consoleProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}}
	cmd := exec.Command(gpunetd, "console", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--node", nw.Nodes[0].RPCAddr(), "--chain-id", nw.Config.ChainID)
	var mu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return c.log.Write(p) })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("console log:\n%s", c.log.String())
			mu.Unlock()
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest("GET", c.url+"/api/chain", nil)
		req.Header.Set("X-Gpunet-Console", "1")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console did not answer within 20 s:\n%s", c.log.String())
		}
	}
}

// testWallet stands in for Keplr: the page's window.keplr calls it, and it
// signs in the test process with a key of the network's keyring, as Keplr
// would (direct mode over the sign doc the page passes).
type testWallet struct {
	mux     *http.ServeMux
	keyName string
	// ledger makes it a hardware wallet: legacy amino JSON signing only.
	ledger  bool
	amino   int // amino signatures made
	mu      sync.Mutex
	signed  int
	suggest json.RawMessage
}

func startWallet(t *testing.T, nw *localnet.Network, keyName string) *testWallet {
	t.Helper()
	sign := exportKey(t, nw, keyName)
	_, pub, err := sign([]byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	w := &testWallet{keyName: keyName}
	mux := http.NewServeMux()
	reply := func(rw http.ResponseWriter, v any) {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(v)
	}
	pubKey := map[string]string{"type": "tendermint/PubKeySecp256k1", "value": base64.StdEncoding.EncodeToString(pub.Bytes())}
	// signature signs msg and counts it, as a StdSignature's JSON; false
	// once it has answered the failure.
	signature := func(rw http.ResponseWriter, msg []byte) (map[string]any, bool) {
		sig, _, err := sign(msg)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return nil, false
		}
		w.mu.Lock()
		w.signed++
		w.mu.Unlock()
		return map[string]any{"pub_key": pubKey, "signature": base64.StdEncoding.EncodeToString(sig)}, true
	}
	mux.HandleFunc("/key", func(rw http.ResponseWriter, _ *http.Request) {
		w.mu.Lock()
		ledger := w.ledger
		w.mu.Unlock()
		reply(rw, map[string]any{"name": keyName, "bech32Address": nw.Keys[keyName], "pubKey": pubKey["value"], "algo": "secp256k1", "isNanoLedger": ledger})
	})
	mux.HandleFunc("/signAmino", func(rw http.ResponseWriter, r *http.Request) {
		var req struct{ Doc json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		// As cosmjs serializes a sign doc: keys sorted, no spaces.
		doc, err := sdk.SortJSON(req.Doc)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		sig, ok := signature(rw, doc)
		if !ok {
			return
		}
		w.mu.Lock()
		w.amino++
		w.mu.Unlock()
		var signed any
		_ = json.Unmarshal(req.Doc, &signed)
		reply(rw, map[string]any{"signed": signed, "signature": sig})
	})
	mux.HandleFunc("/suggest", func(rw http.ResponseWriter, r *http.Request) {
		var raw json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&raw)
		w.mu.Lock()
		w.suggest = raw
		w.mu.Unlock()
		reply(rw, map[string]bool{"ok": true})
	})
	mux.HandleFunc("/signDirect", func(rw http.ResponseWriter, r *http.Request) {
		var req struct {
			BodyBytes, AuthInfoBytes []byte
			ChainID                  string `json:"chainId"`
			AccountNumber            string `json:"accountNumber"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		var num uint64
		_, _ = fmt.Sscan(req.AccountNumber, &num)
		doc, err := (&txtypes.SignDoc{BodyBytes: req.BodyBytes, AuthInfoBytes: req.AuthInfoBytes, ChainId: req.ChainID, AccountNumber: num}).Marshal()
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		sig, ok := signature(rw, doc) // direct mode: the sign doc's bytes
		if !ok {
			return
		}
		reply(rw, map[string]any{
			"signed":    map[string]any{"bodyBytes": req.BodyBytes, "authInfoBytes": req.AuthInfoBytes, "chainId": req.ChainID, "accountNumber": req.AccountNumber},
			"signature": sig,
		})
	})
	mux.HandleFunc("/signArbitrary", func(rw http.ResponseWriter, r *http.Request) {
		var req struct{ Signer, Data string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		if sig, ok := signature(rw, leaseauth.ADR36SignBytes(req.Signer, []byte(req.Data))); ok {
			reply(rw, sig)
		}
	})
	w.mux = mux
	return w
}

// call answers one of the page's wallet calls (method as path, JSON body).
func (w *testWallet) call(method string, body []byte) []byte {
	rec := httptest.NewRecorder()
	w.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+method, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		out, _ := json.Marshal(map[string]string{"error": rec.Body.String()})
		return out
	}
	return rec.Body.Bytes()
}

// script is the window.keplr the page finds: Keplr's calls, answered by
// the test wallet (bytes travel as base64).
func (w *testWallet) script() string {
	return `(() => {
  const b64 = (u) => btoa(String.fromCharCode(...u));
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  // Like an extension's messaging, a binding to the test process: not a
  // request of the page's, so the page's own rules (CSP) do not apply.
  const pending = new Map();
  let seq = 0;
  window.__gpunetWalletReply = (id, res) => { const p = pending.get(id); pending.delete(id); res.error ? p.reject(new Error(res.error)) : p.resolve(res); };
  const post = (method, body) => new Promise((resolve, reject) => {
    const id = ++seq;
    pending.set(id, {resolve, reject});
    window.__gpunetWallet(JSON.stringify({id, method: method.slice(1), body}));
  });
  window.keplr = {
    async experimentalSuggestChain(info) { await post("/suggest", info); },
    async enable(chainId) { window.__enabled = chainId; },
    async getKey(chainId) {
      const k = await post("/key", {});
      return {name: k.name, algo: k.algo, bech32Address: k.bech32Address, pubKey: unb64(k.pubKey), address: new Uint8Array(20), isNanoLedger: k.isNanoLedger};
    },
    async signAmino(chainId, signer, doc) {
      return post("/signAmino", {doc});
    },
    async signArbitrary(chainId, signer, data) {
      return post("/signArbitrary", {signer, data: typeof data === "string" ? data : new TextDecoder().decode(data)});
    },
    async signDirect(chainId, signer, doc) {
      const r = await post("/signDirect", {bodyBytes: b64(doc.bodyBytes), authInfoBytes: b64(doc.authInfoBytes), chainId: doc.chainId, accountNumber: String(doc.accountNumber)});
      return {signed: {bodyBytes: unb64(r.signed.bodyBytes), authInfoBytes: unb64(r.signed.authInfoBytes), chainId: r.signed.chainId, accountNumber: r.signed.accountNumber}, signature: r.signature};
    },
  };
})();`
}

// newBrowser starts Debian's chromium, headless, with the test wallet in
// every page; the context ends with the test.
func newBrowser(t *testing.T, w *testWallet) context.Context {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (scripts/setup.sh installs it): ", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 800),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelA() })
	chromedp.ListenTarget(ctx, func(ev any) {
		e, ok := ev.(*cdpruntime.EventBindingCalled)
		if !ok || e.Name != "__gpunetWallet" {
			return
		}
		var req struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Body   json.RawMessage `json:"body"`
		}
		if json.Unmarshal([]byte(e.Payload), &req) != nil {
			return
		}
		go func() {
			out := w.call(req.Method, req.Body)
			_ = chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf("window.__gpunetWalletReply(%d, %s)", req.ID, out), nil)) // the page may have gone
		}()
	})
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		if err := cdpruntime.AddBinding("__gpunetWallet").Do(ctx); err != nil {
			return err
		}
		_, err := page.AddScriptToEvaluateOnNewDocument(w.script()).Do(ctx)
		return err
	})); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// run runs browser actions with a deadline, failing the test with the
// page's text when they do not complete.
func run(t *testing.T, ctx context.Context, within time.Duration, actions ...chromedp.Action) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	if err := chromedp.Run(tctx, actions...); err != nil {
		var text string
		_ = chromedp.Run(ctx, chromedp.Text("body", &text, chromedp.ByQuery))
		screenshot(t, ctx, "failed")
		t.Fatalf("browser: %v\npage says:\n%s", err, text)
	}
}

// screenshot saves the page as NAME.png in the test's artifact directory
// (kept with go test -artifacts).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	p := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", p)
}

// gpn writes ugpn as the console does: GPN with thousands separators and
// the fraction's trailing zeros cut.
func gpn(ugpn int64) string {
	whole, frac := ugpn/1_000_000, ugpn%1_000_000
	s := fmt.Sprint(whole)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	return s + " GPN"
}

// connect opens the console and connects the test wallet.
func (c *consoleProc) connect() chromedp.Action {
	return chromedp.Tasks{
		chromedp.Navigate(c.url + "/"),
		chromedp.Poll(`document.querySelector("[data-testid=chain]").textContent !== ""`, nil),
		chromedp.Click(`[data-testid=connect]`, chromedp.ByQuery),
	}
}

// openLease opens a lease from the deployments list by its button and
// waits, as a person would, until the page has shown the lease's status
// and events from its provider (or said why it cannot): they arrive after
// the click and push the buttons below them down, so a click sent before
// could land where a button was a moment ago.
func openLease(button string) chromedp.Action {
	return chromedp.Tasks{
		chromedp.WaitVisible(button, chromedp.ByQuery),
		chromedp.Click(button, chromedp.ByQuery),
		chromedp.Poll(`(document.querySelector("[data-testid=lease-status]").textContent !== "" && document.querySelector("[data-testid=events]").textContent !== "") || !document.querySelector("[data-testid=notice]").hidden`, nil, chromedp.WithPollingTimeout(30*time.Second)),
	}
}

// signatures is how many times the wallet signed.
func (w *testWallet) signatures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.signed
}

// runningJob deploys, as the tenant, the sample job running for ten
// minutes, and waits until it runs.
func runningJob(t *testing.T, nw *localnet.Network) deployResult {
	t.Helper()
	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, "")), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	return res
}

// startPage starts the console, a test wallet of key and a browser.
func startPage(t *testing.T, nw *localnet.Network, key string) (*consoleProc, *testWallet, context.Context) {
	t.Helper()
	c := startConsole(t, nw)
	w := startWallet(t, nw, key)
	return c, w, newBrowser(t, w)
}

// leaseButton is the deployments list's Open button of a deployment's
// first lease.
func leaseButton(dseq uint64) string { return fmt.Sprintf(`[data-testid="open-%d-1-1"]`, dseq) }
