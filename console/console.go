// Package console is `gpunetd console`: a web console for people who rent
// and provide from a browser. It serves an embedded single-page app and a
// small backend that holds no key:
//
//   - it reads the chain for the page (chain parameters for the wallet,
//     balances) and proxies the node's RPC (and REST, when given);
//   - it builds transactions in Go, so the browser wallet only signs the
//     bytes it is shown (SIGN_MODE_DIRECT), and broadcasts what it signed;
//   - it relays the page's signed requests to providers unchanged, after
//     checking each provider's TLS certificate against the SHA-256 pinned
//     on chain (a browser cannot reach a self-signed provider itself).
//
// It answers only its own pages: requests for another host name (DNS
// rebinding) or from another origin are refused.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/cosmos/cosmos-sdk/client"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

//go:embed web
var webFS embed.FS

// Options configure a console.
type Options struct {
	// Client reaches the node (its RPC), with the chain's codec and
	// transaction config. Required.
	Client client.Context
	// RPC is the node's CometBFT RPC URL (http://…), proxied under /rpc/.
	RPC string
	// REST is the node's REST API URL, proxied under /rest/ ("" : none).
	REST string
	// GasPrice prices the transactions the console builds; GasAdjustment
	// multiplies their simulated gas.
	GasPrice      sdk.DecCoin
	GasAdjustment float64
	// Denom is the chain's base denomination, DisplayDenom its human unit
	// and Exponent the decimals between them.
	Denom, DisplayDenom string
	Exponent            int
	// Bech32Prefix is the chain's account address prefix.
	Bech32Prefix string
	// Logger receives one line per request that fails (default
	// slog.Default()).
	Logger *slog.Logger
}

// Server is the console's HTTP handler.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	// lookup finds a provider's record (the chain's, but for unit tests).
	lookup func(ctx context.Context, owner string) (providertypes.ProviderView, error)
}

// New builds a console.
func New(opts Options) (*Server, error) {
	if opts.Client.ChainID == "" {
		return nil, errors.New("console: the chain id is required (--chain-id)")
	}
	if opts.GasAdjustment <= 0 {
		opts.GasAdjustment = 1.4
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	s.lookup = s.lookupProvider
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("/", http.FileServerFS(static))
	s.mux.HandleFunc("GET /api/chain", s.chain)
	s.mux.HandleFunc("GET /api/accounts/{addr}/balance", s.balance)
	s.mux.HandleFunc("GET /api/accounts/{addr}/deployments", s.deployments)
	s.mux.HandleFunc("GET /api/accounts/{addr}/deployments/{dseq}", s.deployment)
	s.mux.HandleFunc("GET /api/accounts/{addr}/deployments/{dseq}/bids", s.bids)
	s.mux.HandleFunc("GET /api/accounts/{addr}/deployments/{dseq}/why", s.whyNoBids)
	s.mux.HandleFunc("GET /api/templates", s.templates)
	s.mux.HandleFunc("GET /api/providers/{addr}/dashboard", s.providerDashboard)
	s.mux.HandleFunc("GET /api/providers", s.providers)
	s.mux.HandleFunc("POST /api/deploy/plan", s.planDeploy)
	s.mux.HandleFunc("POST /api/deploy/update", s.planUpdate)
	s.mux.HandleFunc("POST /api/tx/build", s.buildTx)
	s.mux.HandleFunc("POST /api/tx/broadcast", s.broadcastTx)
	s.mux.HandleFunc("/api/providers/{provider}/relay/{path...}", s.relay)
	s.mux.HandleFunc("GET /api/providers/{provider}/shell", s.shell)
	for prefix, target := range map[string]string{"/rpc/": opts.RPC, "/rest/": opts.REST} {
		if target == "" {
			continue
		}
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("console: %s is not an http(s) URL of the node", target)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.FlushInterval = -1
		s.mux.Handle(prefix, http.StripPrefix(strings.TrimSuffix(prefix, "/"), p))
	}
	return s, nil
}

// ServeHTTP answers the console's own pages only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); ip == nil && host != "localhost" {
		// A name other than localhost: a DNS-rebinding page that made
		// the browser call this console as its own origin.
		writeError(w, http.StatusMisdirectedRequest, "console", "this console answers at an IP address or localhost, not "+host)
		return
	}
	nodeProxy := strings.HasPrefix(r.URL.Path, "/rpc/") || strings.HasPrefix(r.URL.Path, "/rest/")
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		// The wallet extension itself reads the node through the proxies.
		wallet := err == nil && nodeProxy && (u.Scheme == "chrome-extension" || u.Scheme == "moz-extension")
		if !wallet && (err != nil || u.Host != r.Host || o == "null") {
			writeError(w, http.StatusForbidden, "console", "requests from another site ("+o+") are refused")
			return
		}
		if wallet {
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			if r.Method == http.MethodOptions {
				return
			}
		}
	}
	// The API answers the page's own calls only, which carry this header:
	// not a navigation another site sends the browser to, nor a form it
	// posts (neither can set it). The shell's WebSocket cannot set headers
	// either; the upgrader checks its origin.
	if strings.HasPrefix(r.URL.Path, "/api/") && r.Header.Get(HeaderConsole) != "1" && !strings.HasSuffix(r.URL.Path, "/shell") {
		writeError(w, http.StatusForbidden, "console", "the console's API answers its own page only (missing "+HeaderConsole+")")
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	s.mux.ServeHTTP(w, r)
}

// HeaderConsole marks the page's own calls to the console's API.
const HeaderConsole = "X-Gpunet-Console"

// ChainInfo is what the page needs of the chain, and the wallet's
// experimentalSuggestChain entry built from it.
type ChainInfo struct {
	ChainID      string         `json:"chain_id"`
	Denom        string         `json:"denom"`
	DisplayDenom string         `json:"display_denom"`
	Exponent     int            `json:"exponent"`
	Bech32Prefix string         `json:"bech32_prefix"`
	GasPrice     string         `json:"gas_price"`
	Suggest      map[string]any `json:"suggest_chain"`
}

// Info is the chain's description for wallets, with rpc and rest the URLs
// the wallet should use.
func (s *Server) Info(rpc, rest string) ChainInfo {
	o := s.opts
	cur := map[string]any{"coinDenom": o.DisplayDenom, "coinMinimalDenom": o.Denom, "coinDecimals": o.Exponent}
	p := o.Bech32Prefix
	gas := o.GasPrice.Amount.MustFloat64()
	return ChainInfo{
		ChainID: o.Client.ChainID, Denom: o.Denom, DisplayDenom: o.DisplayDenom, Exponent: o.Exponent, Bech32Prefix: p,
		GasPrice: o.GasPrice.String(),
		Suggest: map[string]any{
			"chainId": o.Client.ChainID, "chainName": "gpunet " + o.Client.ChainID, "rpc": rpc, "rest": rest,
			"bip44":        map[string]any{"coinType": 118},
			"bech32Config": map[string]string{"bech32PrefixAccAddr": p, "bech32PrefixAccPub": p + "pub", "bech32PrefixValAddr": p + "valoper", "bech32PrefixValPub": p + "valoperpub", "bech32PrefixConsAddr": p + "valcons", "bech32PrefixConsPub": p + "valconspub"},
			"currencies":   []any{cur},
			"feeCurrencies": []any{map[string]any{"coinDenom": o.DisplayDenom, "coinMinimalDenom": o.Denom, "coinDecimals": o.Exponent,
				"gasPriceStep": map[string]float64{"low": gas, "average": gas * 1.5, "high": gas * 2}}},
			"stakeCurrency": cur,
			"features":      []string{},
		},
	}
}

func (s *Server) chain(w http.ResponseWriter, r *http.Request) {
	base := "http://" + r.Host
	rest := ""
	if s.opts.REST != "" {
		rest = base + "/rest"
	}
	writeJSON(w, http.StatusOK, s.Info(base+"/rpc", rest))
}

// Balance is an account's balance in the chain's denom.
type Balance struct {
	Address string `json:"address"`
	Amount  string `json:"amount"`
	Denom   string `json:"denom"`
}

func (s *Server) balance(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("addr")
	if !s.validAddress(w, addr, "address") {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res, err := banktypes.NewQueryClient(s.opts.Client).Balance(ctx, &banktypes.QueryBalanceRequest{Address: addr, Denom: s.opts.Denom})
	if err != nil {
		s.nodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Balance{Address: addr, Amount: res.Balance.Amount.String(), Denom: res.Balance.Denom})
}

// validAddress answers 400, of kind, unless addr is an account address of
// the chain.
func (s *Server) validAddress(w http.ResponseWriter, addr, kind string) bool {
	if _, err := sdk.GetFromBech32(addr, s.opts.Bech32Prefix); err != nil {
		writeError(w, http.StatusBadRequest, kind, fmt.Sprintf("%q is not a %s address: %v", addr, s.opts.Bech32Prefix, err))
		return false
	}
	return true
}

// nodeError answers a failed node query.
func (s *Server) nodeError(w http.ResponseWriter, err error) {
	s.log.Warn("node query failed", "err", err)
	writeError(w, http.StatusBadGateway, "node", "the node did not answer: "+err.Error())
}

// apiError is every error the console's API answers: kind names the
// problem for the page (node, provider_down, cert_mismatch, tx_rejected,
// …), message says it to a person.
type apiError struct {
	Kind    string `json:"kind"`
	Message string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, apiError{Kind: kind, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to tell it
}
