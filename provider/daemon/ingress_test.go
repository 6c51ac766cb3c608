package daemon

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

func ingressGroup(svc string, hosts ...string) sdl.ManifestGroup {
	return sdl.ManifestGroup{Name: "g", Services: []sdl.ManifestService{{Name: svc, Expose: []sdl.ManifestExpose{
		{Port: 8080, As: 80, Proto: "tcp", Global: true, Hosts: hosts},
		{Port: 9000, As: 9000, Proto: "tcp", Global: true}, // not HTTP: no route
	}}}}
}

func TestIngressTableOwnsHostnamesPerLease(t *testing.T) {
	tab := newIngressTable("Ingress.Example.NET")
	a := runtime.LeaseRef{Order: markettypes.OrderID{Owner: "a", Dseq: 1, Gseq: 1, Oseq: 1}}
	b := runtime.LeaseRef{Order: markettypes.OrderID{Owner: "b", Dseq: 1, Gseq: 1, Oseq: 1}}
	if err := tab.set("a", a, ingressGroup("web", "shop.example.com")); err != nil {
		t.Fatal(err)
	}
	hosts := tab.hosts("a")
	if len(hosts) != 2 || !strings.HasSuffix(hosts[0], ".ingress.example.net") && !strings.HasSuffix(hosts[1], ".ingress.example.net") {
		t.Fatalf("hosts %v", hosts)
	}
	if r, ok := tab.route("shop.example.com"); !ok || r.port != 8080 || r.service != "web" {
		t.Fatalf("route %+v %v", r, ok)
	}
	// Another lease cannot take the name, and nothing of its is routed.
	if _, err := tab.claim([]leaseGroup{{"b", b, ingressGroup("web", "b.example.com")}, {"c", b, ingressGroup("web", "shop.example.com")}}); err == nil {
		t.Fatal("claim let a second lease take a name")
	}
	if _, ok := tab.route("b.example.com"); ok {
		t.Fatal("a refused claim routed part of its names")
	}
	if err := tab.set("b", b, ingressGroup("web", "shop.example.com", "b.example.com")); err == nil || !strings.Contains(err.Error(), "another lease") {
		t.Fatalf("set: %v", err)
	}
	if _, ok := tab.route("b.example.com"); ok {
		t.Fatal("a refused set routed part of its names")
	}
	// The same lease may change its names; the old ones go.
	if err := tab.set("a", a, ingressGroup("web", "new.example.com")); err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.route("shop.example.com"); ok {
		t.Fatal("a dropped name still routes")
	}
	tab.remove("a")
	if len(tab.byHost) != 0 || len(tab.byLease) != 0 {
		t.Fatalf("after remove: %v %v", tab.byHost, tab.byLease)
	}
	if ingressTransport(sdl.HTTPOptions{ReadTimeout: 1500}) != ingressTransport(sdl.HTTPOptions{ReadTimeout: 2000}) {
		t.Fatal("read timeouts within one second share a transport")
	}
}

// Manifests arriving together for different deployments cannot both take
// a hostname: exactly one claim wins, and undo gives back what a lease had.
func TestIngressClaimIsOneStep(t *testing.T) {
	tab := newIngressTable("ingress.test")
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("lease-%d", i)
			ref := runtime.LeaseRef{Order: markettypes.OrderID{Owner: key, Dseq: 1, Gseq: 1, Oseq: 1}}
			if _, err := tab.claim([]leaseGroup{{key, ref, ingressGroup("web", "shop.example.com")}}); err == nil {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d leases took shop.example.com", won.Load())
	}
	// Two leases of one manifest asking for one name: refused.
	a := runtime.LeaseRef{Order: markettypes.OrderID{Owner: "x", Dseq: 9, Gseq: 1, Oseq: 1}}
	if _, err := tab.claim([]leaseGroup{{"x1", a, ingressGroup("web", "two.example.com")}, {"x2", a, ingressGroup("api", "two.example.com")}}); err == nil || !strings.Contains(err.Error(), "two leases") {
		t.Fatalf("one name for two leases of a manifest: %v", err)
	}
	// undo puts back the lease's earlier names.
	if err := tab.set("y", a, ingressGroup("web", "old.example.com")); err != nil {
		t.Fatal(err)
	}
	undo, err := tab.claim([]leaseGroup{{"y", a, ingressGroup("web", "new.example.com")}})
	if err != nil {
		t.Fatal(err)
	}
	undo()
	if _, ok := tab.route("old.example.com"); !ok {
		t.Fatal("undo did not restore old.example.com")
	}
	if _, ok := tab.route("new.example.com"); ok {
		t.Fatal("undo left new.example.com routed")
	}
}
