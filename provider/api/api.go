// Package api owns the provider API's wire format and its client: the
// types the daemon serves and the signed, certificate-pinned requests a
// tenant (gpunetd) sends.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gpunet/gpunet/provider/leaseauth"
)

// LeaseStatus is what GET /v1/leases/{owner}/{dseq}/{gseq}/{oseq}/status returns.
type LeaseStatus struct {
	Lease    string    `json:"lease"`
	Provider string    `json:"provider"`
	State    string    `json:"state"` // on chain: pending, active
	Phase    string    `json:"phase"` // daemon: awaiting_manifest, deploying, running, closing
	Price    string    `json:"price_per_hour"`
	Manifest bool      `json:"manifest_received"`
	Replicas []Replica `json:"replicas"`
	// URIs are where the provider's HTTP ingress serves the lease.
	URIs []string `json:"uris,omitempty"`
	// Version is the hash of the manifest group the lease runs
	// (sdl.ManifestGroup.Hash). UpdateError says why an update to the
	// version UpdateFor did not take over; the previous version runs on.
	Version     string `json:"version,omitempty"`
	UpdateError string `json:"update_error,omitempty"`
	UpdateFor   string `json:"update_error_for,omitempty"`
}

// Replica is one container.
type Replica struct {
	Service    string     `json:"service"`
	Replica    int        `json:"replica"`
	Container  string     `json:"container"`
	Image      string     `json:"image"`
	State      string     `json:"state"` // created, running, restarting, exited, dead
	ExitCode   int        `json:"exit_code"`
	Error      string     `json:"error,omitempty"`
	OOMKilled  bool       `json:"oom_killed,omitempty"`
	Restarts   int        `json:"restarts"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Ports      []Port     `json:"ports,omitempty"`
	// GPUs are the replica's GPUs, with what they do now when asked for
	// usage and NVML can tell.
	GPUs []GPU `json:"gpus,omitempty"`
	// Usage is the container's CPU and memory use now, when asked for.
	Usage *Usage `json:"usage,omitempty"`
}

// LeaseEvent is one thing that happened to a lease on the provider: a step
// of the daemon's (manifest, deploying, running, update, closing) or of the
// engine's with a container (created, started, exited, oom, stopped,
// removed, health).
type LeaseEvent struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Service  string    `json:"service,omitempty"`
	Replica  *int      `json:"replica,omitempty"`
	ExitCode *int      `json:"exit_code,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// GPU is one GPU a replica holds.
type GPU struct {
	UUID  string `json:"uuid"`
	Model string `json:"model,omitempty"`
	// Utilization and memory as NVML reads them; absent when not asked
	// for or not readable (declared GPUs have no device).
	UtilizationPercent *uint32 `json:"utilization_percent,omitempty"`
	MemoryUsedMiB      *uint64 `json:"memory_used_mib,omitempty"`
	MemoryTotalMiB     uint64  `json:"memory_total_mib,omitempty"`
}

// Usage is a container's CPU (percent of one core) and memory use.
type Usage struct {
	CPUPercent       float64 `json:"cpu_percent"`
	MemoryUsedBytes  uint64  `json:"memory_used_bytes"`
	MemoryLimitBytes uint64  `json:"memory_limit_bytes"`
}

// Port is a published port: the service's port reachable at HostIP:HostPort.
type Port struct {
	Port     uint16 `json:"port"`
	Proto    string `json:"proto"`
	HostIP   string `json:"host_ip"`
	HostPort uint16 `json:"host_port"`
}

// Running reports whether every replica is running.
func (s LeaseStatus) Running() bool {
	if len(s.Replicas) == 0 {
		return false
	}
	for _, r := range s.Replicas {
		if r.State != "running" {
			return false
		}
	}
	return true
}

// Exited reports whether every replica has stopped for good.
func (s LeaseStatus) Exited() bool {
	if len(s.Replicas) == 0 {
		return false
	}
	for _, r := range s.Replicas {
		if r.State != "exited" && r.State != "dead" {
			return false
		}
	}
	return true
}

// ManifestAccepted is what PUT /v1/deployments/{owner}/{dseq}/manifest returns.
type ManifestAccepted struct {
	Deployment string   `json:"deployment"`
	Hash       string   `json:"manifest_hash"`
	Leases     []string `json:"leases"`
	// Receipts are the provider's signed word, one per lease, that it holds
	// the manifest: a tenant whose lease is then closed as
	// manifest_missing disproves it on chain with one (MsgDisputeLease).
	Receipts []Receipt `json:"receipts"`
}

// Receipt is a manifest receipt (x/market ManifestReceipt) in JSON: the
// provider's account key signs ReceiptSignBytes(chain id, lease, hash,
// issued_at).
type Receipt struct {
	ChainID      string `json:"chain_id"`
	Owner        string `json:"owner"`
	DSeq         uint64 `json:"dseq"`
	GSeq         uint32 `json:"gseq"`
	OSeq         uint32 `json:"oseq"`
	Provider     string `json:"provider"`
	ManifestHash string `json:"manifest_hash"` // hex
	IssuedAt     int64  `json:"issued_at"`     // unix seconds
	Signature    []byte `json:"signature"`
}

// Error is every error body.
type Error struct {
	Error string `json:"error"`
}

// Client calls one provider's API as one tenant.
type Client struct {
	base     string // https://host:port
	chainID  string // part of what is signed
	provider string // provider address, part of what is signed
	signer   string // tenant address
	sign     leaseauth.SignFunc
	http     *http.Client
	// upgradeClient is http limited to HTTP/1.1, for shells.
	upgradeOnce   sync.Once
	upgradeClient *http.Client
	// Timeout bounds each request that is not a log stream (RequestTimeout
	// unless changed).
	Timeout time.Duration
}

// NewClient returns a client for the provider at hostURI whose certificate
// has the on-chain fingerprint.
func NewClient(hostURI, chainID, provider, fingerprint, signer string, sign leaseauth.SignFunc) *Client {
	return &Client{
		base: strings.TrimRight(hostURI, "/"), chainID: chainID, provider: provider, signer: signer, sign: sign,
		http: leaseauth.PinnedClient(fingerprint, 0), Timeout: RequestTimeout,
	}
}

// LeasePath is the path of a lease resource.
func LeasePath(owner string, dseq uint64, gseq, oseq uint32, what string) string {
	return fmt.Sprintf("/v1/leases/%s/%d/%d/%d/%s", url.PathEscape(owner), dseq, gseq, oseq, what)
}

// maxRateLimitRetries is how many times a request the provider's rate
// limit refused (429 with Retry-After) is sent again, freshly signed, after
// the wait it asks for.
const maxRateLimitRetries = 5

func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		res, err := c.send(ctx, method, path, body)
		if err != nil {
			return nil, err
		}
		wait, limited := retryAfter(res)
		if !limited || attempt == maxRateLimitRetries {
			return c.checked(res)
		}
		res.Body.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// send signs and sends one request (each with its own nonce).
func (c *Client) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := leaseauth.Sign(req, body, c.chainID, c.provider, c.signer, c.sign, time.Now()); err != nil {
		return nil, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("provider API %s: %w", c.base, err)
	}
	return res, nil
}

// retryAfter reports a rate-limit refusal and how long it asks to wait
// (Retry-After in seconds, 1 s when absent, at most 10 s).
func retryAfter(res *http.Response) (time.Duration, bool) {
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		return 0, false
	}
	secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		secs = 1
	}
	return time.Duration(min(secs, 10)) * time.Second, true
}

// checked turns a refusal into a StatusError.
func (c *Client) checked(res *http.Response) (*http.Response, error) {
	if res.StatusCode >= 300 {
		defer res.Body.Close()
		var e Error
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return nil, &StatusError{Code: res.StatusCode, Message: e.Error}
	}
	return res, nil
}

// StatusError is a refusal by the provider.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("provider refused (%d %s): %s", e.Code, http.StatusText(e.Code), e.Message)
}

// RequestTimeout bounds a whole request that is not a log stream: a
// healthy provider answers status and manifest requests at once.
const RequestTimeout = 30 * time.Second

// bounded gives a request that is not a log stream its deadline.
func (c *Client) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.Timeout)
}

// explain says so when the request's own deadline, not the caller's
// context, ended it.
func (c *Client) explain(parent, rctx context.Context, err error) error {
	if err == nil || parent.Err() != nil || !errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("provider %s did not answer within %s (is it up?): %w", c.base, c.Timeout, err)
}

// SendManifest uploads a deployment's manifest (canonical JSON).
func (c *Client) SendManifest(ctx context.Context, owner string, dseq uint64, manifest []byte) (ManifestAccepted, error) {
	rctx, cancel := c.bounded(ctx)
	defer cancel()
	var out ManifestAccepted
	res, err := c.do(rctx, http.MethodPut, fmt.Sprintf("/v1/deployments/%s/%d/manifest", url.PathEscape(owner), dseq), manifest)
	if err != nil {
		return out, c.explain(ctx, rctx, err)
	}
	defer res.Body.Close()
	return out, c.explain(ctx, rctx, json.NewDecoder(res.Body).Decode(&out))
}

// HeldManifest is the manifest a provider holds for a deployment, and
// its hash (sdl.Manifest.Hash) as the provider computes it.
type HeldManifest struct {
	Deployment string          `json:"deployment"`
	Hash       string          `json:"manifest_hash"`
	Manifest   json.RawMessage `json:"manifest"`
}

// Manifest fetches the manifest the provider holds for a deployment.
func (c *Client) Manifest(ctx context.Context, owner string, dseq uint64) (HeldManifest, error) {
	rctx, cancel := c.bounded(ctx)
	defer cancel()
	var out HeldManifest
	res, err := c.do(rctx, http.MethodGet, fmt.Sprintf("/v1/deployments/%s/%d/manifest", url.PathEscape(owner), dseq), nil)
	if err != nil {
		return out, c.explain(ctx, rctx, err)
	}
	defer res.Body.Close()
	return out, c.explain(ctx, rctx, json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&out))
}

// GrantsRevoked answers a revocation of browser session grants: every
// grant issued up to RevokedBefore (unix seconds) no longer works.
type GrantsRevoked struct {
	RevokedBefore int64 `json:"revoked_before"`
}

// RevokeGrants revokes owner's browser session grants on the provider.
func (c *Client) RevokeGrants(ctx context.Context, owner string) (GrantsRevoked, error) {
	ctx, cancel := c.bounded(ctx)
	defer cancel()
	res, err := c.do(ctx, http.MethodPost, "/v1/grants/"+owner+"/revoke", nil)
	if err != nil {
		return GrantsRevoked{}, err
	}
	defer res.Body.Close()
	var out GrantsRevoked
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("provider API: decode revocation: %w", err)
	}
	return out, nil
}

// Status reads a lease's status.
func (c *Client) Status(ctx context.Context, owner string, dseq uint64, gseq, oseq uint32) (LeaseStatus, error) {
	return c.status(ctx, LeasePath(owner, dseq, gseq, oseq, "status"))
}

// StatusWithUsage reads a lease's status with each replica's CPU, memory
// and GPU use now (the provider samples for about a second).
func (c *Client) StatusWithUsage(ctx context.Context, owner string, dseq uint64, gseq, oseq uint32) (LeaseStatus, error) {
	return c.status(ctx, LeasePath(owner, dseq, gseq, oseq, "status")+"?usage=1")
}

func (c *Client) status(ctx context.Context, path string) (LeaseStatus, error) {
	rctx, cancel := c.bounded(ctx)
	defer cancel()
	var out LeaseStatus
	res, err := c.do(rctx, http.MethodGet, path, nil)
	if err != nil {
		return out, c.explain(ctx, rctx, err)
	}
	defer res.Body.Close()
	return out, c.explain(ctx, rctx, json.NewDecoder(res.Body).Decode(&out))
}

// Events calls fn with a lease's events, oldest first; with follow it
// goes on with new ones until the lease ends, the provider ends the stream
// or ctx ends.
func (c *Client) Events(ctx context.Context, owner string, dseq uint64, gseq, oseq uint32, follow bool, fn func(LeaseEvent)) error {
	path := LeasePath(owner, dseq, gseq, oseq, "events")
	parent := ctx
	if follow {
		path += "?follow=true"
	} else {
		var cancel context.CancelFunc
		ctx, cancel = c.bounded(ctx)
		defer cancel()
	}
	res, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return c.explain(parent, ctx, err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var ev LeaseEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) || (follow && ctx.Err() != nil) {
				return nil
			}
			return c.explain(parent, ctx, err)
		}
		fn(ev)
	}
}

// Logs copies a lease's logs to w; with follow it returns when the
// containers exit, the provider ends the stream or ctx ends.
func (c *Client) Logs(ctx context.Context, owner string, dseq uint64, gseq, oseq uint32, service string, follow bool, tail int, w io.Writer) error {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	if tail > 0 {
		q.Set("tail", fmt.Sprint(tail))
	}
	if service != "" {
		q.Set("service", service)
	}
	parent := ctx
	if !follow {
		var cancel context.CancelFunc
		ctx, cancel = c.bounded(ctx)
		defer cancel()
	}
	path := LeasePath(owner, dseq, gseq, oseq, "logs")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	res, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return c.explain(parent, ctx, err)
	}
	defer res.Body.Close()
	_, err = io.Copy(w, res.Body)
	if follow && ctx.Err() != nil {
		return nil // the caller stopped following
	}
	return c.explain(parent, ctx, err)
}

// FormatDecCoin prints a decimal amount without trailing zeros: "5600ugpn",
// "0.5ugpn".
func FormatDecCoin(amount, denom string) string {
	if strings.Contains(amount, ".") {
		amount = strings.TrimRight(strings.TrimRight(amount, "0"), ".")
	}
	return amount + denom
}
