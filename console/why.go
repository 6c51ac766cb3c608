package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/provider/api"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// WhyNoBids explains, for each open order of a deployment that has no
// bid yet, what no registered provider offers.
type WhyNoBids struct {
	GSeq    uint32   `json:"gseq"`
	OSeq    uint32   `json:"oseq"`
	Reasons []string `json:"reasons"`
}

// maxProviders bounds the providers read to explain an order.
const maxProviders = 1000

func (s *Server) whyNoBids(w http.ResponseWriter, r *http.Request) {
	owner, dseq, ok := s.deploymentRef(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	orders, err := s.deploymentBids(ctx, owner, dseq)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	out := []WhyNoBids{}
	var providers []providertypes.ProviderView // read once, when an order needs them
	for _, ob := range orders {
		o := ob.order
		if o.State != markettypes.ORDER_STATE_OPEN || len(ob.bids) > 0 {
			continue
		}
		if providers == nil {
			if providers, err = s.allProviders(ctx); err != nil {
				s.nodeError(w, err)
				return
			}
		}
		out = append(out, WhyNoBids{GSeq: o.Id.Gseq, OSeq: o.Id.Oseq, Reasons: explainNoBids(o.Spec, providers)})
	}
	writeJSON(w, http.StatusOK, out)
}

// allProviders reads the registered providers, at most maxProviders.
func (s *Server) allProviders(ctx context.Context) ([]providertypes.ProviderView, error) {
	out := []providertypes.ProviderView{}
	pq := providertypes.NewQueryClient(s.opts.Client)
	var next []byte
	for len(out) < maxProviders {
		res, err := pq.Providers(ctx, &providertypes.QueryProvidersRequest{Pagination: &query.PageRequest{Key: next, Limit: 200}})
		if err != nil {
			return nil, err
		}
		out = append(out, res.Providers...)
		if res.Pagination == nil || len(res.Pagination.NextKey) == 0 {
			break
		}
		next = res.Pagination.NextKey
	}
	return out, nil
}

// explainNoBids says what of spec no provider in providers offers, each
// need on its own line; when every need is met by some provider, why they
// may still not bid.
func explainNoBids(spec markettypes.GroupSpec, providers []providertypes.ProviderView) []string {
	if len(providers) == 0 {
		return []string{"no provider is registered on this chain yet"}
	}
	var reasons []string
	fits := make([]bool, len(providers)) // meets every need
	for i := range fits {
		fits[i] = true
	}
	need := func(ok func(providertypes.ProviderView) bool, why func() string) {
		any := false
		for i, p := range providers {
			if ok(p) {
				any = true
			} else {
				fits[i] = false
			}
		}
		if !any {
			reasons = append(reasons, why())
		}
	}
	for _, a := range spec.Requirements {
		need(func(p providertypes.ProviderView) bool {
			return slices.ContainsFunc(p.Provider.Attributes, func(b providertypes.Attribute) bool { return b.Key == a.Key && b.Value == a.Value })
		}, func() string { return fmt.Sprintf("no provider has the attribute %s=%s", a.Key, a.Value) })
	}
	if min, ok := spec.LeastReliability(); ok {
		need(func(p providertypes.ProviderView) bool { return p.Reliability.GTE(min) }, func() string {
			best := providers[0].Reliability
			for _, p := range providers {
				if p.Reliability.GT(best) {
					best = p.Reliability
				}
			}
			return fmt.Sprintf("no provider has a reliability score of at least %s (the best has %s)", trimDec(min.String()), trimDec(best.String()))
		})
	}
	for _, u := range spec.Resources {
		need(func(p providertypes.ProviderView) bool { return p.Provider.Capacity.CpuMillis >= u.CpuMillis }, func() string {
			return fmt.Sprintf("no provider has %d millicores of CPU for one replica", u.CpuMillis)
		})
		need(func(p providertypes.ProviderView) bool { return p.Provider.Capacity.MemoryBytes >= u.MemoryBytes }, func() string {
			return fmt.Sprintf("no provider has %d MiB of memory for one replica", u.MemoryBytes>>20)
		})
		for _, v := range u.Persistent {
			need(func(p providertypes.ProviderView) bool {
				return slices.ContainsFunc(p.Provider.Capacity.StorageClasses, func(c providertypes.StorageClass) bool { return c.Name == v.Class })
			}, func() string { return fmt.Sprintf("no provider offers persistent storage of class %s", v.Class) })
		}
		g := u.Gpu
		if g.Units == 0 {
			continue
		}
		model := func(x providertypes.GPU) bool { return len(g.Models) == 0 || slices.Contains(g.Models, x.Model) }
		models := "any NVIDIA"
		if len(g.Models) > 0 {
			models = strings.Join(g.Models, " or ")
		}
		offered := func() string {
			var all []string
			for _, p := range providers {
				for _, x := range p.Provider.Gpus {
					d := fmt.Sprintf("%s %d MiB", x.Model, x.MemoryMib)
					if !slices.Contains(all, d) {
						all = append(all, d)
					}
				}
			}
			if len(all) == 0 {
				return "no provider here has GPUs"
			}
			return "offered here: " + strings.Join(all, ", ")
		}
		need(func(p providertypes.ProviderView) bool { return slices.ContainsFunc(p.Provider.Gpus, model) }, func() string {
			return fmt.Sprintf("no provider offers a GPU of model %s (%s)", models, offered())
		})
		if g.MinMemoryMib > 0 {
			need(func(p providertypes.ProviderView) bool {
				return slices.ContainsFunc(p.Provider.Gpus, func(x providertypes.GPU) bool { return model(x) && x.MemoryMib >= g.MinMemoryMib })
			}, func() string {
				return fmt.Sprintf("no provider has a %s GPU with at least %d MiB (%s)", models, g.MinMemoryMib, offered())
			})
		}
		if g.Interface != "" {
			need(func(p providertypes.ProviderView) bool {
				return slices.ContainsFunc(p.Provider.Gpus, func(x providertypes.GPU) bool { return model(x) && x.Interface == g.Interface })
			}, func() string {
				return fmt.Sprintf("no provider has a %s GPU with the %s interface", models, g.Interface)
			})
		}
		need(func(p providertypes.ProviderView) bool {
			n := uint32(0)
			for _, x := range p.Provider.Gpus {
				if model(x) && x.MemoryMib >= g.MinMemoryMib && (g.Interface == "" || x.Interface == g.Interface) {
					n += x.Count
				}
			}
			return n >= g.Units
		}, func() string { return fmt.Sprintf("no provider has %d %s GPUs for one replica", g.Units, models) })
	}
	if len(reasons) > 0 {
		return reasons
	}
	n := 0
	for _, f := range fits {
		if f {
			n++
		}
	}
	if n == 0 {
		return []string{"each need is met by some provider, but no single provider meets them all"}
	}
	return []string{fmt.Sprintf("%d provider(s) offer what the order asks; they may ask more than its max price of %s per hour, be full, or still be bidding", n,
		api.FormatDecCoin(spec.MaxPrice.Amount.String(), spec.MaxPrice.Denom))}
}
