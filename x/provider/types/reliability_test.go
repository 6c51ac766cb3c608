package types

import "testing"

func TestReliability(t *testing.T) {
	cases := []struct {
		name  string
		stats Stats
		want  string
	}{
		{"new provider", Stats{}, "0.250000000000000000"},
		{"perfect record of 8", Stats{LeasesWon: 8, LeasesStartedOnTime: 8}, "0.810000000000000000"},                                   // (9/10)·(9/10)
		{"never starts", Stats{LeasesWon: 10, StartFailures: 10}, "0.041666666666666666"},                                              // (1/12)·(1/2),
		{"walks away from everything", Stats{LeasesWon: 4, LeasesStartedOnTime: 4, LeasesClosedByProvider: 4}, "0.138888888888888888"}, // (5/6)·(1/6),
		{"closes more than it started (clamped)", Stats{LeasesWon: 1, LeasesClosedByProvider: 5}, "0.000000000000000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.stats.Reliability(); got.String() != c.want {
				t.Errorf("reliability(%+v) = %s, want %s", c.stats, got, c.want)
			}
		})
	}
}

func TestReliabilityOrdersProviders(t *testing.T) {
	good := Stats{LeasesWon: 20, LeasesStartedOnTime: 20}
	flaky := Stats{LeasesWon: 20, LeasesStartedOnTime: 15, StartFailures: 5}
	quitter := Stats{LeasesWon: 20, LeasesStartedOnTime: 20, LeasesClosedByProvider: 10}
	if !good.Reliability().GT(flaky.Reliability()) || !good.Reliability().GT(quitter.Reliability()) {
		t.Errorf("good %s, flaky %s, quitter %s", good.Reliability(), flaky.Reliability(), quitter.Reliability())
	}
}
