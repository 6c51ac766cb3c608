package runtime

import (
	markettypes "github.com/gpunet/gpunet/x/market/types"

	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/gpunet/gpunet/sdl"
)

var testLease = LeaseRef{Order: markettypes.OrderID{Owner: "gpunet1owner", Dseq: 42, Gseq: 1, Oseq: 2}, Provider: "gpunet1prov"}

func TestLeaseRefStringAndLabelsRoundTrip(t *testing.T) {
	if got, want := leaseName(testLease), "gpunet1owner/42/1/2"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	labels := replicaLabels("gpunet1prov", testLease, "dc", "web", 3)
	want := map[string]string{
		"gpunet.provider": "gpunet1prov", "gpunet.owner": "gpunet1owner", "gpunet.dseq": "42",
		"gpunet.gseq": "1", "gpunet.oseq": "2", "gpunet.lease": "gpunet1owner/42/1/2",
		"gpunet.group": "dc", "gpunet.service": "web", "gpunet.replica": "3",
	}
	if !reflect.DeepEqual(labels, want) {
		t.Fatalf("labels = %v, want %v", labels, want)
	}
	back, ok := leaseFromLabels(labels)
	if !ok || back != testLease {
		t.Fatalf("leaseFromLabels = %+v, %v; want %+v", back, ok, testLease)
	}
	labels[LabelDSeq] = "x"
	if _, ok := leaseFromLabels(labels); ok {
		t.Fatal("malformed dseq label accepted")
	}
	labels[LabelDSeq] = "43" // disagrees with gpunet.lease
	if _, ok := leaseFromLabels(labels); ok {
		t.Fatal("labels disagreeing with gpunet.lease accepted")
	}
}

func TestNamesAreDockerSafeAndDistinct(t *testing.T) {
	for in, want := range map[string]string{
		"web":       "web",
		"Web_UI.v2": "web_ui.v2",
		"my svc/x":  "my-svc-x",
		"ünïcode":   "-n-code",
		"":          "svc",
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	name := containerName("gpunet1prov", testLease, "My Web", 1)
	if !strings.HasPrefix(name, "gpunet-") || !strings.HasSuffix(name, "-my-web-1") {
		t.Errorf("containerName = %q, want gpunet-<hash>-my-web-1", name)
	}
	if other := containerName("gpunet1other", testLease, "My Web", 1); other == name {
		t.Error("two providers got the same container name for the same lease")
	}
	if networkName("gpunet1prov", testLease) == networkName("gpunet1prov", LeaseRef{Order: markettypes.OrderID{Owner: "gpunet1owner", Dseq: 43, Gseq: 1, Oseq: 2}}) {
		t.Error("two leases got the same network name")
	}
}

func TestIsJob(t *testing.T) {
	job := sdl.ManifestService{Name: "a", Restart: "never"}
	svc := sdl.ManifestService{Name: "b", Restart: "always"}
	for _, tc := range []struct {
		services []sdl.ManifestService
		want     bool
	}{
		{nil, false},
		{[]sdl.ManifestService{job}, true},
		{[]sdl.ManifestService{job, job}, true},
		{[]sdl.ManifestService{job, svc}, false},
		{[]sdl.ManifestService{svc}, false},
	} {
		if got := IsJob(sdl.ManifestGroup{Services: tc.services}); got != tc.want {
			t.Errorf("IsJob(%v) = %v, want %v", tc.services, got, tc.want)
		}
	}
}

func TestAssignGPUsHandsOutUUIDsInOrder(t *testing.T) {
	services := []sdl.ManifestService{
		{Name: "train", Count: 2, Resources: sdl.ManifestResource{GPUUnits: 2}},
		{Name: "api", Count: 1},
		{Name: "eval", Count: 1, Resources: sdl.ManifestResource{GPUUnits: 1}},
	}
	uuids := []string{"GPU-0", "GPU-1", "GPU-2", "GPU-3", "GPU-4", "GPU-5"}
	got, err := assignGPUs(services, uuids)
	if err != nil {
		t.Fatal(err)
	}
	want := [][][]string{
		{{"GPU-0", "GPU-1"}, {"GPU-2", "GPU-3"}},
		{nil},
		{{"GPU-4"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("assignGPUs = %v, want %v", got, want)
	}

	_, err = assignGPUs(services, uuids[:4])
	if !errors.Is(err, ErrGPUUnavailable) || !strings.Contains(err.Error(), "needs 5 GPUs and 4 were assigned") {
		t.Fatalf("too few GPUs: err = %v", err)
	}
}

func TestHostConfigConfinesTheReplica(t *testing.T) {
	set := specSettings{Provider: "gpunet1prov", PublishHost: "127.0.0.1", PidsLimit: 256, Network: "gpunet-abc"}
	svc := sdl.ManifestService{
		Name: "web", Count: 1, Restart: "always",
		Resources: sdl.ManifestResource{CPUMillis: 1500, MemoryBytes: 512 << 20, StorageBytes: 1 << 30},
		Expose: []sdl.ManifestExpose{{Port: 8080, Proto: "tcp", Global: true}, {Port: 53, Proto: "UDP", Global: true},
			{Port: 9000, Global: true}, {Port: 5432}},
	}
	hc := hostConfig(svc, nil, set)

	if hc.NanoCPUs != 1_500_000_000 {
		t.Errorf("NanoCPUs = %d, want 1.5 CPUs", hc.NanoCPUs)
	}
	if hc.Memory != 512<<20 || hc.MemorySwap != hc.Memory {
		t.Errorf("Memory = %d, MemorySwap = %d; want both 512MiB (no swap)", hc.Memory, hc.MemorySwap)
	}
	if hc.PidsLimit == nil || *hc.PidsLimit != 256 {
		t.Errorf("PidsLimit = %v, want 256", hc.PidsLimit)
	}
	if hc.Privileged || hc.ReadonlyRootfs {
		t.Errorf("Privileged = %v, ReadonlyRootfs = %v; want false, false", hc.Privileged, hc.ReadonlyRootfs)
	}
	if !reflect.DeepEqual([]string(hc.CapDrop), []string{"ALL"}) || len(hc.CapAdd) != 0 {
		t.Errorf("CapDrop = %v, CapAdd = %v; want [ALL], none", hc.CapDrop, hc.CapAdd)
	}
	if !reflect.DeepEqual(hc.SecurityOpt, []string{"no-new-privileges"}) {
		t.Errorf("SecurityOpt = %v", hc.SecurityOpt)
	}
	if hc.NetworkMode != "gpunet-abc" {
		t.Errorf("NetworkMode = %q", hc.NetworkMode)
	}
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "10m" || hc.LogConfig.Config["max-file"] != "3" {
		t.Errorf("LogConfig = %+v, want rotated json-file", hc.LogConfig)
	}
	// Only global exposes are published; 5432 (to other services of the
	// lease only) stays on the lease network.
	wantPorts := nat.PortMap{
		"8080/tcp": {{HostIP: "127.0.0.1"}},
		"53/udp":   {{HostIP: "127.0.0.1"}},
		"9000/tcp": {{HostIP: "127.0.0.1"}},
	}
	if !reflect.DeepEqual(hc.PortBindings, wantPorts) {
		t.Errorf("PortBindings = %v, want %v (random host ports on the publish host)", hc.PortBindings, wantPorts)
	}
	if len(hc.DeviceRequests) != 0 {
		t.Errorf("a replica without GPUs got device requests %v", hc.DeviceRequests)
	}
	if hc.RestartPolicy != (container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}) {
		t.Errorf("service RestartPolicy = %+v, want on-failure x5", hc.RestartPolicy)
	}

	svc.Restart = "never"
	if rp := hostConfig(svc, nil, set).RestartPolicy; rp != (container.RestartPolicy{Name: "no"}) {
		t.Errorf("job RestartPolicy = %+v, want no", rp)
	}
}

func TestHostConfigRequestsGPUsByUUID(t *testing.T) {
	svc := sdl.ManifestService{Name: "train", Count: 1, Restart: "never", Resources: sdl.ManifestResource{GPUUnits: 2}}
	hc := hostConfig(svc, []string{"GPU-a", "GPU-b"}, specSettings{Network: "n"})
	want := []container.DeviceRequest{{Driver: "nvidia", DeviceIDs: []string{"GPU-a", "GPU-b"}, Capabilities: [][]string{{"gpu"}}}}
	if !reflect.DeepEqual(hc.DeviceRequests, want) {
		t.Fatalf("DeviceRequests = %+v, want %+v", hc.DeviceRequests, want)
	}
	if hc.DeviceRequests[0].Count != 0 {
		t.Error("Count must stay 0: the request names devices, it does not ask for 'any N'")
	}
}

func TestContainerConfigRunsCommandWithArgs(t *testing.T) {
	labels := map[string]string{"k": "v"}
	svc := sdl.ManifestService{
		Name: "web", Image: "example/web:1", Command: []string{"/bin/server"}, Args: []string{"--port", "80"},
		Env: []string{"A=1", "B=two"}, Expose: []sdl.ManifestExpose{{Port: 80, Proto: "tcp"}},
	}
	cfg := containerConfig(svc, 2, labels)
	if cfg.Image != "example/web:1" || cfg.Hostname != "web-2" {
		t.Errorf("Image = %q, Hostname = %q", cfg.Image, cfg.Hostname)
	}
	if !reflect.DeepEqual([]string(cfg.Entrypoint), svc.Command) || !reflect.DeepEqual([]string(cfg.Cmd), svc.Args) {
		t.Errorf("Entrypoint = %v, Cmd = %v; want Command, Args", cfg.Entrypoint, cfg.Cmd)
	}
	if !reflect.DeepEqual(cfg.Env, svc.Env) || !reflect.DeepEqual(cfg.Labels, labels) {
		t.Errorf("Env = %v, Labels = %v", cfg.Env, cfg.Labels)
	}
	if _, ok := cfg.ExposedPorts["80/tcp"]; !ok || len(cfg.ExposedPorts) != 1 {
		t.Errorf("ExposedPorts = %v", cfg.ExposedPorts)
	}

	svc.Command, svc.Args = nil, nil
	cfg = containerConfig(svc, 0, labels)
	if cfg.Entrypoint != nil || cfg.Cmd != nil {
		t.Errorf("without Command and Args the image's entrypoint must run: Entrypoint = %v, Cmd = %v", cfg.Entrypoint, cfg.Cmd)
	}
}

func TestPlanReplicas(t *testing.T) {
	set := specSettings{Provider: "gpunet1prov", PublishHost: "0.0.0.0", PidsLimit: 512, Network: "gpunet-net"}
	w := Workload{
		Lease: testLease,
		Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{
			{Name: "train", Image: "img", Count: 2, Restart: "never", Resources: sdl.ManifestResource{GPUUnits: 1}},
			{Name: "api", Image: "img", Count: 1, Restart: "always"},
		}},
		GPUs: []string{"GPU-0", "GPU-1"},
	}
	specs, err := planReplicas(w, set)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 {
		t.Fatalf("%d replicas, want 3", len(specs))
	}
	for i, want := range []struct {
		service string
		replica int
		gpus    []string
	}{{"train", 0, []string{"GPU-0"}}, {"train", 1, []string{"GPU-1"}}, {"api", 0, nil}} {
		s := specs[i]
		if s.Service != want.service || s.Replica != want.replica || !reflect.DeepEqual(s.GPUs, want.gpus) {
			t.Errorf("replica %d = %s-%d gpus %v, want %s-%d gpus %v", i, s.Service, s.Replica, s.GPUs, want.service, want.replica, want.gpus)
		}
		if s.Name != containerName(set.Provider, testLease, want.service, want.replica) {
			t.Errorf("replica %d name %q", i, s.Name)
		}
		if s.Config.Labels[LabelService] != want.service || s.Config.Labels[LabelLease] != leaseName(testLease) {
			t.Errorf("replica %d labels %v", i, s.Config.Labels)
		}
		if ep := s.Net.EndpointsConfig["gpunet-net"]; ep == nil || !reflect.DeepEqual(ep.Aliases, []string{want.service}) {
			t.Errorf("replica %d is not on the lease network under its service name: %+v", i, s.Net.EndpointsConfig)
		}
	}

	bad := func(mutate func(*Workload)) error {
		w2 := w
		w2.Group.Services = append([]sdl.ManifestService(nil), w.Group.Services...)
		mutate(&w2)
		_, err := planReplicas(w2, set)
		return err
	}
	for name, tc := range map[string]struct {
		mutate func(*Workload)
		want   string
	}{
		"no services":    {func(w *Workload) { w.Group.Services = nil }, "has no services"},
		"no image":       {func(w *Workload) { w.Group.Services[1].Image = "" }, `service "api" has no image`},
		"count 0":        {func(w *Workload) { w.Group.Services[1].Count = 0 }, `service "api" has count 0`},
		"too few GPUs":   {func(w *Workload) { w.GPUs = w.GPUs[:1] }, "needs 2 GPUs and 1 were assigned"},
		"name collision": {func(w *Workload) { w.Group.Services[1].Name = "TRAIN" }, "map to the same container name"},
		"bad proto": {func(w *Workload) {
			w.Group.Services[1].Expose = []sdl.ManifestExpose{{Port: 80, Proto: "sctp"}}
		}, "protocols are tcp and udp"},
	} {
		err := bad(tc.mutate)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), leaseName(testLease)) {
			t.Errorf("%s: err = %v, want one naming the lease and %q", name, err, tc.want)
		}
	}
}

func TestStartErrorNamesMissingGPUDriver(t *testing.T) {
	engineErr := errors.New(`Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]]`)
	gpuReplica := replicaSpec{Service: "train", Replica: 0, Name: "c", GPUs: []string{"GPU-0"}}
	err := startError(testLease, gpuReplica, engineErr)
	if !errors.Is(err, ErrGPUUnavailable) || !strings.Contains(err.Error(), "NVIDIA container toolkit") || !strings.Contains(err.Error(), `"train"`) {
		t.Errorf("GPU replica: %v", err)
	}
	cpuReplica := replicaSpec{Service: "api", Replica: 0, Name: "c"}
	if err := startError(testLease, cpuReplica, engineErr); errors.Is(err, ErrGPUUnavailable) {
		t.Errorf("a replica without GPUs must not be blamed on GPUs: %v", err)
	}
}

func TestPullStreamError(t *testing.T) {
	ok := `{"status":"Pulling from library/x"}` + "\n" + `{"status":"Status: Downloaded newer image"}`
	if err := pullStreamError(strings.NewReader(ok), 0); err != nil {
		t.Errorf("successful pull: %v", err)
	}
	failed := `{"status":"Pulling"}` + "\n" + `{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`
	if err := pullStreamError(strings.NewReader(failed), 0); err == nil || err.Error() != "manifest unknown" {
		t.Errorf("failed pull: %v", err)
	}
}

func TestLinePrefixerWritesWholePrefixedLines(t *testing.T) {
	var out bytes.Buffer
	var writes int
	counting := writerFunc(func(p []byte) (int, error) { writes++; return out.Write(p) })
	p := &linePrefixer{out: counting, prefix: "[web-0] "}
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n\npartial"} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "[web-0] hello\n[web-0] world\n[web-0] \n[web-0] partial\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if writes != 4 {
		t.Errorf("%d writes, want one per line (4) so concurrent streams never split a line", writes)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestDeclaredGPUsAttachNoDevice(t *testing.T) {
	svc := sdl.ManifestService{Name: "job", Image: "img", Count: 2, Restart: "never",
		Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 64 << 20, GPUUnits: 1}}
	w := Workload{
		Lease: LeaseRef{Order: markettypes.OrderID{Owner: "o", Dseq: 1, Gseq: 1, Oseq: 1}, Provider: "p"},
		Group: sdl.ManifestGroup{Name: "g", Services: []sdl.ManifestService{svc}},
		GPUs:  []string{"GPU-real-0", "declared-h100-1"},
	}
	specs, err := planReplicas(w, specSettings{Provider: "p", Network: "n", PidsLimit: 64})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("%d replicas", len(specs))
	}
	if got := specs[0].Host.DeviceRequests; len(got) != 1 || got[0].DeviceIDs[0] != "GPU-real-0" {
		t.Fatalf("replica 0 device requests %+v", got)
	}
	if got := specs[1].Host.DeviceRequests; len(got) != 0 {
		t.Fatalf("declared GPU got a device request: %+v", got)
	}
	if env := strings.Join(specs[1].Config.Env, " "); !strings.Contains(env, "GPUNET_DECLARED_GPUS=declared-h100-1") {
		t.Fatalf("replica 1 env %q", env)
	}
}

// The provider decides which GPUs a container sees: a replica without GPUs
// gets NVIDIA_VISIBLE_DEVICES=void and the plain runc runtime (no GPU hook
// at all), one with GPUs exactly its UUIDs, whatever the image says; a
// tenant's NVIDIA_* or LD_* variable is refused as the tenant's fault.
func TestGPUVisibilityIsTheProviders(t *testing.T) {
	cpu := sdl.ManifestService{Name: "web", Image: "img", Count: 1, Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 64 << 20}}
	gpu := sdl.ManifestService{Name: "train", Image: "img", Count: 1, Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 64 << 20, GPUUnits: 1}}
	w := Workload{Lease: testLease, Group: sdl.ManifestGroup{Name: "g", Services: []sdl.ManifestService{cpu, gpu}}, GPUs: []string{"GPU-real-0"}}
	specs, err := planReplicas(w, specSettings{Provider: "p", Network: "n", PidsLimit: 64})
	if err != nil {
		t.Fatal(err)
	}
	env := func(i int) string { return strings.Join(specs[i].Config.Env, " ") }
	if !strings.Contains(env(0), "NVIDIA_VISIBLE_DEVICES=void") || specs[0].Host.Runtime != "runc" {
		t.Errorf("CPU replica: env %q runtime %q", env(0), specs[0].Host.Runtime)
	}
	if !strings.Contains(env(1), "NVIDIA_VISIBLE_DEVICES=GPU-real-0") || specs[1].Host.Runtime == "runc" {
		t.Errorf("GPU replica: env %q runtime %q", env(1), specs[1].Host.Runtime)
	}
	for _, bad := range []string{"NVIDIA_VISIBLE_DEVICES=all", "LD_PRELOAD=/x.so", "ld_audit=/x.so"} {
		hostile := cpu
		hostile.Env = []string{bad}
		w.Group.Services = []sdl.ManifestService{hostile}
		if _, err := planReplicas(w, specSettings{Provider: "p", Network: "n", PidsLimit: 64}); !errors.Is(err, ErrWorkloadInvalid) {
			t.Errorf("%s: %v, want ErrWorkloadInvalid", bad, err)
		}
	}
}

// A lease's replicas share its process budget: many replicas cannot
// multiply their way past it, and a lease too large for it is refused.
func TestLeaseProcessBudgetIsShared(t *testing.T) {
	svc := sdl.ManifestService{Name: "web", Image: "img", Count: 16, Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 64 << 20}}
	w := Workload{Lease: testLease, Group: sdl.ManifestGroup{Name: "g", Services: []sdl.ManifestService{svc}}}
	specs, err := planReplicas(w, specSettings{Provider: "p", Network: "n", PidsLimit: 512, LeasePids: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if *s.Host.PidsLimit != 64 {
			t.Fatalf("replica %d may run %d processes, want 1024/16 = 64", s.Replica, *s.Host.PidsLimit)
		}
	}
	one := w
	one.Group.Services = []sdl.ManifestService{{Name: "web", Image: "img", Count: 1, Resources: svc.Resources}}
	if specs, err := planReplicas(one, specSettings{Provider: "p", Network: "n", PidsLimit: 512, LeasePids: 1024}); err != nil || *specs[0].Host.PidsLimit != 512 {
		t.Fatalf("a single replica: %v, want the per-container limit 512", err)
	}
	svc.Count = 200
	w.Group.Services = []sdl.ManifestService{svc}
	if _, err := planReplicas(w, specSettings{Provider: "p", Network: "n", PidsLimit: 512, LeasePids: 1024}); err == nil {
		t.Fatal("200 replicas on a 1024-process budget accepted")
	}
}

// One endless line is passed on in marked pieces of at most MaxLogLine;
// what the prefixer holds never grows past it.
func TestEndlessLogLineIsCut(t *testing.T) {
	var out strings.Builder
	p := &linePrefixer{out: &out, prefix: "[job-0] "}
	chunk := strings.Repeat("x", 4096)
	for range 64 { // 256 KiB, no newline
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
		if len(p.partial) > MaxLogLine {
			t.Fatalf("holding %d bytes of one line", len(p.partial))
		}
	}
	if _, err := p.Write([]byte("end\nnext line\n")); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 18 { // 16 cut pieces, the rest of the line, the next line
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines[:16] {
		if !strings.HasPrefix(l, "[job-0] ") || !strings.HasSuffix(l, "[gpunet: line cut]") || len(l) > len("[job-0] ")+MaxLogLine+len(cutMark) {
			t.Fatalf("cut piece %q…", l[:40])
		}
	}
	if lines[16] != "[job-0] end" || lines[17] != "[job-0] next line" {
		t.Errorf("after the cuts: %q %q", lines[16], lines[17])
	}
}

func TestPullStopsWhenAnnouncedLayersPassTheCap(t *testing.T) {
	stream := `{"status":"Pulling fs layer","id":"a"}
{"status":"Downloading","id":"a","progressDetail":{"current":10,"total":600}}
{"status":"Downloading","id":"a","progressDetail":{"current":20,"total":600}}
{"status":"Downloading","id":"b","progressDetail":{"current":10,"total":500}}
{"status":"Download complete","id":"a"}`
	var tooLarge errTooLarge
	if err := pullStreamError(strings.NewReader(stream), 1000); !errors.As(err, &tooLarge) || tooLarge.total != 1100 {
		t.Fatalf("got %v, want the pull stopped at 1100 announced bytes", err)
	}
	// The same layer announced twice counts once.
	if err := pullStreamError(strings.NewReader(stream), 1200); err != nil {
		t.Fatalf("under the cap: %v", err)
	}
}

func TestRegistryPolicy(t *testing.T) {
	p := RegistryPolicy{Allow: []string{"docker.io", "*.example.com"}, Deny: []string{"bad.example.com"}}
	for ref, want := range map[string]string{
		"ubuntu:22.04":             "",
		"docker.io/library/ubuntu": "",
		"ghcr.io/x/y:1":            "registry ghcr.io; this provider takes images only from docker.io, *.example.com",
		"reg.example.com/team/img": "",
		"bad.example.com/team/img": "registry bad.example.com, which this provider refuses",
		"localhost:5000/img":       "registry localhost:5000",
		"bad ref!":                 "not a valid reference",
	} {
		err := p.Check(ref)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", ref, err, want)
		}
	}
	if err := (RegistryPolicy{}).Check("anything/at:all"); err != nil {
		t.Errorf("empty policy: %v", err)
	}
}

func TestPlanLabelsStorageAndGPUsAndSetsUserAndQuota(t *testing.T) {
	svc := sdl.ManifestService{Name: "train", Image: "img", Count: 1, Resources: sdl.ManifestResource{CPUMillis: 1000, MemoryBytes: 1 << 30, StorageBytes: 5 << 30, GPUUnits: 1}}
	w := Workload{Lease: testLease, Group: sdl.ManifestGroup{Name: "g", Services: []sdl.ManifestService{svc}}, GPUs: []string{"declared-h100-0"}}
	specs, err := planReplicas(w, specSettings{Provider: "p", PidsLimit: 100, Network: "n", User: "65534:65534", Quota: true})
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if s.Config.Labels[LabelStorage] != "5368709120" || s.Config.Labels[LabelGPUs] != "declared-h100-0" {
		t.Errorf("labels %v", s.Config.Labels)
	}
	if s.Config.User != "65534:65534" || s.Host.StorageOpt["size"] != "5368709120" {
		t.Errorf("user %q storage opt %v", s.Config.User, s.Host.StorageOpt)
	}
	specs, _ = planReplicas(w, specSettings{Provider: "p", PidsLimit: 100, Network: "n"})
	if specs[0].Config.User != "" || specs[0].Host.StorageOpt != nil {
		t.Errorf("defaults: user %q storage opt %v", specs[0].Config.User, specs[0].Host.StorageOpt)
	}
}

func TestStartOrderFollowsDependencies(t *testing.T) {
	svcs := []sdl.ManifestService{
		{Name: "api", DependsOn: []string{"cache", "db"}}, {Name: "cache"}, {Name: "db", DependsOn: []string{"cache"}}, {Name: "web", DependsOn: []string{"api"}},
	}
	order, err := startOrder(svcs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range order {
		names = append(names, svcs[i].Name)
	}
	if strings.Join(names, ",") != "cache,db,api,web" {
		t.Fatalf("order %v", names)
	}
	svcs[1].DependsOn = []string{"web"}
	if _, err := startOrder(svcs); !errors.Is(err, ErrWorkloadInvalid) || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("cycle: %v", err)
	}
	if _, err := startOrder([]sdl.ManifestService{{Name: "a", DependsOn: []string{"gone"}}}); !errors.Is(err, ErrWorkloadInvalid) {
		t.Fatalf("unknown dependency: %v", err)
	}
}

func TestRAMVolumesAreSizedMemoryMounts(t *testing.T) {
	svc := sdl.ManifestService{Name: "llm", Image: "img", Count: 1,
		Resources: sdl.ManifestResource{CPUMillis: 1000, MemoryBytes: 3 << 30},
		Mounts: []sdl.ManifestMount{
			{Volume: "shm", Path: "/dev/shm", Class: sdl.ClassRAM, SizeBytes: 1 << 30},
			{Volume: "scratch", Path: "/scratch", Class: sdl.ClassRAM, SizeBytes: 256 << 20},
		}}
	hc := hostConfig(svc, nil, specSettings{PidsLimit: 100, Network: "n"})
	if hc.ShmSize != 1<<30 || hc.Tmpfs["/scratch"] != "size=268435456,mode=1777" || hc.Memory != 3<<30 {
		t.Fatalf("shm %d tmpfs %v memory %d", hc.ShmSize, hc.Tmpfs, hc.Memory)
	}
	svc.Mounts = []sdl.ManifestMount{{Volume: "data", Path: "/data", Class: "beta2", SizeBytes: 1 << 30}}
	if err := checkService(svc); !errors.Is(err, ErrWorkloadInvalid) || !strings.Contains(err.Error(), "neither ram nor persistent") {
		t.Fatalf("a class without persistence: %v", err)
	}
	svc.Mounts = []sdl.ManifestMount{{Volume: "x", Path: "/../etc", Class: sdl.ClassRAM, SizeBytes: 1}}
	if err := checkService(svc); !errors.Is(err, ErrWorkloadInvalid) {
		t.Fatalf("a path with ..: %v", err)
	}
}

func TestNetworkDeadlockProneEngines(t *testing.T) {
	for version, prone := range map[string]bool{
		"20.10.24+dfsg1": true, // Debian 12's docker.io, whose deadlock the bench hit
		"20.10.26":       true,
		"19.03.15":       true,
		"20.10.27":       false,
		"23.0.0":         false,
		"26.1.4":         false,
		"27.0.0-rc.1":    false,
		"dev":            false,
		"":               false,
	} {
		if got := networkDeadlockProne(version); got != prone {
			t.Errorf("networkDeadlockProne(%q) = %v, want %v", version, got, prone)
		}
	}
}
