package daemon

import (
	"context"
	"fmt"
	"time"

	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// Attestation: every attest_interval blocks of the chain's head the daemon
// tells the chain, in one MsgAttest, how all its active leases are doing,
// from what the engine runs now. A lease with no container running is
// attested down (its payment pauses), unless the daemon itself is
// replacing its containers (an update); one with fewer than its group's
// replicas degraded; every other runs. A lease the daemon does not manage, or whose
// containers it cannot see, is never attested running. A provider that
// stops attesting for attest_grace blocks loses its leases and part of
// its bond, so the attester starts at once after the first reconcile (a
// restarted daemon attests the leases it adopted) and tries again a second
// after a transaction fails.

// attestTimeout bounds one attestation, query to block.
const attestTimeout = 30 * time.Second

// attestDue starts an attestation when attest_interval blocks have passed
// since the last one and none is in flight.
func (d *Daemon) attestDue(ctx context.Context, height int64) {
	if height == 0 {
		return // the node's head is not known yet
	}
	interval := d.attestInterval(ctx, false)
	if interval == 0 {
		return
	}
	d.mu.Lock()
	due := !d.attesting && (d.attestedAt == 0 || height >= d.attestedAt+int64(interval))
	if due {
		d.attesting = true
	}
	d.mu.Unlock()
	if !due {
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := d.attest(ctx)
		d.mu.Lock()
		d.attesting = false
		if err == nil {
			d.attestedAt = height
		}
		d.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("attestation failed; trying again", "err", err)
			d.metrics.attestations.WithLabelValues("failed").Inc()
		}
	}()
}

// attestInterval is x/provider's attest_interval, read from the chain when
// fresh is set or it was never read (0: unknown, the node is away).
func (d *Daemon) attestInterval(ctx context.Context, fresh bool) uint64 {
	d.mu.Lock()
	n := d.attestEvery
	d.mu.Unlock()
	if n != 0 && !fresh {
		return n
	}
	p, err := d.chain.ProviderParams(ctx)
	if err != nil {
		return n // the last known beats none while the node is away
	}
	d.mu.Lock()
	d.attestEvery = p.AttestInterval
	d.mu.Unlock()
	return p.AttestInterval
}

// attestation builds the MsgAttest for the provider's active leases, from
// running container counts by lease key and the leases this daemon
// manages. It returns nil when no lease is active.
func (d *Daemon) attestation(leases []markettypes.Lease, running map[string]int) *markettypes.MsgAttest {
	return attestationOf(d.provider, leases, running, func(key string) (leaseView, bool) {
		m, ok := d.managed(key)
		if !ok {
			return leaseView{}, false
		}
		return m.view(), true
	})
}

// attestationOf is attestation over a lookup of the managed leases' views.
func attestationOf(provider string, leases []markettypes.Lease, running map[string]int, managed func(key string) (leaseView, bool)) *markettypes.MsgAttest {
	msg := &markettypes.MsgAttest{Provider: provider}
	for _, l := range leases {
		if l.State != markettypes.LEASE_STATE_ACTIVE {
			continue
		}
		msg.Leases++
		key := orderKey(l.Id.Order)
		n := running[key]
		v, ok := managed(key)
		switch {
		case !ok:
			msg.Down = append(msg.Down, l.Id.Order)
		case n == 0 && !v.Busy:
			msg.Down = append(msg.Down, l.Id.Order)
		case n < v.Replicas:
			// Some replicas missing, or none while the daemon replaces
			// them (a tenant's update, or its roll-back): paid as running,
			// said as degraded.
			msg.Degraded = append(msg.Degraded, l.Id.Order)
		}
	}
	if msg.Leases == 0 {
		return nil
	}
	return msg
}

// attest sends one attestation and waits for its block.
func (d *Daemon) attest(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, attestTimeout)
	defer cancel()
	leases, err := d.allLeases(ctx)
	if err != nil {
		return err
	}
	running, err := d.rt.RunningContainers(ctx)
	if err != nil {
		return err
	}
	msg := d.attestation(leases, running)
	if msg == nil {
		return nil
	}
	if len(msg.Degraded) > markettypes.MaxAttestedExceptions {
		// Degraded leases are paid like running ones: past the cap they
		// are named no more than running ones.
		msg.Degraded = msg.Degraded[:markettypes.MaxAttestedExceptions]
	}
	if len(msg.Down) > markettypes.MaxAttestedExceptions {
		return fmt.Errorf("%d leases down, more than one attestation may name (%d)", len(msg.Down), markettypes.MaxAttestedExceptions)
	}
	if _, err := d.tx.SendAndWait(ctx, attestTimeout, msg); err != nil { // an error too when it failed in its block
		return err
	}
	d.metrics.attestations.WithLabelValues("sent").Inc()
	if len(msg.Down)+len(msg.Degraded) > 0 {
		d.log.Info("attested leases", "leases", msg.Leases, "down", len(msg.Down), "degraded", len(msg.Degraded))
	} else {
		d.log.Debug("attested leases", "leases", msg.Leases)
	}
	return nil
}
