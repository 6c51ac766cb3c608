// Package egress keeps lease containers off the provider's own networks.
//
// A lease network is a plain Docker bridge: without filtering, a container
// reaches the cloud metadata address, the provider's LAN and management
// interfaces, other leases' subnets, and every host service bound to a
// non-loopback address (through the bridge gateway). Two iptables chains,
// named after the lease pool so that several daemons with different pools
// can share a host, close that:
//
//   - GPN-FWD-<pool hash>, jumped to from DOCKER-USER for traffic from the
//     pool, rejects routed traffic to link-local, private, shared, loopback,
//     multicast and reserved ranges and to the pool itself (other leases).
//     Traffic inside one bridge (a lease's own network; on the shared
//     network the engine's enable_icc=false drops it after this chain),
//     replies on connections made to the lease (its published ports), DNS
//     to the host's resolvers and the operator's allow-list pass; the
//     internet stays open.
//   - GPN-IN-<pool hash>, jumped to from INPUT for traffic from the pool,
//     rejects everything addressed to the host itself (any of its addresses,
//     the bridge gateway included) except replies and the allow-list.
//
// Rules are written with iptables-restore --noflush, which replaces each
// chain's rules in one step, and survive the daemon: containers keep
// running when it stops, and so does their filter.
package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Modes of the daemon's runtime.egress_filter setting.
const (
	// ModeInstall writes the rules at start and puts them back when they
	// drift (the default).
	ModeInstall = "install"
	// ModeVerify only checks rules the operator installs (with `gpunet-provider
	// egress rules`); the daemon refuses to start without them.
	ModeVerify = "verify"
	// ModeOff runs leases unfiltered (a host whose network is isolated some
	// other way); the daemon says so at start and on /healthz.
	ModeOff = "off"
)

// Blocked are the destinations no lease may reach: this network
// ("0.0.0.0/8"), RFC 1918 private ranges, carrier-grade NAT, loopback,
// link-local (cloud metadata lives there), IETF protocol assignments,
// benchmarking, multicast and reserved space.
var Blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// Policy is what the rules enforce for one lease pool.
type Policy struct {
	// Pool is runtime.lease_subnets: every lease network is cut from it.
	Pool netip.Prefix
	// Allow are destinations the operator opens (a registry mirror on the
	// LAN, say): they pass both chains.
	Allow []netip.Prefix
	// Resolvers are the DNS servers the engine forwards containers' queries
	// to (the host's /etc/resolv.conf): port 53 on them stays open.
	Resolvers []netip.Addr
}

// reject is how a blocked packet ends: the sender learns at once that it
// was refused instead of waiting for a timeout.
const reject = "-j REJECT --reject-with icmp-admin-prohibited"

// jumpComment marks the daemon's jump rules so an operator can find them.
const jumpComment = "gpunet lease egress"

// Chains are the policy's chain names, unique per pool.
func (p Policy) Chains() (forward, input string) {
	sum := sha256.Sum256([]byte(p.Pool.Masked().String()))
	h := hex.EncodeToString(sum[:4])
	return "GPN-FWD-" + h, "GPN-IN-" + h
}

// chainRules are each chain's rules, written as `iptables -S` prints them
// so that Verify can compare the two.
func (p Policy) chainRules() (fwd, in []string) {
	fc, ic := p.Chains()
	pass := func(chain string) []string {
		rules := []string{"-A " + chain + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"}
		for _, a := range p.Allow {
			rules = append(rules, fmt.Sprintf("-A %s -d %s -j RETURN", chain, a.Masked()))
		}
		return rules
	}
	fwd = pass(fc)
	// Frames bridged inside one lease's network (its own replicas talking)
	// are not routed; routed traffic between two lease bridges is.
	fwd = append(fwd, "-A "+fc+" -m physdev --physdev-is-bridged -j RETURN")
	for _, r := range p.Resolvers {
		for _, proto := range []string{"udp", "tcp"} {
			fwd = append(fwd, fmt.Sprintf("-A %s -d %s/32 -p %s -m %s --dport 53 -j RETURN", fc, r, proto, proto))
		}
	}
	for _, b := range p.blocked() {
		fwd = append(fwd, fmt.Sprintf("-A %s -d %s %s", fc, b, reject))
	}
	in = pass(ic)
	in = append(in, "-A "+ic+" "+reject)
	return fwd, in
}

// blocked is Blocked plus the pool when it lies outside those ranges.
func (p Policy) blocked() []netip.Prefix {
	out := append([]netip.Prefix(nil), Blocked...)
	for _, b := range Blocked {
		if b.Bits() <= p.Pool.Bits() && b.Contains(p.Pool.Addr()) {
			return out
		}
	}
	return append(out, p.Pool.Masked())
}

// jumps are the rules that send the pool's traffic into the chains: the
// chain and the rule spec, without -A/-I.
func (p Policy) jumps() [][2]string {
	fc, ic := p.Chains()
	src := "-s " + p.Pool.Masked().String()
	return [][2]string{
		{"DOCKER-USER", src + ` -m comment --comment "` + jumpComment + `" -j ` + fc},
		{"INPUT", src + ` -m comment --comment "` + jumpComment + `" -j ` + ic},
	}
}

// Restore is the iptables-restore --noflush input that (re)writes both
// chains.
func (p Policy) Restore() string {
	fc, ic := p.Chains()
	fwd, in := p.chainRules()
	var b strings.Builder
	b.WriteString("*filter\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n:%s - [0:0]\n", fc, ic)
	for _, r := range append(fwd, in...) {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// Script is a shell script an operator can run (as root) to install the
// rules by hand, for ModeVerify.
func (p Policy) Script() string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# gpunet lease egress filter for pool " + p.Pool.Masked().String() + "\nset -e\n")
	b.WriteString("iptables-restore -w --noflush <<'EOF'\n" + p.Restore() + "EOF\n")
	for _, j := range p.jumps() {
		fmt.Fprintf(&b, "iptables -w -C %s %s 2>/dev/null || iptables -w -I %s 1 %s\n", j[0], j[1], j[0], j[1])
	}
	return b.String()
}

// Install writes the chains and inserts the jumps first in DOCKER-USER and
// INPUT (when missing). It needs CAP_NET_ADMIN and a Docker engine that
// manages iptables (DOCKER-USER exists).
func Install(ctx context.Context, p Policy) error {
	if _, err := iptables(ctx, "-S", "DOCKER-USER"); err != nil {
		return fmt.Errorf("egress filter: the DOCKER-USER chain is missing (is dockerd running with iptables management on?): %w", err)
	}
	cmd := exec.CommandContext(ctx, "iptables-restore", "-w", "--noflush")
	cmd.Stdin = strings.NewReader(p.Restore())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("egress filter: iptables-restore: %w: %s", err, bytes.TrimSpace(out))
	}
	for _, j := range p.jumps() {
		if err := ensureJumpFirst(ctx, j[0], j[1]); err != nil {
			return err
		}
	}
	return Verify(ctx, p)
}

// ensureJumpFirst makes the jump rule spec come before any rule of chain
// that accepts: already so, nothing changes; otherwise the jump is
// inserted first and then any later copy deleted (by number, so the
// traffic is never without one).
func ensureJumpFirst(ctx context.Context, chain, spec string) error {
	out, err := iptables(ctx, "-S", chain)
	if err != nil {
		return fmt.Errorf("egress filter: list %s: %w", chain, err)
	}
	want := "-A " + chain + " " + spec
	lines := ruleLines(out, chain)
	for _, l := range lines {
		if l == want {
			return nil // first, ahead of any ACCEPT
		}
		if strings.HasSuffix(l, " -j ACCEPT") {
			break
		}
	}
	if _, err := iptables(ctx, append([]string{"-I", chain, "1"}, splitArgs(spec)...)...); err != nil {
		return fmt.Errorf("egress filter: insert the jump into %s: %w", chain, err)
	}
	// Rule numbers are 1-based and the new rule is number 1: the old
	// copies are at their old index + 2. Deleted from the last up.
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == want {
			if _, err := iptables(ctx, "-D", chain, strconv.Itoa(i+2)); err != nil {
				return fmt.Errorf("egress filter: remove a late copy of the jump from %s: %w", chain, err)
			}
		}
	}
	return nil
}

// Verify checks that the chains hold exactly the policy's rules and that
// the jumps come before anything else in DOCKER-USER and INPUT that could
// accept the traffic first. The error names the first difference.
func Verify(ctx context.Context, p Policy) error {
	fc, ic := p.Chains()
	fwd, in := p.chainRules()
	for _, c := range []struct {
		name  string
		rules []string
	}{{fc, fwd}, {ic, in}} {
		out, err := iptables(ctx, "-S", c.name)
		if err != nil {
			return fmt.Errorf("egress filter: chain %s is missing: %w", c.name, err)
		}
		got := ruleLines(out, c.name)
		if strings.Join(got, "\n") != strings.Join(c.rules, "\n") {
			return fmt.Errorf("egress filter: chain %s holds %d rules that differ from the policy's %d (reinstall with `gpunet-provider egress rules | sh`)", c.name, len(got), len(c.rules))
		}
	}
	for _, j := range p.jumps() {
		out, err := iptables(ctx, "-S", j[0])
		if err != nil {
			return fmt.Errorf("egress filter: list %s: %w", j[0], err)
		}
		want := "-A " + j[0] + " " + j[1]
		lines := ruleLines(out, j[0])
		idx := -1
		for i, l := range lines {
			if l == want {
				idx = i
				break
			}
		}
		if idx < 0 {
			return fmt.Errorf("egress filter: %s does not send the lease pool %s to the filter (missing: %s)", j[0], p.Pool.Masked(), want)
		}
		for _, l := range lines[:idx] {
			if strings.HasSuffix(l, " -j ACCEPT") {
				return fmt.Errorf("egress filter: %s accepts traffic before the lease filter (%q); put the filter's jump first", j[0], l)
			}
		}
	}
	return nil
}

// ruleLines are the "-A chain ..." lines of iptables -S output.
func ruleLines(out, chain string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "-A "+chain+" ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// splitArgs splits a rule spec on spaces, keeping a double-quoted comment
// as one argument.
func splitArgs(spec string) []string {
	var args []string
	for spec != "" {
		spec = strings.TrimLeft(spec, " ")
		if strings.HasPrefix(spec, `"`) {
			end := strings.Index(spec[1:], `"`)
			args = append(args, spec[1:end+1])
			spec = spec[end+2:]
			continue
		}
		word, rest, _ := strings.Cut(spec, " ")
		args = append(args, word)
		spec = rest
	}
	return args
}

func iptables(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return "", fmt.Errorf("iptables is not installed: %w", err)
		}
		return "", fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Resolvers reads the IPv4 nameservers of a resolv.conf file; loopback
// ones are left out (the engine queries those from the host itself).
func Resolvers(path string) ([]netip.Addr, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || !a.Is4() || a.IsLoopback() {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}
