package console

import (
	"context"
	"fmt"
	"net/http"
	"time"

	sdkmath "cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/types/query"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// ProviderDashboard is what a provider sees of itself: its record, the
// health of its attestations, its leases and what they earned.
type ProviderDashboard struct {
	Owner       string   `json:"owner"`
	HostURI     string   `json:"host_uri"`
	Fingerprint string   `json:"tls_cert_sha256"`
	Bond        string   `json:"bond"`
	Reliability string   `json:"reliability"`
	Uptime      string   `json:"uptime"`
	GPUs        []string `json:"gpus"`
	// Attestation health: the last attested height, the silence deadline,
	// and whether the chain found it silent.
	AttestedAt   int64 `json:"attested_at,string"`
	Deadline     int64 `json:"deadline,string"`
	Silenced     bool  `json:"silenced"`
	ActiveLeases int   `json:"active_leases"`
	// Earnings in base units: accrued to the last settlement, withdrawn,
	// and the payments a withdrawal takes from.
	Accrued   string       `json:"accrued"`
	Withdrawn string       `json:"withdrawn"`
	Payments  []PaymentRef `json:"payments"`
}

// PaymentRef names a payment for MsgWithdrawPayment.
type PaymentRef struct {
	Owner string `json:"owner"`
	DSeq  uint64 `json:"dseq,string"`
	GSeq  uint32 `json:"gseq"`
	OSeq  uint32 `json:"oseq"`
}

func (s *Server) providerDashboard(w http.ResponseWriter, r *http.Request) {
	owner := r.PathValue("addr")
	if !s.validAddress(w, owner, "address") {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	view, err := s.lookup(ctx, owner)
	if status.Code(err) == codes.NotFound {
		writeError(w, http.StatusNotFound, "provider", owner+" is not a registered provider")
		return
	}
	if err != nil {
		s.nodeError(w, err)
		return
	}
	p := view.Provider
	d := ProviderDashboard{Owner: owner, HostURI: p.HostUri, Fingerprint: p.TlsCertSha256, Bond: p.Bond.String(),
		Reliability: trimDec(view.Reliability.String()), Uptime: trimDec(view.Uptime.String()), GPUs: []string{}, Payments: []PaymentRef{}}
	for _, g := range p.Gpus {
		d.GPUs = append(d.GPUs, g.Model)
	}
	mq := markettypes.NewQueryClient(s.opts.Client)
	if a, err := mq.Attestation(ctx, &markettypes.QueryAttestationRequest{Provider: owner}); err == nil && a.Found {
		d.AttestedAt, d.Deadline, d.Silenced = a.Attestation.Height, a.Attestation.Deadline, a.Attestation.Silenced
	}
	leases, err := mq.LeasesByProvider(ctx, &markettypes.QueryByProviderRequest{Provider: owner, Pagination: &query.PageRequest{Limit: 1000}})
	if err != nil {
		s.nodeError(w, err)
		return
	}
	for _, l := range leases.Leases {
		if l.State == markettypes.LEASE_STATE_ACTIVE {
			d.ActiveLeases++
		}
	}
	pays, err := escrowtypes.NewQueryClient(s.opts.Client).ProviderPayments(ctx, &escrowtypes.QueryProviderPaymentsRequest{Provider: owner, Pagination: &query.PageRequest{Limit: 1000}})
	if err != nil {
		s.nodeError(w, err)
		return
	}
	accrued, withdrawn := sdkmath.ZeroInt(), sdkmath.ZeroInt()
	for _, pay := range pays.Payments {
		accrued, withdrawn = accrued.Add(pay.Accrued), withdrawn.Add(pay.Withdrawn)
		if pay.Accrued.GT(pay.Withdrawn) || !pay.Rate.IsZero() {
			d.Payments = append(d.Payments, PaymentRef{Owner: pay.Id.Account.Owner, DSeq: pay.Id.Account.Dseq, GSeq: pay.Id.Gseq, OSeq: pay.Id.Oseq})
		}
	}
	d.Accrued, d.Withdrawn = accrued.String(), withdrawn.String()
	writeJSON(w, http.StatusOK, d)
}

// ProviderSummary is a provider as the providers list shows it.
type ProviderSummary struct {
	Owner       string   `json:"owner"`
	HostURI     string   `json:"host_uri"`
	Fingerprint string   `json:"tls_cert_sha256"`
	GPUs        []string `json:"gpus"`
	Source      string   `json:"gpu_inventory"` // nvml, declared, kubernetes
	CPUMillis   uint64   `json:"cpu_millis,string"`
	MemoryBytes uint64   `json:"memory_bytes,string"`
	Bond        string   `json:"bond"`
	Reliability string   `json:"reliability"`
	Uptime      string   `json:"uptime"`
}

func (s *Server) providers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	views, err := s.allProviders(ctx)
	if err != nil {
		s.nodeError(w, err)
		return
	}
	out := []ProviderSummary{}
	for _, v := range views {
		p := v.Provider
		ps := ProviderSummary{Owner: p.Owner, HostURI: p.HostUri, Fingerprint: p.TlsCertSha256, GPUs: []string{}, CPUMillis: p.Capacity.CpuMillis,
			MemoryBytes: p.Capacity.MemoryBytes, Bond: p.Bond.String(), Reliability: trimDec(v.Reliability.String()), Uptime: trimDec(v.Uptime.String())}
		for _, g := range p.Gpus {
			ps.GPUs = append(ps.GPUs, fmt.Sprintf("%s %d MiB ×%d", g.Model, g.MemoryMib, g.Count))
		}
		for _, a := range p.Attributes {
			if a.Key == "gpu-inventory" {
				ps.Source = a.Value
			}
		}
		out = append(out, ps)
	}
	writeJSON(w, http.StatusOK, out)
}
