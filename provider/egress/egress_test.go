package egress

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func testPolicy() Policy {
	return Policy{
		Pool:      netip.MustParsePrefix("10.251.0.0/16"),
		Allow:     []netip.Prefix{netip.MustParsePrefix("192.168.7.20/32")},
		Resolvers: []netip.Addr{netip.MustParseAddr("10.255.255.53")},
	}
}

func TestRulesRejectPrivateAndHostButPassOwnBridgeRepliesAndAllowList(t *testing.T) {
	p := testPolicy()
	fc, ic := p.Chains()
	if !strings.HasPrefix(fc, "GPN-FWD-") || !strings.HasPrefix(ic, "GPN-IN-") || len(fc) > 28 {
		t.Fatalf("chains %q %q", fc, ic)
	}
	other := Policy{Pool: netip.MustParsePrefix("10.252.0.0/16")}
	if of, _ := other.Chains(); of == fc {
		t.Fatal("two pools share a chain")
	}
	fwd, in := p.chainRules()
	joined := strings.Join(fwd, "\n")
	for _, want := range []string{
		"-A " + fc + " -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-A " + fc + " -d 192.168.7.20/32 -j RETURN",
		"-A " + fc + " -m physdev --physdev-is-bridged -j RETURN",
		"-A " + fc + " -d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN",
		"-A " + fc + " -d 169.254.0.0/16 " + reject,
		"-A " + fc + " -d 10.0.0.0/8 " + reject,
		"-A " + fc + " -d 192.168.0.0/16 " + reject,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("forward chain lacks %q:\n%s", want, joined)
		}
	}
	// The allow-list comes before the rejections.
	if strings.Index(joined, "192.168.7.20/32") > strings.Index(joined, "192.168.0.0/16") {
		t.Error("allow-list after the private ranges")
	}
	if in[len(in)-1] != "-A "+ic+" "+reject {
		t.Errorf("input chain does not end in a rejection: %v", in)
	}
	// A pool outside the private ranges is rejected by name.
	pub := Policy{Pool: netip.MustParsePrefix("203.0.113.0/24")}
	if b := pub.blocked(); b[len(b)-1] != pub.Pool {
		t.Errorf("public pool not blocked: %v", b)
	}
	if b := p.blocked(); len(b) != len(Blocked) {
		t.Errorf("private pool blocked twice: %v", b)
	}
}

func TestSplitArgsKeepsQuotedComment(t *testing.T) {
	got := splitArgs(`-s 10.0.0.0/8 -m comment --comment "gpunet lease egress" -j X`)
	want := []string{"-s", "10.0.0.0/8", "-m", "comment", "--comment", "gpunet lease egress", "-j", "X"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
}

// TestInstallVerifyAndDrift installs the rules for a pool no lease uses on
// this host, checks them, removes one rule by hand (Verify names the chain)
// and installs again. It needs root and a Docker engine managing iptables,
// as the daemon does.
func TestInstallVerifyAndDrift(t *testing.T) {
	ctx := context.Background()
	if _, err := iptables(ctx, "-S", "DOCKER-USER"); err != nil {
		t.Fatalf("this test needs root and dockerd's DOCKER-USER chain (scripts/setup.sh starts dockerd): %v", err)
	}
	p := testPolicy()
	p.Pool = netip.MustParsePrefix("10.253.128.0/20")
	t.Cleanup(func() { remove(t, p) })
	if err := Install(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, p); err != nil { // idempotent: no second jump
		t.Fatal(err)
	}
	out, _ := iptables(ctx, "-S", "DOCKER-USER")
	if n := strings.Count(out, "-s "+p.Pool.String()+" -m comment --comment \""+jumpComment); n != 1 {
		t.Fatalf("%d jumps in DOCKER-USER:\n%s", n, out)
	}
	if err := Verify(ctx, p); err != nil {
		t.Fatal(err)
	}
	fc, _ := p.Chains()
	if _, err := iptables(ctx, "-D", fc, "-d", "169.254.0.0/16", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"); err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, p); err == nil || !strings.Contains(err.Error(), fc) {
		t.Fatalf("verify after a rule was removed: %v", err)
	}
	if err := Install(ctx, p); err != nil {
		t.Fatal(err)
	}
	// A jump removed by hand is missed, by name.
	j := p.jumps()[1]
	if _, err := iptables(ctx, append([]string{"-D", j[0]}, splitArgs(j[1])...)...); err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, p); err == nil || !strings.Contains(err.Error(), "INPUT does not send the lease pool") {
		t.Fatalf("verify without the INPUT jump: %v", err)
	}
	// A rule that accepts everything put ahead of the jump is caught, and
	// Install moves the jump back in front of it, leaving one copy.
	if err := Install(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := iptables(ctx, "-I", "INPUT", "1", "-s", p.Pool.String(), "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = iptables(ctx, "-D", "INPUT", "-s", p.Pool.String(), "-j", "ACCEPT") })
	if err := Verify(ctx, p); err == nil || !strings.Contains(err.Error(), "accepts traffic before the lease filter") {
		t.Fatalf("verify with an ACCEPT ahead of the jump: %v", err)
	}
	if err := Install(ctx, p); err != nil {
		t.Fatal(err)
	}
	out, _ = iptables(ctx, "-S", "INPUT")
	if n := strings.Count(out, "-s "+p.Pool.String()+" -m comment --comment \""+jumpComment); n != 1 {
		t.Fatalf("%d jumps in INPUT after moving it first:\n%s", n, out)
	}
	if _, err := iptables(ctx, "-D", "INPUT", "-s", p.Pool.String(), "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}

	// The operator's script installs the same rules.
	if out, err := exec.Command("sh", "-c", p.Script()).CombinedOutput(); err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	if err := Verify(ctx, p); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, p Policy) {
	ctx := context.Background()
	for _, j := range p.jumps() {
		for {
			if _, err := iptables(ctx, append([]string{"-D", j[0]}, splitArgs(j[1])...)...); err != nil {
				break
			}
		}
	}
	fc, ic := p.Chains()
	for _, c := range []string{fc, ic} {
		_, _ = iptables(ctx, "-F", c)
		_, _ = iptables(ctx, "-X", c)
	}
}

func TestResolversSkipsLoopbackAndIPv6(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/resolv.conf"
	if err := writeFile(path, "# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 8.8.8.8\nsearch x\n"); err != nil {
		t.Fatal(err)
	}
	got, err := Resolvers(path)
	if err != nil || len(got) != 2 || got[0].String() != "10.0.0.2" || got[1].String() != "8.8.8.8" {
		t.Fatalf("%v %v", got, err)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
