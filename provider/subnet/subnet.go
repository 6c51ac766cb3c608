// Package subnet cuts the provider's per-lease network subnets out of an
// address pool.
package subnet

import (
	"errors"
	"fmt"
	"net/netip"
)

// DefaultPool is the address pool lease networks are cut from when
// the provider configures none: 4096 /24 networks in private space that
// Docker's own default pools (172.17.0.0/16–172.31.0.0/16, 192.168.0.0/16)
// do not use. Those defaults hold only about 30 bridge networks, so a
// provider that left the choice to the engine could run no more than ~30
// leases.
const DefaultPool = "10.240.0.0/12"

// DefaultBits is the prefix length of one lease's network: 254
// addresses, more replicas than one lease can have.
const DefaultBits = 24

// ErrExhausted is returned when every subnet of the pool is in use.
var ErrExhausted = errors.New("lease subnet pool exhausted")

// Pool cuts fixed-size subnets out of a pool.
type Pool struct {
	pool netip.Prefix
	bits int
}

// Parse checks a pool and a per-lease prefix length.
func Parse(pool string, bits int) (Pool, error) {
	p, err := netip.ParsePrefix(pool)
	if err != nil {
		return Pool{}, fmt.Errorf("lease subnet pool %q: %w", pool, err)
	}
	if !p.Addr().Is4() {
		return Pool{}, fmt.Errorf("lease subnet pool %q: only IPv4 pools are supported", pool)
	}
	if p.Masked() != p {
		return Pool{}, fmt.Errorf("lease subnet pool %q: host bits are set (did you mean %s?)", pool, p.Masked())
	}
	if bits < p.Bits() || bits > 29 {
		return Pool{}, fmt.Errorf("lease subnet size /%d: must be between the pool's /%d and /29", bits, p.Bits())
	}
	return Pool{pool: p, bits: bits}, nil
}

// Widened is the pool cutting subnets k bits wider (2^k times larger), or
// as wide as the pool itself when it is smaller than that.
func (s Pool) Widened(k int) Pool {
	return Pool{pool: s.pool, bits: max(s.pool.Bits(), s.bits-k)}
}

// String is the pool as CIDR.
func (s Pool) String() string { return s.pool.String() }

// Covers reports whether p lies inside the pool.
func (s Pool) Covers(p netip.Prefix) bool {
	return p.Bits() >= s.pool.Bits() && s.pool.Contains(p.Masked().Addr())
}

// Bits is the prefix length of the subnets the pool cuts.
func (s Pool) Bits() int { return s.bits }

// Size is how many subnets the pool holds.
func (s Pool) Size() uint64 { return 1 << uint(s.bits-s.pool.Bits()) }

// Nth is the pool's i-th subnet.
func (s Pool) Nth(i uint64) netip.Prefix {
	base := s.pool.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(i) << uint(32-s.bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), s.bits)
}

// Free returns the first subnet of the pool that overlaps none of used.
// Cost is O(pool size × used) in the worst case; pools hold a few thousand
// subnets and hosts a few hundred networks.
func (s Pool) Free(used []netip.Prefix) (netip.Prefix, error) {
	for i := uint64(0); i < s.Size(); i++ {
		c := s.Nth(i)
		clash := false
		for _, u := range used {
			if c.Overlaps(u) {
				clash = true
				break
			}
		}
		if !clash {
			return c, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%w: all %d /%d subnets of %s overlap existing networks", ErrExhausted, s.Size(), s.bits, s.pool)
}
