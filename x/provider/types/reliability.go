package types

import sdkmath "cosmossdk.io/math"

// Reliability scores a provider in [0, 1] from its stats, deterministically
// and without floats:
//
//	on_time = (leases_started_on_time + 1) / (leases_won + 2)
//	kept    = (started - closed_by_provider - unresponsive + 1) / (started + 2), floored at 0
//	uptime  = attested up lease-blocks / lease-blocks answered for, over
//	          the recent window (1 with none yet)
//	score   = on_time × kept × uptime
//
// Both factors are Laplace-smoothed so a new provider starts at 0.25 rather
// than 0 or 1, and a handful of leases cannot make a perfect record. on_time
// punishes won leases that never started; kept punishes providers that walk
// away from running workloads or go silent on them; uptime is what the
// provider's own attestations, and its silences, say of the time its leases
// actually ran.
func (s Stats) Reliability() sdkmath.LegacyDec {
	onTime := sdkmath.LegacyNewDec(int64(s.LeasesStartedOnTime) + 1).
		QuoInt64(int64(s.LeasesWon) + 2)
	keptNum := int64(s.LeasesStartedOnTime) - int64(s.LeasesClosedByProvider) - int64(s.LeasesUnresponsive) + 1
	if keptNum < 0 {
		keptNum = 0
	}
	kept := sdkmath.LegacyNewDec(keptNum).QuoInt64(int64(s.LeasesStartedOnTime) + 2)
	score := onTime.Mul(kept).Mul(s.Uptime())
	if score.GT(sdkmath.LegacyOneDec()) {
		return sdkmath.LegacyOneDec()
	}
	return score
}

// Uptime is the share of lease-blocks attested up over the current and the
// previous uptime window; 1 when the provider answered for none yet.
func (s Stats) Uptime() sdkmath.LegacyDec {
	total := sdkmath.NewIntFromUint64(s.TotalLeaseBlocks).Add(sdkmath.NewIntFromUint64(s.PrevTotalLeaseBlocks))
	if total.IsZero() {
		return sdkmath.LegacyOneDec()
	}
	up := sdkmath.NewIntFromUint64(s.UpLeaseBlocks).Add(sdkmath.NewIntFromUint64(s.PrevUpLeaseBlocks))
	u := sdkmath.LegacyNewDecFromInt(up).QuoInt(total)
	if u.GT(sdkmath.LegacyOneDec()) {
		return sdkmath.LegacyOneDec()
	}
	return u
}

// AddUptime counts up of total lease-blocks at height into the window that
// holds it, rolling the windows (of window blocks) forward first.
func (s *Stats) AddUptime(up, total uint64, height int64, window uint64) {
	if window == 0 {
		window = 1
	}
	w := int64(window)
	if height >= s.WindowStart+w {
		if height >= s.WindowStart+2*w {
			s.PrevUpLeaseBlocks, s.PrevTotalLeaseBlocks = 0, 0
		} else {
			s.PrevUpLeaseBlocks, s.PrevTotalLeaseBlocks = s.UpLeaseBlocks, s.TotalLeaseBlocks
		}
		s.UpLeaseBlocks, s.TotalLeaseBlocks = 0, 0
		s.WindowStart = height - (height-s.WindowStart)%w
	}
	if up > total {
		up = total
	}
	s.UpLeaseBlocks = satAdd(s.UpLeaseBlocks, up)
	s.TotalLeaseBlocks = satAdd(s.TotalLeaseBlocks, total)
}

func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}
