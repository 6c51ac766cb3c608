package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleConnectAndBalance: a person opens the console in a browser
// with a wallet, connects, and sees their address and balance, exactly as
// the chain has it; the wallet was offered the chain's own parameters.
func TestConsoleConnectAndBalance(t *testing.T) {
	nw := startNetwork(t, 1)
	c := startConsole(t, nw)
	w := startWallet(t, nw, "tenant")
	ctx := newBrowser(t, w)
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
