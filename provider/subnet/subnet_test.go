package subnet

import (
	"errors"
	"net/netip"
	"testing"
)

func TestSubnetPoolSkipsUsedAndOverlappingNetworks(t *testing.T) {
	p, err := Parse("10.240.0.0/22", 24)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != 4 {
		t.Fatalf("size %d, want 4", p.Size())
	}
	used := []netip.Prefix{
		netip.MustParsePrefix("10.240.0.0/24"),
		netip.MustParsePrefix("10.240.1.128/25"), // a foreign network inside the second /24
		netip.MustParsePrefix("172.17.0.0/16"),
	}
	got, err := p.Free(used)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParsePrefix("10.240.2.0/24"); got != want {
		t.Fatalf("free = %s, want %s", got, want)
	}
	// A network covering the whole pool leaves nothing.
	_, err = p.Free([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("err = %v, want ErrExhausted", err)
	}
}

func TestSubnetPoolNthCrossesOctets(t *testing.T) {
	p, err := Parse(DefaultPool, DefaultBits)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size() != 4096 {
		t.Fatalf("size %d, want 4096", p.Size())
	}
	for i, want := range map[uint64]string{0: "10.240.0.0/24", 255: "10.240.255.0/24", 256: "10.241.0.0/24", 4095: "10.255.255.0/24"} {
		if got := p.Nth(i).String(); got != want {
			t.Errorf("nth(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestParseSubnetPoolRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		pool string
		bits int
	}{
		{"10.240.0.0", 24},    // not a prefix
		{"10.240.0.1/12", 24}, // host bits
		{"fd00::/64", 120},    // IPv6
		{"10.240.0.0/24", 16}, // subnet larger than the pool
		{"10.240.0.0/12", 30}, // too small for a network
		{"not-an-ip/12", 24},  // garbage
	} {
		if _, err := Parse(c.pool, c.bits); err == nil {
			t.Errorf("Parse(%q, %d) accepted", c.pool, c.bits)
		}
	}
}

func TestPoolCoversAndWidens(t *testing.T) {
	p, err := Parse("10.240.0.0/12", 24)
	if err != nil {
		t.Fatal(err)
	}
	for cidr, want := range map[string]bool{
		"10.240.0.0/24": true, "10.255.255.0/24": true, "10.240.96.0/20": true, "10.240.0.0/12": true,
		"10.0.0.0/8": false, "10.239.255.0/24": false, "192.168.1.0/24": false,
	} {
		if got := p.Covers(netip.MustParsePrefix(cidr)); got != want {
			t.Errorf("Covers(%s) = %v, want %v", cidr, got, want)
		}
	}
	if w := p.Widened(4); w.Bits() != 20 || w.String() != "10.240.0.0/12" {
		t.Errorf("Widened(4) = /%d of %s, want /20 of 10.240.0.0/12", w.Bits(), w)
	}
	if w := p.Widened(20); w.Bits() != 12 {
		t.Errorf("Widened past the pool = /%d, want the pool's /12", w.Bits())
	}
}
