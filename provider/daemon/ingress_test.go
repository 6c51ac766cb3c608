package daemon

import (
	"strings"
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
	if err := tab.check("b", b, ingressGroup("web", "shop.example.com")); err == nil {
		t.Fatal("check let a second lease claim a name")
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
