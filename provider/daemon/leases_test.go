package daemon

import (
	"strings"
	"testing"

	"github.com/gpunet/gpunet/sdl"
)

// A manifest must run exactly what the order pays for: the same services,
// replicas and resources. A tenant whose manifest asks for more than its
// order (the hash matches either way: both are the tenant's) is refused.
func TestGroupForChecksTheManifestAgainstTheOrder(t *testing.T) {
	d, err := sdl.Parse([]byte(`version: "2.0"
services:
  web: {image: "nginx:1"}
  job: {image: "j:1", restart: never}
profiles:
  compute:
    small: {resources: {cpu: {units: 0.5}, memory: {size: 256Mi}, storage: {size: 1Gi}}}
  placement:
    dc: {pricing: {small: {denom: ugpn, amount: 100}}}
deployment:
  web: {dc: {profile: small, count: 2}}
  job: {dc: {profile: small, count: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Groups[0]
	if g, err := groupFor(d.Manifest, spec); err != nil || len(g.Services) != 2 {
		t.Fatalf("matching manifest refused: %v", err)
	}
	greedy := d.Manifest
	greedy.Groups = []sdl.ManifestGroup{d.Manifest.Groups[0]}
	greedy.Groups[0].Services = append([]sdl.ManifestService(nil), d.Manifest.Groups[0].Services...)
	greedy.Groups[0].Services[0].Resources.MemoryBytes *= 64
	if _, err := groupFor(greedy, spec); err == nil || !strings.Contains(err.Error(), "other resources") {
		t.Fatalf("greedy manifest: %v", err)
	}
	more := d.Manifest
	more.Groups = []sdl.ManifestGroup{d.Manifest.Groups[0]}
	more.Groups[0].Services = append([]sdl.ManifestService(nil), d.Manifest.Groups[0].Services...)
	more.Groups[0].Services[1].Count = 5
	if _, err := groupFor(more, spec); err == nil {
		t.Fatal("more replicas than ordered accepted")
	}
	spec.Name = "elsewhere"
	if _, err := groupFor(d.Manifest, spec); err == nil || !strings.Contains(err.Error(), `no group "elsewhere"`) {
		t.Fatalf("missing group: %v", err)
	}
}
