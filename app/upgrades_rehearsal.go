//go:build upgradetest

package app

// The rehearsal upgrade exists only in builds with the upgradetest tag: the
// "next" binary the e2e tests switch to by governance and cosmovisor. Its
// module migrations (x/market 4 → 5) run from the upgrade handler.
func init() {
	Upgrades = append(Upgrades, Upgrade{Name: RehearsalUpgrade})
}

// RehearsalUpgrade is the rehearsal upgrade's plan name.
const RehearsalUpgrade = "v2-rehearsal"
