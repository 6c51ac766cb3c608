package types

import (
	"math/big"
	"time"

	sdkmath "cosmossdk.io/math"
)

// SecondsPerHour converts the per-hour rates into per-second accrual.
const SecondsPerHour = 3600

// maxFundableSeconds caps depletion horizons (about 100 years) so time
// arithmetic never overflows, whatever the balance and rate.
const maxFundableSeconds = 100 * 365 * 24 * 3600

var unitSecondsScale = new(big.Int).Mul(big.NewInt(SecondsPerHour), new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil))

// Accrue returns the whole units a payment earns over elapsed seconds at
// rate per hour, and its new remainder. Rates have 18 decimals, so
// rate × seconds is exact; the part below one unit stays in the remainder,
// kept in unit-seconds per hour (below 3600) so nothing is ever rounded away.
func Accrue(rate sdkmath.LegacyDec, elapsedSeconds int64, remainder sdkmath.LegacyDec) (sdkmath.Int, sdkmath.LegacyDec) {
	total := rate.MulInt64(elapsedSeconds).Add(remainder)
	paid := new(big.Int).Quo(total.BigInt(), unitSecondsScale)
	paidInt := sdkmath.NewIntFromBigInt(paid)
	return paidInt, total.Sub(sdkmath.LegacyNewDecFromInt(paidInt).MulInt64(SecondsPerHour))
}

// SecondsFundable returns the largest whole number of seconds for which an
// account holding balance can pay payments whose rates add up to totalRate
// and whose remainders add up to remainders: the largest s with
// floor((totalRate·s + remainders) / 3600) ≤ balance. Since each payment
// accrues floor((rate·s + remainder)/3600), the payments together never ask
// for more than balance within s seconds. ok is false when nothing is being
// paid (totalRate zero): the account never runs dry.
func SecondsFundable(balance sdkmath.Int, totalRate, remainders sdkmath.LegacyDec) (int64, bool) {
	if !totalRate.IsPositive() {
		return 0, false
	}
	// In 1e-18 units: (balance+1)·3600·1e18 − 1 − remainders ≥ rate·s.
	x := new(big.Int).Add(balance.BigInt(), big.NewInt(1))
	x.Mul(x, unitSecondsScale)
	x.Sub(x, big.NewInt(1))
	x.Sub(x, remainders.BigInt())
	if x.Sign() < 0 {
		return 0, true
	}
	s := x.Quo(x, totalRate.BigInt())
	if !s.IsInt64() || s.Int64() > maxFundableSeconds {
		return maxFundableSeconds, true
	}
	return s.Int64(), true
}

// ElapsedSeconds is the number of whole seconds from since to now; the part
// of a second left over stays in the clock for the next settlement.
func ElapsedSeconds(since, now time.Time) int64 {
	if !now.After(since) {
		return 0
	}
	return int64(now.Sub(since) / time.Second)
}

// Take splits a payout into the take (truncated, to the fee collector) and
// what the provider receives.
func Take(gross sdkmath.Int, takeRate sdkmath.LegacyDec) (take, net sdkmath.Int) {
	take = takeRate.MulInt(gross).TruncateInt()
	return take, gross.Sub(take)
}

// Settle accrues every payment of acc up to now, never beyond the last
// second the balance can pay for, and moves what they earned out of the
// balance. Payments must be the account's open payments. It then
// recomputes when the account runs dry.
func Settle(acc *Account, payments []*Payment, now time.Time) {
	if d := acc.DepletesAt; d != nil && !now.Before(*d) {
		now = d.Add(-time.Second) // last fundable second; EndBlock closes the account
	}
	elapsed := ElapsedSeconds(acc.SettledAt, now)
	if elapsed == 0 {
		return
	}
	total := sdkmath.ZeroInt()
	for _, p := range payments {
		if p.Paused {
			continue
		}
		paid, rem := Accrue(p.Rate, elapsed, p.Remainder)
		p.Accrued = p.Accrued.Add(paid)
		p.Remainder = rem
		total = total.Add(paid)
	}
	acc.Balance = acc.Balance.Sub(total)
	acc.Transferred = acc.Transferred.Add(total)
	acc.SettledAt = acc.SettledAt.Add(time.Duration(elapsed) * time.Second)
	Reschedule(acc, payments)
}

// Reschedule recomputes acc.TotalRate and acc.DepletesAt (the first second
// the balance cannot pay for) from its open payments.
func Reschedule(acc *Account, payments []*Payment) {
	rate, rems := sdkmath.LegacyZeroDec(), sdkmath.LegacyZeroDec()
	for _, p := range payments {
		if p.Paused {
			continue
		}
		rate = rate.Add(p.Rate)
		rems = rems.Add(p.Remainder)
	}
	acc.TotalRate = rate
	s, ok := SecondsFundable(acc.Balance, rate, rems)
	if !ok {
		acc.DepletesAt = nil
		return
	}
	d := acc.SettledAt.Add(time.Duration(s+1) * time.Second)
	acc.DepletesAt = &d
}

// AccruedAt is what p had accrued by t, a time at or before its account's
// last settlement: exact, since an unpaused payment accrues
// floor((rate × seconds + remainder) / 3600) from its run's start whatever
// the settlements in between. A paused payment has accrued nothing since it
// paused. The result never exceeds p.Accrued.
func AccruedAt(p *Payment, t time.Time) (sdkmath.Int, sdkmath.LegacyDec) {
	if p.Paused {
		return p.Accrued, p.Remainder
	}
	from, base, rem := p.RunFrom, p.RunAccrued, p.RunRemainder
	if from.IsZero() { // a payment from before runs were recorded
		from, base, rem = p.OpenedAt, sdkmath.ZeroInt(), sdkmath.LegacyZeroDec()
	}
	if base.IsNil() {
		base = sdkmath.ZeroInt()
	}
	if rem.IsNil() {
		rem = sdkmath.LegacyZeroDec()
	}
	paid, rem := Accrue(p.Rate, ElapsedSeconds(from, t), rem)
	at := base.Add(paid)
	if at.GTE(p.Accrued) {
		return p.Accrued, p.Remainder
	}
	return at, rem
}
