package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/gpunet/gpunet/provider/runtime"
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

// After a crash, a pending lease is started on chain only when every
// replica ran: a deploy cut off halfway is run again instead of charging the
// tenant for containers that never started.
func TestReplicasCompleteAfterACrash(t *testing.T) {
	g := sdl.ManifestGroup{Services: []sdl.ManifestService{{Name: "web", Count: 2}, {Name: "job", Count: 1}}}
	started := time.Unix(1_700_000_000, 0)
	running := func(svc string, i int) runtime.ReplicaStatus {
		return runtime.ReplicaStatus{Service: svc, Replica: i, State: "running", StartedAt: started}
	}
	full := func() map[string][]runtime.ReplicaStatus {
		return map[string][]runtime.ReplicaStatus{
			"web": {running("web", 0), running("web", 1)},
			"job": {running("job", 0)},
		}
	}
	cases := []struct {
		name   string
		mutate func(map[string][]runtime.ReplicaStatus)
		want   bool
	}{
		{"all running", func(map[string][]runtime.ReplicaStatus) {}, true},
		{"job already finished", func(s map[string][]runtime.ReplicaStatus) {
			s["job"][0].State, s["job"][0].FinishedAt = "exited", started.Add(time.Second)
		}, true},
		{"network only", func(s map[string][]runtime.ReplicaStatus) { clear(s) }, false},
		{"a replica missing", func(s map[string][]runtime.ReplicaStatus) { s["web"] = s["web"][:1] }, false},
		{"a service missing", func(s map[string][]runtime.ReplicaStatus) { delete(s, "job") }, false},
		{"created, never started", func(s map[string][]runtime.ReplicaStatus) {
			s["web"][1].State, s["web"][1].StartedAt = "created", time.Time{}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := runtime.LeaseStatus{Services: full()}
			c.mutate(st.Services)
			if got := replicasComplete(g, st); got != c.want {
				t.Fatalf("replicasComplete = %v, want %v", got, c.want)
			}
		})
	}
}
