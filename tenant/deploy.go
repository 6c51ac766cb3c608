package tenant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/internal/coin"
	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/sdl"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Options tune a deployment.
type Options struct {
	Deposit   sdk.Coin
	BidWindow uint64 // blocks; 0 = the chain's default
	Follow    bool
	SDLFile   string
	// Progress receives one line per step; Logs the workload's output.
	Progress io.Writer
	Logs     io.Writer
	// Wait bounds each waiting step (auction, start).
	Wait time.Duration
	// AutoTopUp, when positive, refills the deployment's escrow by this
	// much whenever it would run dry soon, until TopUpLimit in all.
	AutoTopUp, TopUpLimit sdk.Coin
}

// Step is one timed step of a deployment.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// BidSeen is a bid as the tenant saw it.
type BidSeen struct {
	Order       string `json:"order"`
	Provider    string `json:"provider"`
	Price       string `json:"price_per_hour"`
	Reliability string `json:"reliability"`
}

// LeaseRun is a lease and what runs on it.
type LeaseRun struct {
	ID        string        `json:"id"`
	Provider  string        `json:"provider"`
	Price     string        `json:"price_per_hour"`
	HostURI   string        `json:"host_uri"`
	Replicas  []api.Replica `json:"replicas"`
	Endpoints []string      `json:"endpoints"`
}

// Result is what deploy reports (also as --output json).
type Result struct {
	Owner        string    `json:"owner"`
	DSeq         uint64    `json:"dseq"`
	Height       int64     `json:"height"`
	TxHash       string    `json:"txhash"`
	Fee          string    `json:"fee"` // what creating the deployment cost in fees
	Deposit      sdk.Coin  `json:"deposit"`
	ManifestHash string    `json:"manifest_hash"`
	Bids         []BidSeen `json:"bids"`
	// FirstBidBlocks is how many blocks after the deployment's block the
	// first bid landed; FirstBidSeconds how long after the commit it was seen.
	FirstBidBlocks  int64       `json:"first_bid_blocks"`
	FirstBidSeconds float64     `json:"first_bid_seconds"`
	Leases          []LeaseRun  `json:"leases"`
	Steps           []Step      `json:"steps"`
	Closed          []Closure   `json:"closed,omitempty"`
	Settlement      *Settlement `json:"settlement,omitempty"`
}

type progress struct {
	w     io.Writer
	began time.Time
	last  time.Time
	res   *Result
}

func (p *progress) printf(format string, args ...any) {
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.began).Seconds(), fmt.Sprintf(format, args...))
}

func (p *progress) step(name string) {
	now := time.Now()
	p.res.Steps = append(p.res.Steps, Step{Name: name, Seconds: now.Sub(p.last).Seconds()})
	p.last = now
}

// Deploy runs a deployment from an SDL file to running containers (and,
// with Follow, to the end of the job).
func (c *Client) Deploy(ctx context.Context, d *sdl.Deployment, store Store, opts Options) (*Result, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Wait == 0 {
		opts.Wait = 2 * time.Minute
	}
	hash, err := d.Manifest.Hash()
	if err != nil {
		return nil, err
	}
	res := &Result{Owner: c.Owner.String(), ManifestHash: fmt.Sprintf("%x", hash)}
	p := &progress{w: opts.Progress, began: time.Now(), last: time.Now(), res: res}

	// 1. The deployment goes on chain.
	msg := &markettypes.MsgCreateDeployment{Owner: res.Owner, Groups: d.Groups, ManifestHash: hash, Deposit: opts.Deposit, BidWindow: opts.BidWindow}
	txr, err := c.SendTx(ctx, msg)
	if err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("interrupted before the deployment was confirmed; it may still land on chain: see 'gpunetd query market deployments %s' and close it with 'gpunetd tx market close-deployment DSEQ --from %s': %w", res.Owner, c.fromName(), err)
	}
	if err != nil {
		return res, fmt.Errorf("create deployment: %w (check the deposit and your balance: gpunetd query bank balances %s)", err, res.Owner)
	}
	if res.DSeq, err = dseqFromEvents(txr.Events); err != nil {
		return res, err
	}
	res.Height, res.TxHash, res.Deposit = txr.Height, txr.TxHash, opts.Deposit
	for _, ev := range txr.Events {
		for _, a := range ev.Attributes {
			if ev.Type == "tx" && a.Key == "fee" {
				res.Fee = a.Value
			}
		}
	}
	if err := store.Save(Saved{Owner: res.Owner, DSeq: res.DSeq, SDLFile: opts.SDLFile, Hash: res.ManifestHash, Manifest: d.Manifest, CreatedAt: time.Now().UTC(), Height: txr.Height}); err != nil {
		return res, fmt.Errorf("deployment %d created but its manifest could not be saved locally: %w", res.DSeq, err)
	}
	p.step("submitted")
	p.printf("deployment %d created in block %d (tx %s…), deposit %s, manifest %s…", res.DSeq, txr.Height, txr.TxHash[:12], opts.Deposit, res.ManifestHash[:16])
	if opts.AutoTopUp.IsValid() && opts.AutoTopUp.IsPositive() {
		msg := &escrowtypes.MsgSetAutoTopUp{Payer: res.Owner, Account: escrowtypes.AccountID{Owner: res.Owner, Dseq: res.DSeq}, Amount: opts.AutoTopUp, Limit: opts.TopUpLimit}
		if _, err := c.SendTx(ctx, msg); err != nil {
			return res, fmt.Errorf("deployment %d created, but its automatic top-up was refused: %w (set it with 'gpunetd tx escrow auto-topup %s %d %s %s')", res.DSeq, err, res.Owner, res.DSeq, opts.AutoTopUp, opts.TopUpLimit)
		}
		p.printf("automatic top-up: %s whenever the escrow would run dry within the chain's horizon, %s in all", opts.AutoTopUp, opts.TopUpLimit)
	}
	return c.afterCreate(ctx, d, res, p, opts, store)
}

// afterCreate runs a deployment once it is on chain. Stopped (Ctrl-C), it
// returns an *Interrupted that says how to close or resume the deployment,
// which keeps running on chain.
func (c *Client) afterCreate(ctx context.Context, d *sdl.Deployment, res *Result, p *progress, opts Options, store Store) (*Result, error) {
	stopped := func(err error, stage string, leased bool) error {
		if ctx.Err() == nil {
			return err
		}
		return &Interrupted{DSeq: res.DSeq, Owner: res.Owner, From: c.fromName(), Stage: stage, Leased: leased}
	}

	// 2. Bids arrive; the auction closes on its own at the end of the window.
	leases, err := c.awaitLeases(ctx, p, res, len(d.Groups), opts.Wait)
	if err != nil {
		return res, stopped(err, "during the auction", false)
	}
	p.step("auction")

	// 3. The manifest goes to every winner over its pinned, signed API.
	if err := c.sendManifests(ctx, p, store, res.Owner, res.DSeq, leases, d.Manifest); err != nil {
		return res, stopped(err, "while sending the manifest", true)
	}
	p.step("manifest")

	// 4. Wait until every lease's containers run (or a job already finished).
	for _, l := range leases {
		run, err := c.awaitRunning(ctx, l, opts.Wait)
		if err != nil {
			return res, stopped(err, "while waiting for the containers to start", true)
		}
		res.Leases = append(res.Leases, run)
		states := []string{}
		for _, r := range run.Replicas {
			states = append(states, fmt.Sprintf("%s/%d %s", r.Service, r.Replica, r.State))
		}
		p.printf("running on %s: %s", short(run.Provider), strings.Join(states, ", "))
		for _, e := range run.Endpoints {
			p.printf("  endpoint %s", e)
		}
	}
	p.step("running")
	if !opts.Follow {
		return res, nil
	}

	// 5. Follow the logs until the workload ends, then report how it closed.
	for _, l := range leases {
		cl, _, err := c.ProviderAPI(ctx, l.Id.Provider)
		if err != nil {
			return res, err
		}
		if opts.Logs != nil {
			if err := cl.Logs(ctx, res.Owner, res.DSeq, l.Id.Order.Gseq, l.Id.Order.Oseq, "", true, 0, opts.Logs); err != nil && ctx.Err() == nil {
				p.printf("log stream ended: %v", err)
			}
		}
	}
	if ctx.Err() != nil {
		return res, nil
	}
	closures, settle, err := c.AwaitClosure(ctx, res.Owner, res.DSeq, res.Height, len(leases), opts.Wait)
	if err != nil {
		return res, err
	}
	res.Closed, res.Settlement = closures, settle
	for _, cl := range closures {
		p.printf("lease %s closed in block %d: %s", cl.Lease, cl.Height, cl.Reason)
	}
	p.step("completed")
	return res, nil
}

// sendManifests sends the manifest to each provider of leases once, over
// its pinned, signed API, with only the groups it runs whole (ManifestFor),
// and keeps the receipts they sign.
func (c *Client) sendManifests(ctx context.Context, p *progress, store Store, owner string, dseq uint64, leases []markettypes.Lease, m sdl.Manifest) error {
	sent := map[string]bool{}
	live := c.liveLeases(ctx, owner, dseq, leases)
	for _, l := range leases {
		if sent[l.Id.Provider] {
			continue
		}
		cl, pv, err := c.ProviderAPI(ctx, l.Id.Provider)
		if err != nil {
			return err
		}
		manifest, err := ManifestFor(m, live, l.Id.Provider)
		if err != nil {
			return err
		}
		t0 := time.Now()
		acc, err := sendManifestRetry(ctx, cl, owner, dseq, manifest)
		if err != nil {
			return fmt.Errorf("send manifest to %s: %w (retry with: gpunetd lease send-manifest %d)", pv.Provider.HostUri, err, dseq)
		}
		if err := store.SaveReceipts(owner, dseq, acc.Receipts); err != nil {
			p.printf("warning: cannot keep the provider's manifest receipts: %v", err)
		}
		sent[l.Id.Provider] = true
		p.printf("manifest sent to %s (%.1fs)", pv.Provider.HostUri, time.Since(t0).Seconds())
	}
	return nil
}

func sendManifestRetry(ctx context.Context, cl *api.Client, owner string, dseq uint64, manifest []byte) (api.ManifestAccepted, error) {
	var err error
	var acc api.ManifestAccepted
	for i := 0; i < 20; i++ {
		acc, err = cl.SendManifest(ctx, owner, dseq, manifest)
		var se *api.StatusError
		if err == nil || (errors.As(err, &se) && se.Code != 404 && se.Code != 502) {
			return acc, err
		}
		// Not reachable yet, or the provider has not seen its lease yet.
		select {
		case <-ctx.Done():
			return acc, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return acc, err
}

// Interrupted is how Deploy ends when stopped after the deployment went on
// chain: the deployment stays open, its deposit in escrow, and any lease
// keeps being paid, so the message says how to close or resume it.
type Interrupted struct {
	DSeq   uint64
	Owner  string
	From   string // the tenant's key name, for the commands shown
	Stage  string // "during the auction", ...
	Leased bool   // every group had a lease when it stopped
}

func (e *Interrupted) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "interrupted %s: deployment %d keeps running on chain with its deposit in escrow.\n", e.Stage, e.DSeq)
	fmt.Fprintf(&b, "  close it and get the rest of the deposit back: gpunetd tx market close-deployment %d --from %s\n", e.DSeq, e.From)
	if e.Leased {
		fmt.Fprintf(&b, "  or resume: gpunetd lease send-manifest %d --from %s, then gpunetd lease status %d --from %s", e.DSeq, e.From, e.DSeq, e.From)
	} else {
		fmt.Fprintf(&b, "  or resume once its groups are leased (see gpunetd query market deployment %s %d): gpunetd lease send-manifest %d --from %s", e.Owner, e.DSeq, e.DSeq, e.From)
	}
	return b.String()
}

// Unwrap lets errors.Is(err, context.Canceled) see why it stopped.
func (e *Interrupted) Unwrap() error { return context.Canceled }

// fromName is the tenant's key name for commands shown to the user.
func (c *Client) fromName() string {
	if n := c.Ctx.GetFromName(); n != "" {
		return n
	}
	return "<key>"
}

// awaitLeases prints bids as they come and returns once every group has a lease.
func (c *Client) awaitLeases(ctx context.Context, p *progress, res *Result, groups int, wait time.Duration) ([]markettypes.Lease, error) {
	deadline := time.Now().Add(wait)
	seen := map[string]bool{}
	for {
		dep, err := c.Market.Deployment(ctx, &markettypes.QueryDeploymentRequest{Owner: res.Owner, Dseq: res.DSeq})
		if err != nil {
			return nil, fmt.Errorf("deployment %d: %w", res.DSeq, err)
		}
		for _, o := range dep.Orders {
			if o.State != markettypes.ORDER_STATE_OPEN {
				continue
			}
			bids, err := c.Market.BidsByOrder(ctx, &markettypes.QueryOrderRequest{Owner: o.Id.Owner, Dseq: o.Id.Dseq, Gseq: o.Id.Gseq, Oseq: o.Id.Oseq})
			if err != nil {
				continue // the order may have just closed
			}
			for _, b := range bids.Bids {
				k := b.Id.Provider + orderName(o.Id)
				if seen[k] {
					continue
				}
				seen[k] = true
				rel := "?"
				if pv, err := c.Provider.Provider(ctx, &providertypes.QueryProviderRequest{Owner: b.Id.Provider}); err == nil {
					rel = pv.Provider.Reliability.String()
					rel = strings.TrimRight(strings.TrimRight(rel, "0"), ".")
				}
				if len(res.Bids) == 0 {
					res.FirstBidBlocks = b.CreatedAt - res.Height
					res.FirstBidSeconds = time.Since(p.last).Seconds()
				}
				res.Bids = append(res.Bids, BidSeen{Order: orderName(o.Id), Provider: b.Id.Provider, Price: api.FormatDecCoin(b.Price.Amount.String(), b.Price.Denom), Reliability: rel})
				p.printf("bid on group %d from %s: %s/h, reliability %s", o.Id.Gseq, short(b.Id.Provider), api.FormatDecCoin(b.Price.Amount.String(), b.Price.Denom), rel)
			}
		}
		if len(dep.Leases) >= groups {
			if len(res.Bids) == 0 && len(dep.Leases) > 0 {
				// A one-block window closes the auction in the block of the
				// bid, before any poll sees it: the lease dates the bid.
				res.FirstBidBlocks = dep.Leases[0].CreatedAt - res.Height
				res.FirstBidSeconds = time.Since(p.last).Seconds()
			}
			sort.Slice(dep.Leases, func(i, j int) bool { return dep.Leases[i].Id.Order.Gseq < dep.Leases[j].Id.Order.Gseq })
			for _, l := range dep.Leases {
				p.printf("lease won on group %d by %s at %s/h", l.Id.Order.Gseq, short(l.Id.Provider), api.FormatDecCoin(l.Price.Amount.String(), l.Price.Denom))
			}
			return dep.Leases, nil
		}
		if dep.Deployment.State != markettypes.DEPLOYMENT_STATE_ACTIVE {
			return nil, fmt.Errorf("deployment %d closed before every group was leased (no acceptable bid before the order expired?); raise the max price in the SDL or check providers with 'gpunetd query provider providers'", res.DSeq)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no lease for every group within %s: %d of %d groups leased, %d bids seen; the orders stay open until they expire — close with 'gpunetd tx market close-deployment %d'", wait, len(dep.Leases), groups, len(res.Bids), res.DSeq)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// reauctioned names the order or lease that replaced l's after a provider
// fault (a later oseq of the same group), or "".
func (c *Client) reauctioned(ctx context.Context, l markettypes.Lease) string {
	res, err := c.Market.Deployment(ctx, &markettypes.QueryDeploymentRequest{Owner: l.Id.Order.Owner, Dseq: l.Id.Order.Dseq})
	if err != nil {
		return ""
	}
	for _, o := range res.Orders {
		if o.Id.Gseq == l.Id.Order.Gseq && o.Id.Oseq > l.Id.Order.Oseq {
			return "order " + orderName(o.Id)
		}
	}
	return ""
}

// awaitRunning polls the provider until the lease's containers run.
func (c *Client) awaitRunning(ctx context.Context, l markettypes.Lease, wait time.Duration) (LeaseRun, error) {
	cl, pv, err := c.ProviderAPI(ctx, l.Id.Provider)
	if err != nil {
		return LeaseRun{}, err
	}
	run := LeaseRun{ID: orderName(l.Id.Order), Provider: l.Id.Provider, Price: api.FormatDecCoin(l.Price.Amount.String(), l.Price.Denom), HostURI: pv.Provider.HostUri}
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		st, err := cl.Status(ctx, l.Id.Order.Owner, l.Id.Order.Dseq, l.Id.Order.Gseq, l.Id.Order.Oseq)
		if err == nil && (st.Running() || st.Exited()) {
			run.Replicas = st.Replicas
			run.Endpoints = endpoints(st)
			return run, nil
		}
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == 404 {
			// The lease closed (image unavailable, say): say why, and
			// whether the group is being auctioned again.
			if next := c.reauctioned(ctx, l); next != "" {
				return run, fmt.Errorf("lease %s is no longer on the provider (%s); the provider failed it, so the group is being auctioned again as %s: once it is leased, send the manifest with 'gpunetd lease send-manifest %d'", run.ID, se.Message, next, l.Id.Order.Dseq)
			}
			if why := closedWhy(ctx, cl, l); why != "" {
				return run, fmt.Errorf("lease %s is no longer on the provider: %s", run.ID, why)
			}
			return run, fmt.Errorf("lease %s is no longer on the provider: %s; see 'gpunetd query market deployment %s %d'", run.ID, se.Message, l.Id.Order.Owner, l.Id.Order.Dseq)
		}
		last = err
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return run, fmt.Errorf("lease %s not running within %s (last: %v); check 'gpunetd lease status %d'", run.ID, wait, last, l.Id.Order.Dseq)
}

// closedWhy is what the provider's events of a lease it closed say of why
// (it keeps them for an hour after): the close and, when the last deploy
// failed just before it, the failure ("": they say nothing).
func closedWhy(ctx context.Context, cl *api.Client, l markettypes.Lease) string {
	var closing, failed string
	o := l.Id.Order
	_ = cl.Events(ctx, o.Owner, o.Dseq, o.Gseq, o.Oseq, false, func(ev api.LeaseEvent) { // unread events leave the plain answer
		switch ev.Kind {
		case "deploying":
			failed = ""
		case "deploy_failed":
			failed = ev.Message
		case "closing":
			closing = ev.Message
		}
	})
	if closing == "" {
		return ""
	}
	if failed != "" {
		return closing + " (" + failed + ")"
	}
	return closing
}

func endpoints(st api.LeaseStatus) []string {
	var out []string
	for _, r := range st.Replicas {
		for _, p := range r.Ports {
			out = append(out, fmt.Sprintf("%s/%d %d/%s -> %s:%d", r.Service, r.Replica, p.Port, p.Proto, p.HostIP, p.HostPort))
		}
	}
	return out
}

func dseqFromEvents(events []abci.Event) (uint64, error) {
	for _, ev := range events {
		if ev.Type != "gpunet.market.v1.EventDeploymentCreated" {
			continue
		}
		msg, err := chain.ParseEvent(ev)
		if err != nil {
			return 0, err
		}
		return msg.(*markettypes.EventDeploymentCreated).Dseq, nil
	}
	return 0, errors.New("deployment created but no EventDeploymentCreated in the transaction")
}

func orderName(id markettypes.OrderID) string {
	return id.Name()
}

func short(addr string) string {
	if len(addr) > 20 {
		return addr[:12] + "…" + addr[len(addr)-6:]
	}
	return addr
}

// Closure is how a lease ended.
type Closure struct {
	Lease  string `json:"lease"`
	Reason string `json:"reason"`
	Height int64  `json:"height"`
}

// Settlement is where the deployment's money went, from the chain's events.
type Settlement struct {
	TenantPaid     sdk.Coin `json:"tenant_paid"`     // gross paid out of escrow to leases
	ProviderEarned sdk.Coin `json:"provider_earned"` // net to providers
	StakersTake    sdk.Coin `json:"stakers_take"`    // to the fee collector
	Refunded       sdk.Coin `json:"refunded"`        // back to the tenant when the escrow closed
	Closed         bool     `json:"escrow_closed"`
}

// AwaitClosure scans blocks from fromHeight for the closing of n leases of
// the deployment and sums its escrow payouts and refund.
func (c *Client) AwaitClosure(ctx context.Context, owner string, dseq uint64, fromHeight int64, n int, wait time.Duration) ([]Closure, *Settlement, error) {
	zero := sdk.NewInt64Coin(coin.Denom, 0)
	s := &Settlement{TenantPaid: zero, ProviderEarned: zero, StakersTake: zero, Refunded: zero}
	var closures []Closure
	rpc, err := c.Ctx.GetNode()
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(wait)
	h := fromHeight
	for {
		st, err := rpc.Status(ctx)
		if err != nil {
			return nil, nil, err
		}
		for ; h <= st.SyncInfo.LatestBlockHeight; h++ {
			hh := h
			br, err := rpc.BlockResults(ctx, &hh)
			if err != nil {
				break // not stored yet (the head); retried below
			}
			var events []abci.Event
			for _, tx := range br.TxsResults {
				if tx.Code == 0 {
					events = append(events, tx.Events...)
				}
			}
			events = append(events, br.FinalizeBlockEvents...)
			for _, ev := range events {
				if !strings.HasPrefix(ev.Type, "gpunet.") {
					continue
				}
				msg, err := chain.ParseEvent(ev)
				if err != nil {
					continue
				}
				switch e := msg.(type) {
				case *markettypes.EventLeaseClosed:
					if e.Id.Order.Owner == owner && e.Id.Order.Dseq == dseq {
						closures = append(closures, Closure{Lease: orderName(e.Id.Order), Reason: e.Reason.ReasonString(), Height: h})
					}
				case *escrowtypes.EventPaymentWithdrawn:
					if e.Id.Account.Owner == owner && e.Id.Account.Dseq == dseq {
						s.TenantPaid = s.TenantPaid.Add(e.Gross)
						s.ProviderEarned = s.ProviderEarned.Add(e.Net)
						s.StakersTake = s.StakersTake.Add(e.Take)
					}
				case *escrowtypes.EventAccountClosed:
					if e.Id.Owner == owner && e.Id.Dseq == dseq {
						s.Refunded = s.Refunded.Add(e.Refund)
						s.Closed = true
					}
				}
			}
			if len(closures) >= n && s.Closed {
				return closures, s, nil
			}
		}
		if time.Now().After(deadline) {
			return closures, s, fmt.Errorf("deployment %d: %d of %d leases closed within %s (scanned to block %d)", dseq, len(closures), n, wait, h-1)
		}
		select {
		case <-ctx.Done():
			return closures, s, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
