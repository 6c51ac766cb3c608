package types

import sdkmath "cosmossdk.io/math"

// Reliability scores a provider in [0, 1] from its stats, deterministically
// and without floats:
//
//	on_time = (leases_started_on_time + 1) / (leases_won + 2)
//	kept    = (started - closed_by_provider + 1) / (started + 2), floored at 0
//	score   = on_time × kept
//
// Both factors are Laplace-smoothed so a new provider starts at 0.25 rather
// than 0 or 1, and a handful of leases cannot make a perfect record. on_time
// punishes won leases that never started; kept punishes providers that walk
// away from running workloads.
func (s Stats) Reliability() sdkmath.LegacyDec {
	onTime := sdkmath.LegacyNewDec(int64(s.LeasesStartedOnTime) + 1).
		QuoInt64(int64(s.LeasesWon) + 2)
	keptNum := int64(s.LeasesStartedOnTime) - int64(s.LeasesClosedByProvider) + 1
	if keptNum < 0 {
		keptNum = 0
	}
	kept := sdkmath.LegacyNewDec(keptNum).QuoInt64(int64(s.LeasesStartedOnTime) + 2)
	score := onTime.Mul(kept)
	if score.GT(sdkmath.LegacyOneDec()) {
		return sdkmath.LegacyOneDec()
	}
	return score
}
