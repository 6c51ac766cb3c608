package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/examples"
	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/sdl"
	"github.com/gpunet/gpunet/tenant"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Template is an example SDL file the page offers.
type Template struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	SDL   string `json:"sdl"`
}

func (s *Server) templates(w http.ResponseWriter, _ *http.Request) {
	var out []Template
	err := fs.WalkDir(examples.Files, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(examples.Files, path)
		if err != nil {
			return err
		}
		title, _, _ := strings.Cut(strings.TrimPrefix(string(raw), "# "), "\n")
		out = append(out, Template{Name: strings.TrimSuffix(path, ".yaml"), Title: strings.TrimSuffix(title, ":"), SDL: string(raw)})
		return nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "templates", err.Error())
		return
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// DeployRequest asks for a deployment of an SDL file.
type DeployRequest struct {
	SDL       string `json:"sdl"`
	Owner     string `json:"owner"`
	Deposit   string `json:"deposit"`              // base units of the chain's denom
	BidWindow uint64 `json:"bid_window,omitempty"` // blocks; 0: the chain's default
}

// DeployPlan is what the page shows and signs for an SDL file: per group
// its resources and max price, the total max price per hour, the runway
// the deposit buys at that price, the message to sign, and the parts of
// the manifest to send the winning providers (credentials included: each
// group goes only to its provider, through the relay).
type DeployPlan struct {
	Groups       []GroupSummary  `json:"groups"`
	MaxPerHour   string          `json:"max_price_per_hour"` // base units
	RunwayHours  string          `json:"runway_hours"`       // at the max price
	ManifestHash string          `json:"manifest_hash"`
	Manifest     ManifestParts   `json:"manifest"`
	Msg          json.RawMessage `json:"msg"`
	Warnings     []string        `json:"warnings,omitempty"`
}

// ManifestParts are what the page builds each provider's manifest from
// (manifestFor in app.js): the groups that provider runs whole, as their
// JSON here, every other one as its name and digest. A provider so reads
// nothing of another provider's groups and still checks the hash on
// chain. The page joins these strings; it re-encodes nothing.
type ManifestParts struct {
	Version string   `json:"version"`
	Names   []string `json:"names"`
	Groups  []string `json:"groups"` // each group's JSON, registry logins included
	Digests []string `json:"digests"`
}

// manifestParts splits m into its parts.
func manifestParts(m sdl.Manifest) (ManifestParts, error) {
	p := ManifestParts{Version: m.Version}
	for _, g := range m.Groups {
		raw, err := json.Marshal(g)
		if err != nil {
			return ManifestParts{}, err
		}
		d, err := g.Digest()
		if err != nil {
			return ManifestParts{}, err
		}
		p.Names, p.Groups, p.Digests = append(p.Names, g.Name), append(p.Groups, string(raw)), append(p.Digests, d)
	}
	return p, nil
}

// GroupSummary is one placement group as a person reads it.
type GroupSummary struct {
	Name     string   `json:"name"`
	MaxPrice string   `json:"max_price_per_hour"`
	Services []string `json:"services"`
}

func (s *Server) planDeploy(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	if !readBody(w, r, &req) || !s.validAddress(w, req.Owner, "address") {
		return
	}
	deposit, ok := sdkmath.NewIntFromString(req.Deposit)
	if !ok || !deposit.IsPositive() {
		writeError(w, http.StatusBadRequest, "deposit", fmt.Sprintf("deposit %q: want a positive amount of %s", req.Deposit, s.opts.Denom))
		return
	}
	d, parts, hash, err := readSDL(req.SDL)
	if err != nil {
		writeError(w, http.StatusBadRequest, "sdl", err.Error())
		return
	}
	plan := DeployPlan{ManifestHash: fmt.Sprintf("%x", hash), Manifest: parts, Warnings: d.Warnings}
	total := sdkmath.LegacyZeroDec()
	for i, g := range d.Groups {
		if g.MaxPrice.Denom != s.opts.Denom {
			writeError(w, http.StatusBadRequest, "sdl", fmt.Sprintf("group %q is priced in %s; this chain's denom is %s", g.Name, g.MaxPrice.Denom, s.opts.Denom))
			return
		}
		total = total.Add(g.MaxPrice.Amount)
		gs := GroupSummary{Name: g.Name, MaxPrice: api.FormatDecCoin(g.MaxPrice.Amount.String(), g.MaxPrice.Denom)}
		for j, u := range g.Resources {
			svc := d.Manifest.Groups[i].Services[j]
			line := fmt.Sprintf("%s ×%d: %s, %dm CPU, %d MiB memory", svc.Name, u.Count, svc.Image, u.CpuMillis, u.MemoryBytes>>20)
			if u.Gpu.Units > 0 {
				models := "any NVIDIA GPU"
				if len(u.Gpu.Models) > 0 {
					models = strings.Join(u.Gpu.Models, " or ")
				}
				line += fmt.Sprintf(", %d GPU (%s)", u.Gpu.Units, models)
			}
			gs.Services = append(gs.Services, line)
		}
		plan.Groups = append(plan.Groups, gs)
	}
	plan.MaxPerHour = total.Ceil().TruncateInt().String()
	if total.IsPositive() {
		plan.RunwayHours = sdkmath.LegacyNewDecFromInt(deposit).Quo(total).String()
	}
	msg := &markettypes.MsgCreateDeployment{Owner: req.Owner, Groups: d.Groups, ManifestHash: hash, Deposit: sdk.NewCoin(s.opts.Denom, deposit), BidWindow: req.BidWindow}
	if plan.Msg, err = s.opts.Client.Codec.MarshalInterfaceJSON(msg); err != nil {
		writeError(w, http.StatusBadRequest, "sdl", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, plan)
}

// BidView is one bid on an order of a deployment, with what the page
// shows of its provider.
type BidView struct {
	GSeq        uint32 `json:"gseq"`
	OSeq        uint32 `json:"oseq"`
	Provider    string `json:"provider"`
	Price       string `json:"price_per_hour"`
	Reliability string `json:"reliability"`
	Uptime      string `json:"uptime"`
	// GPUs are the provider's devices of the models the order accepts.
	GPUs []string `json:"gpus"`
}

func (s *Server) bids(w http.ResponseWriter, r *http.Request) {
	owner, dseq, ok := s.deploymentRef(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	orders, err := s.deploymentBids(ctx, owner, dseq)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	out := []BidView{}
	read := map[string]*providertypes.ProviderView{} // one read per provider; nil: unreadable
	for _, ob := range orders {
		o := ob.order
		for _, b := range ob.bids {
			v := BidView{GSeq: o.Id.Gseq, OSeq: o.Id.Oseq, Provider: b.Id.Provider, Price: trimDec(b.Price.Amount.String()) + b.Price.Denom, GPUs: []string{}}
			p, done := read[b.Id.Provider]
			if !done {
				if view, err := s.lookup(ctx, b.Id.Provider); err == nil {
					p = &view
				}
				read[b.Id.Provider] = p
			}
			if p != nil {
				v.Reliability, v.Uptime = trimDec(p.Reliability.String()), trimDec(p.Uptime.String())
				v.GPUs = matchingGPUs(o.Spec, p.Provider.Gpus)
			}
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// deploymentRef reads a request's owner address and deployment number,
// answering 400 when one is malformed.
func (s *Server) deploymentRef(w http.ResponseWriter, r *http.Request) (string, uint64, bool) {
	owner := r.PathValue("addr")
	if !s.validAddress(w, owner, "address") {
		return "", 0, false
	}
	var dseq uint64
	if _, err := fmt.Sscan(r.PathValue("dseq"), &dseq); err != nil || fmt.Sprint(dseq) != r.PathValue("dseq") {
		writeError(w, http.StatusBadRequest, "dseq", fmt.Sprintf("%q is not a deployment number", r.PathValue("dseq")))
		return "", 0, false
	}
	return owner, dseq, true
}

// orderBids is an order of a deployment and its bids.
type orderBids struct {
	order markettypes.Order
	bids  []markettypes.Bid
}

// deploymentBids reads a deployment's orders, each with its bids.
func (s *Server) deploymentBids(ctx context.Context, owner string, dseq uint64) ([]orderBids, error) {
	q := markettypes.NewQueryClient(s.opts.Client)
	dep, err := q.Deployment(ctx, &markettypes.QueryDeploymentRequest{Owner: owner, Dseq: dseq})
	if err != nil {
		return nil, err
	}
	out := make([]orderBids, 0, len(dep.Orders))
	for _, o := range dep.Orders {
		bs, err := q.BidsByOrder(ctx, &markettypes.QueryOrderRequest{Owner: o.Id.Owner, Dseq: o.Id.Dseq, Gseq: o.Id.Gseq, Oseq: o.Id.Oseq})
		if err != nil {
			return nil, err
		}
		out = append(out, orderBids{order: o, bids: bs.Bids})
	}
	return out, nil
}

// matchingGPUs are a provider's devices of the models an order's units
// accept, as "model memory ×count".
func matchingGPUs(spec markettypes.GroupSpec, gpus []providertypes.GPU) []string {
	out := []string{}
	for _, g := range gpus {
		for _, u := range spec.Resources {
			if u.Gpu.Units > 0 && (len(u.Gpu.Models) == 0 || slices.Contains(u.Gpu.Models, g.Model)) {
				out = append(out, fmt.Sprintf("%s %d MiB ×%d", g.Model, g.MemoryMib, g.Count))
				break
			}
		}
	}
	return out
}

// UpdateRequest asks to move a deployment to another version of its SDL
// file: the same resources, other images, commands or settings.
type UpdateRequest struct {
	SDL   string `json:"sdl"`
	Owner string `json:"owner"`
	DSeq  uint64 `json:"dseq,string"`
}

// UpdatePlan is the update's message (the new manifest hash on chain),
// the manifest for the providers, and each group's version hash, which a
// lease's status reports once it runs it.
type UpdatePlan struct {
	ManifestHash string          `json:"manifest_hash"`
	Manifest     ManifestParts   `json:"manifest"`
	GroupHashes  []string        `json:"group_hashes"`
	Msg          json.RawMessage `json:"msg"`
}

func (s *Server) planUpdate(w http.ResponseWriter, r *http.Request) {
	var req UpdateRequest
	if !readBody(w, r, &req) || !s.validAddress(w, req.Owner, "address") {
		return
	}
	d, parts, hash, err := readSDL(req.SDL)
	if err != nil {
		writeError(w, http.StatusBadRequest, "sdl", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	dep, err := markettypes.NewQueryClient(s.opts.Client).Deployment(ctx, &markettypes.QueryDeploymentRequest{Owner: req.Owner, Dseq: req.DSeq})
	if err != nil {
		s.nodeError(w, err)
		return
	}
	// An update changes what runs, never what is paid for.
	if err := tenant.SameResources(tenant.LeasedGroups(dep.Orders), d, nil); err != nil {
		writeError(w, http.StatusBadRequest, "sdl", "this file cannot update deployment "+fmt.Sprint(req.DSeq)+": "+err.Error())
		return
	}
	plan := UpdatePlan{ManifestHash: fmt.Sprintf("%x", hash), Manifest: parts}
	for _, g := range d.Manifest.Groups {
		plan.GroupHashes = append(plan.GroupHashes, g.Hash())
	}
	msg := &markettypes.MsgUpdateDeployment{Owner: req.Owner, Dseq: req.DSeq, ManifestHash: hash}
	if plan.Msg, err = s.opts.Client.Codec.MarshalInterfaceJSON(msg); err != nil {
		writeError(w, http.StatusBadRequest, "sdl", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, plan)
}

// readSDL parses an SDL file into its deployment, its manifest's parts
// (what providers are sent) and its hash (what the chain holds).
func readSDL(text string) (*sdl.Deployment, ManifestParts, []byte, error) {
	d, err := sdl.Parse([]byte(text))
	if err != nil {
		return nil, ManifestParts{}, nil, err
	}
	parts, err := manifestParts(d.Manifest)
	if err != nil {
		return nil, ManifestParts{}, nil, err
	}
	hash, err := d.Manifest.Hash()
	if err != nil {
		return nil, ManifestParts{}, nil, err
	}
	return d, parts, hash, nil
}
