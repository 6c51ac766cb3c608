package types

import (
	"math/rand/v2"
	"testing"
	"time"

	sdkmath "cosmossdk.io/math"
)

var dec = sdkmath.LegacyMustNewDecFromStr

func TestAccrue(t *testing.T) {
	cases := []struct {
		name      string
		rate      string
		seconds   int64
		remainder string
		paid      int64
		rem       string
	}{
		{"one hour at 3600/h", "3600", 3600, "0", 3600, "0"},
		{"one second at 3600/h", "3600", 1, "0", 1, "0"},
		{"tiny rate accumulates", "1", 1, "0", 0, "1"},           // 1/3600 of a unit
		{"tiny rate pays after an hour", "1", 1, "3599", 1, "0"}, // remainder completes a unit
		{"fractional rate", "0.5", 7200, "0", 1, "0"},            // 0.5/h for 2h
		{"18-decimal rate", "0.000000000000000001", 1, "0", 0, "0.000000000000000001"},
		{"large rate", "1000000000000", 3600 * 24 * 365, "0", 8_760_000_000_000_000, "0"}, // 1e12/h for 8760 h
		{"zero elapsed keeps remainder", "5", 0, "12.5", 0, "12.5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			paid, rem := Accrue(dec(c.rate), c.seconds, dec(c.remainder))
			if paid.Int64() != c.paid || !rem.Equal(dec(c.rem)) {
				t.Fatalf("Accrue(%s, %d, %s) = %s, %s; want %d, %s", c.rate, c.seconds, c.remainder, paid, rem, c.paid, c.rem)
			}
		})
	}
}

// Accruing second by second must give exactly what one accrual over the
// whole span gives: splitting time never loses or creates a unit.
func TestAccrueIsSplitInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		rate := sdkmath.LegacyNewDecWithPrec(r.Int64N(1_000_000_000_000), int64(r.IntN(12)))
		total := int64(1 + r.IntN(5000))
		whole, wholeRem := Accrue(rate, total, sdkmath.LegacyZeroDec())
		paid, rem := sdkmath.ZeroInt(), sdkmath.LegacyZeroDec()
		for left := total; left > 0; {
			step := int64(1 + r.IntN(50))
			if step > left {
				step = left
			}
			var p sdkmath.Int
			p, rem = Accrue(rate, step, rem)
			paid = paid.Add(p)
			left -= step
		}
		if !paid.Equal(whole) || !rem.Equal(wholeRem) {
			t.Fatalf("rate %s over %ds: split gives %s+%s, whole gives %s+%s", rate, total, paid, rem, whole, wholeRem)
		}
	}
}

func TestSecondsFundable(t *testing.T) {
	cases := []struct {
		name             string
		balance          int64
		rate, remainders string
		want             int64
		ok               bool
	}{
		{"no payments", 100, "0", "0", 0, false},
		{"3600/h pays one a second", 10, "3600", "0", 10, true},
		{"remainder brings it forward", 10, "3600", "1800", 10, true}, // (3600·10+1800)/3600 = 10.5 → 10 ≤ 10
		{"slow rate lasts long", 1, "1", "0", 7199, true},             // floor(s/3600) ≤ 1
		{"empty account", 0, "7200", "0", 0, true},
		{"huge balance is capped", 1 << 62, "0.000000000000000001", "0", maxFundableSeconds, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := SecondsFundable(sdkmath.NewInt(c.balance), dec(c.rate), dec(c.remainders))
			if got != c.want || ok != c.ok {
				t.Fatalf("got %d %v, want %d %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func newAccount(balance int64, at time.Time) *Account {
	return &Account{
		Balance: sdkmath.NewInt(balance), Deposited: sdkmath.NewInt(balance), Transferred: sdkmath.ZeroInt(),
		SettledAt: at, TotalRate: sdkmath.LegacyZeroDec(),
	}
}

func newPayment(rate string) *Payment {
	return &Payment{Rate: dec(rate), Accrued: sdkmath.ZeroInt(), Withdrawn: sdkmath.ZeroInt(), Remainder: sdkmath.LegacyZeroDec()}
}

func TestSettleNeverOverdraws(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 9))
	for range 300 {
		acc := newAccount(r.Int64N(5_000_000), t0)
		var ps []*Payment
		for range 1 + r.IntN(6) {
			ps = append(ps, newPayment(sdkmath.LegacyNewDecWithPrec(r.Int64N(10_000_000_000), int64(r.IntN(6))).String()))
		}
		Reschedule(acc, ps)
		now := t0
		for range 50 {
			now = now.Add(time.Duration(r.Int64N(int64(10 * time.Hour)))) // block-time jumps
			Settle(acc, ps, now)
			if acc.Balance.IsNegative() {
				t.Fatalf("balance went negative: %s", acc.Balance)
			}
			accrued := sdkmath.ZeroInt()
			for _, p := range ps {
				accrued = accrued.Add(p.Accrued)
			}
			if !accrued.Add(acc.Balance).Equal(acc.Deposited) || !accrued.Equal(acc.Transferred) {
				t.Fatalf("books do not add up: accrued %s + balance %s != deposited %s", accrued, acc.Balance, acc.Deposited)
			}
		}
	}
}

func TestSettleStopsAtDepletion(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	acc := newAccount(100, t0)
	ps := []*Payment{newPayment("3600"), newPayment("1800")} // 1.5 units a second together
	Reschedule(acc, ps)
	// floor(1.5·s) ≤ 100 → s ≤ 67; runs dry at second 68.
	if want := t0.Add(68 * time.Second); !acc.DepletesAt.Equal(want) {
		t.Fatalf("depletes at %s, want %s", acc.DepletesAt, want)
	}
	Settle(acc, ps, t0.Add(time.Hour)) // far past depletion
	if !acc.SettledAt.Equal(t0.Add(67 * time.Second)) {
		t.Errorf("settled to %s, want the last fundable second", acc.SettledAt)
	}
	if ps[0].Accrued.Int64() != 67 || ps[1].Accrued.Int64() != 33 || !acc.Balance.IsZero() || !ps[1].Remainder.Equal(dec("1800")) {
		t.Errorf("accrued %s and %s (remainder %s), balance %s; want 67, 33 (+half a unit), 0", ps[0].Accrued, ps[1].Accrued, ps[1].Remainder, acc.Balance)
	}
}

func TestSettleKeepsSubSecondTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	acc := newAccount(1_000_000, t0)
	ps := []*Payment{newPayment("3600")}
	Reschedule(acc, ps)
	for i := 1; i <= 10; i++ {
		Settle(acc, ps, t0.Add(time.Duration(i)*1500*time.Millisecond)) // 1.5 s blocks
	}
	if ps[0].Accrued.Int64() != 15 {
		t.Errorf("after 15 s of 1.5 s blocks accrued %s, want 15", ps[0].Accrued)
	}
}

func TestTake(t *testing.T) {
	take, net := Take(sdkmath.NewInt(1000), dec("0.02"))
	if take.Int64() != 20 || net.Int64() != 980 {
		t.Errorf("2%% of 1000: take %s net %s", take, net)
	}
	take, net = Take(sdkmath.NewInt(49), dec("0.02")) // 0.98 → 0
	if take.Int64() != 0 || net.Int64() != 49 {
		t.Errorf("2%% of 49: take %s net %s", take, net)
	}
}

// TestAccruedAtMatchesSettlingThen: what AccruedAt says a payment had
// earned by an earlier second is exactly what settling at that second
// gave, whatever settlements, pauses and resumes came between.
func TestAccruedAtMatchesSettlingThen(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(11, 13))
	for range 200 {
		acc := newAccount(1<<60, t0)
		p := newPayment(sdkmath.LegacyNewDecWithPrec(1+r.Int64N(10_000_000_000), int64(r.IntN(8))).String())
		p.RunFrom, p.RunAccrued, p.RunRemainder = t0, sdkmath.ZeroInt(), sdkmath.LegacyZeroDec()
		ps := []*Payment{p}
		Reschedule(acc, ps)
		type snap struct {
			at      time.Time
			accrued sdkmath.Int
		}
		var snaps []snap
		now := t0
		for range 40 {
			now = now.Add(time.Duration(1+r.Int64N(100)) * time.Second)
			Settle(acc, ps, now)
			switch r.IntN(5) {
			case 0: // pause at this second
				p.Paused = true
				Reschedule(acc, ps)
			case 1: // resume: a new run from this second
				if p.Paused {
					p.Paused = false
					p.RunFrom, p.RunAccrued, p.RunRemainder = acc.SettledAt, p.Accrued, p.Remainder
					Reschedule(acc, ps)
					snaps = nil // times before the run are not asked about
				}
			}
			if !p.Paused {
				snaps = append(snaps, snap{acc.SettledAt, p.Accrued})
			}
		}
		for _, s := range snaps {
			if got, _ := AccruedAt(p, s.at); !p.Paused && !got.Equal(s.accrued) {
				t.Fatalf("AccruedAt(%s) = %s, settling then gave %s (rate %s)", s.at, got, s.accrued, p.Rate)
			}
		}
		if got, _ := AccruedAt(p, now.Add(time.Hour)); !got.Equal(p.Accrued) {
			t.Fatalf("AccruedAt after the last settlement = %s, want the accrued %s", got, p.Accrued)
		}
	}
}
