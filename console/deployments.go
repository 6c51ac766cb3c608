package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cosmos/cosmos-sdk/types/query"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// DeploymentView is a deployment as the page lists it, with its leases.
type DeploymentView struct {
	DSeq      uint64      `json:"dseq,string"`
	State     string      `json:"state"`
	CreatedAt int64       `json:"created_at,string"`
	Leases    []LeaseView `json:"leases"`
	// Escrow is what the deployment's account holds and was given, in
	// base units ("" when the account is gone).
	EscrowBalance   string `json:"escrow_balance"`
	EscrowDeposited string `json:"escrow_deposited"`
	// RatePerHour is what the deployment's leases cost together, and
	// DepletesAt (RFC 3339) when the balance runs out at that rate ("":
	// nothing is paying).
	RatePerHour string `json:"rate_per_hour"`
	DepletesAt  string `json:"depletes_at"`
}

// LeaseView is one lease of a deployment.
type LeaseView struct {
	GSeq     uint32 `json:"gseq"`
	OSeq     uint32 `json:"oseq"`
	Provider string `json:"provider"`
	State    string `json:"state"`
	Price    string `json:"price_per_hour"`
}

// maxListed bounds the deployments a page lists (the newest).
const maxListed = 50

func (s *Server) deployments(w http.ResponseWriter, r *http.Request) {
	owner := r.PathValue("addr")
	if !s.validAddress(w, owner, "address") {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	q := markettypes.NewQueryClient(s.opts.Client)
	res, err := q.Deployments(ctx, &markettypes.QueryByOwnerRequest{Owner: owner, Pagination: &query.PageRequest{Limit: maxListed, Reverse: true}})
	if err != nil {
		s.nodeError(w, err)
		return
	}
	out := []DeploymentView{}
	for _, d := range res.Deployments {
		v, err := s.deploymentView(ctx, owner, d.Dseq)
		if err != nil {
			s.nodeError(w, err)
			return
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DSeq > out[j].DSeq })
	writeJSON(w, http.StatusOK, out)
}

// deployment answers one deployment: what the page polls while it waits
// for a lease, rather than the whole list.
func (s *Server) deployment(w http.ResponseWriter, r *http.Request) {
	owner, dseq, ok := s.deploymentRef(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	v, err := s.deploymentView(ctx, owner, dseq)
	if status.Code(err) == codes.NotFound {
		writeError(w, http.StatusNotFound, "deployment", fmt.Sprintf("no deployment %s/%d on chain", owner, dseq))
		return
	}
	if err != nil {
		s.nodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deploymentView reads a deployment with its leases and escrow account.
func (s *Server) deploymentView(ctx context.Context, owner string, dseq uint64) (DeploymentView, error) {
	full, err := markettypes.NewQueryClient(s.opts.Client).Deployment(ctx, &markettypes.QueryDeploymentRequest{Owner: owner, Dseq: dseq})
	if err != nil {
		return DeploymentView{}, err
	}
	d := full.Deployment
	v := DeploymentView{DSeq: d.Dseq, State: stateName(d.State.String(), "DEPLOYMENT_STATE_"), CreatedAt: d.CreatedAt, Leases: []LeaseView{}}
	for _, l := range full.Leases {
		v.Leases = append(v.Leases, LeaseView{GSeq: l.Id.Order.Gseq, OSeq: l.Id.Order.Oseq, Provider: l.Id.Provider,
			State: stateName(l.State.String(), "LEASE_STATE_"), Price: trimDec(l.Price.Amount.String()) + l.Price.Denom})
	}
	if acc, err := escrowtypes.NewQueryClient(s.opts.Client).Account(ctx, &escrowtypes.QueryAccountRequest{Owner: owner, Dseq: dseq}); err == nil {
		v.EscrowBalance, v.EscrowDeposited = acc.Account.Balance.String(), acc.Account.Deposited.String()
		v.RatePerHour = trimDec(acc.Account.TotalRate.String())
		if t := acc.Account.DepletesAt; t != nil {
			v.DepletesAt = t.UTC().Format(time.RFC3339)
		}
	}
	return v, nil
}

// stateName is an enum's name without its prefix, in lower case.
func stateName(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

// trimDec writes a decimal without trailing zeros ("10600.500000" is
// "10600.5", "10600.000" is "10600").
func trimDec(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
