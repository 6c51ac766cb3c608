package sdl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	markettypes "github.com/gpunet/gpunet/x/market/types"
)

const cpuOnly = `
version: "2.0"
services:
  web:
    image: nginx:1.25
    expose:
      - port: 80
        as: 8080
        to:
          - global: true
profiles:
  compute:
    small:
      resources:
        cpu: {units: 0.5}
        memory: {size: 512Mi}
        storage: {size: 1Gi}
  placement:
    anywhere:
      pricing:
        small: {denom: ugpn, amount: 1000}
deployment:
  web:
    anywhere: {profile: small, count: 2}
`

// gpuBase is a one-GPU job for the GPU refusals.
const gpuBase = `
version: "2.0"
services:
  train:
    image: trainer:1
    restart: never
profiles:
  compute:
    gpu1:
      resources:
        cpu: {units: 4}
        memory: {size: 16Gi}
        storage: {size: 20Gi}
        gpu:
          units: 1
          attributes:
            vendor:
              nvidia:
                - model: h100
                  ram: 80Gi
  placement:
    dc:
      pricing:
        gpu1: {denom: ugpn, amount: 2500000}
deployment:
  train:
    dc: {profile: gpu1, count: 1}
`

func TestParseCPUOnly(t *testing.T) {
	d, err := Parse([]byte(cpuOnly))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Groups) != 1 {
		t.Fatalf("%d groups", len(d.Groups))
	}
	g := d.Groups[0]
	r := g.Resources[0]
	if g.Name != "anywhere" || r.Count != 2 || r.CpuMillis != 500 || r.MemoryBytes != 512<<20 || r.StorageBytes != 1<<30 || r.Gpu.Units != 0 {
		t.Errorf("group = %+v", g)
	}
	if g.MaxPrice.String() != "2000.000000000000000000ugpn" {
		t.Errorf("max price %s, want 2 replicas × 1000 per hour", g.MaxPrice)
	}
	e := d.Manifest.Groups[0].Services[0].Expose[0]
	if e.Port != 80 || e.As != 8080 || e.Proto != "tcp" || !e.Global {
		t.Errorf("expose = %+v", e)
	}
	if d.Manifest.Groups[0].Services[0].Restart != "always" {
		t.Error("a service without restart should default to always")
	}
}

func TestParseGPUJob(t *testing.T) {
	d, err := Load("testdata/gpu-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := d.Groups[0].Resources[0]
	if r.Gpu.Units != 1 || strings.Join(r.Gpu.Models, ",") != "h100,a100" || r.Gpu.MinMemoryMib != 40*1024 {
		t.Errorf("gpu = %+v, want 1 unit of h100 or a100 with at least 40Gi", r.Gpu)
	}
	if d.Groups[0].Requirements[0].Key != "region" {
		t.Errorf("requirements = %+v", d.Groups[0].Requirements)
	}
	svc := d.Manifest.Groups[0].Services[0]
	if svc.Restart != "never" || svc.Env[1] != "WANDB_API_KEY=secret-stays-off-chain" {
		t.Errorf("manifest service = %+v", svc)
	}
	for _, g := range d.Groups {
		if strings.Contains(g.String(), "secret") {
			t.Fatal("an env secret leaked into the on-chain groups")
		}
	}
}

func TestParseSeveralServicesAndPlacements(t *testing.T) {
	src := `
version: "2.1"
services:
  api: {image: api:1, expose: [{port: 8000, to: [{global: true}]}]}
  worker: {image: worker:1}
  db: {image: postgres:16}
profiles:
  compute:
    gpu: {resources: {cpu: {units: 8}, memory: {size: 64Gi}, storage: [{size: 50Gi}, {name: cache, size: 10Gi}], gpu: {units: 4, attributes: {vendor: {nvidia: [{model: "NVIDIA H100 80GB HBM3"}]}}}}}
    cpu: {resources: {cpu: {units: 250m}, memory: {size: 1G}, storage: {size: 5Gi}}}
  placement:
    gpus: {attributes: {tier: datacenter}, pricing: {gpu: {denom: ugpn, amount: 9000000.5}}}
    edge: {pricing: {cpu: {denom: ugpn, amount: 100}}}
deployment:
  api: {edge: {profile: cpu, count: 3}}
  db: {edge: {profile: cpu, count: 1}}
  worker: {gpus: {profile: gpu, count: 2}}
`
	d, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Groups) != 2 || d.Groups[0].Name != "edge" || d.Groups[1].Name != "gpus" {
		t.Fatalf("groups %v, want edge and gpus in name order", d.Groups)
	}
	edge, gpus := d.Groups[0], d.Groups[1]
	if len(edge.Resources) != 2 || edge.MaxPrice.String() != "400.000000000000000000ugpn" {
		t.Errorf("edge = %d units, %s", len(edge.Resources), edge.MaxPrice)
	}
	w := gpus.Resources[0]
	if w.Gpu.Units != 4 || w.Gpu.Models[0] != "h100" || w.StorageBytes != 60<<30 || w.CpuMillis != 8000 || gpus.MaxPrice.String() != "18000001.000000000000000000ugpn" {
		t.Errorf("gpus = %+v, max %s", w, gpus.MaxPrice)
	}
	if edge.Resources[0].CpuMillis != 250 || edge.Resources[0].MemoryBytes != 1e9 {
		t.Errorf("cpu profile = %+v", edge.Resources[0])
	}
}

func TestParseRefusals(t *testing.T) {
	const nines = "999999999999999999999999999999"
	cases := []struct {
		name, from, to, want string
	}{
		{"foreign denom", "denom: ugpn", "denom: uakt", `line 21: profiles.placement.anywhere.pricing.small.denom: denom "uakt": gpunet prices are per hour in ugpn`},
		{"version", `version: "2.0"`, `version: "3.0"`, `line 2: version: "3.0" is not supported`},
		{"unknown compute profile", "profile: small", "profile: large", `compute profile "large" is not defined`},
		{"unknown placement", "anywhere: {profile", "nowhere: {profile", `placement profile "nowhere" is not defined`},
		{"undeployed service name", "  web:\n    anywhere", "  www:\n    anywhere", `service "www" is not defined`},
		{"zero cpu", "units: 0.5", "units: 0", `cpu.units: "0" must be positive`},
		{"negative memory", "size: 512Mi", "size: -512Mi", `memory.size: "-512" must be positive`},
		{"oversized memory", "size: 512Mi", "size: 100Ti", "more than 16Ti"},
		{"zero count", "count: 2", "count: 0", "count must be 1-256"},
		{"leased ip", "- global: true", "- ip: myip", `leased IP "myip" is not offered`},
		{"minReliability above 1", "    anywhere:\n      pricing", "    anywhere:\n      minReliability: 1.5\n      pricing", `minReliability: "1.5" is not a reliability score`},
		{"minReliability not a number", "    anywhere:\n      pricing", "    anywhere:\n      minReliability: [0.9]\n      pricing", `is not a reliability score`},
		{"signedBy", "    anywhere:\n      pricing", "    anywhere:\n      signedBy: {anyOf: [x]}\n      pricing", `signedBy.anyOf[0]: "x" is not an account address`},
		{"persistent storage", "storage: {size: 1Gi}", "storage: [{size: 1Gi}, {name: data, size: 1Gi, attributes: {persistent: true, class: beta2}}]", `persistent volume "data" is not mounted`},
		{"unknown top-level key", `version: "2.0"`, "version: \"2.0\"\ncolour: red", "field colour not found"},
		{"unknown key and a wrong type", "image: nginx:1.25", "image: nginx:1.25\n    colour: red\n    env: {A: b}", "cannot unmarshal"},
		{"missing image", "image: nginx:1.25", "command: [x]", "image is required"},
		{"bad restart", "image: nginx:1.25", "image: nginx:1.25\n    restart: sometimes", `"sometimes": use always`},
		{"fraction of a millicore", "units: 0.5", "units: 0.0001", "not a whole number"},
		{"malformed yaml", "profiles:", "profiles: [", "not valid YAML"},

		// Akash features gpunet does not offer: refused by name, never dropped.
		{"endpoints", "deployment:", "endpoints:\n  myip: {kind: ip}\ndeployment:", "line 22: endpoints: leased IP endpoints are not offered"},
		{"mount of an unknown volume", "image: nginx:1.25", "image: nginx:1.25\n    params: {storage: {data: {mount: /data}}}", `line 6: services.web.params.storage.data: compute profile "small" has no volume named "data"`},
		{"mount of the ephemeral disk", "image: nginx:1.25", "image: nginx:1.25\n    params: {storage: {default: {mount: /data}}}", `volume "default" is the container's own ephemeral disk and cannot be mounted`},
		{"relative mount", "image: nginx:1.25", "image: nginx:1.25\n    params: {storage: {default: {mount: data}}}", `line 6: services.web.params.storage.default.mount: mount "data" must be a clean absolute path`},
		{"mount over root", "image: nginx:1.25", "image: nginx:1.25\n    params: {storage: {default: {mount: /}}}", `mount "/" would replace the container's whole filesystem`},
		{"mount over proc", "image: nginx:1.25", "image: nginx:1.25\n    params: {storage: {default: {mount: /proc/sys}}}", `mount "/proc/sys" is under /proc`},
		{"mount over dev", "image: nginx:1.25", "image: nginx:1.25\n    params: {storage: {default: {mount: /dev}}}", `mount "/dev" is under /dev`},
		{"mount not clean", "image: nginx:1.25", "image: nginx:1.25\n    params: {storage: {default: {mount: /data/}}}", `mount "/data/" must be a clean absolute path`},
		{"unmounted ram volume", "storage: {size: 1Gi}", "storage: [{size: 1Gi}, {name: shm, size: 1Gi, attributes: {class: ram}}]", `ram volume "shm" is not mounted`},
		{"persistent ram volume", "storage: {size: 1Gi}", "storage: [{name: shm, size: 1Gi, attributes: {class: ram, persistent: true}}]", `a ram volume cannot be persistent`},
		{"class without persistence", "storage: {size: 1Gi}", "storage: [{name: d, size: 1Gi, attributes: {class: beta3}}]", `class beta3 is for persistent volumes`},
		{"unknown volume attribute", "storage: {size: 1Gi}", "storage: [{name: d, size: 1Gi, attributes: {speed: fast}}]", `attribute speed is not a volume attribute`},
		{"depends_on an unknown service", "image: nginx:1.25", "image: nginx:1.25\n    depends_on: [db]", `line 6: services.web.depends_on: service "db" is not defined`},
		{"depends on itself", "image: nginx:1.25", "image: nginx:1.25\n    dependencies: [{service: web}]", `line 6: services.web.dependencies: a service cannot depend on itself`},
		{"credentials", "image: nginx:1.25", "image: nginx:1.25\n    credentials: {host: ghcr.io, username: u, password: secret12}", `services.web.credentials.host: the login is for ghcr.io but image nginx:1.25 comes from docker.io`},
		{"credentials without a password", "image: nginx:1.25", "image: ghcr.io/team/app:1\n    credentials: {host: ghcr.io, username: u}", `services.web.credentials.password: password is required`},
		{"permissions", "image: nginx:1.25", "image: nginx:1.25\n    params: {permissions: {read: [logs]}}", `services.web.params.permissions: permissions`},
		{"expose accept", "- port: 80", "- port: 80\n        accept: [example.com]", "line 8: services.web.expose[0].accept: accept hostnames need an HTTP ingress: a global tcp expose as port 80"},
		{"expose http_options", "- port: 80", "- port: 80\n        http_options: {max_body_size: 1048576}", "line 8: services.web.expose[0].http_options: http_options need an HTTP ingress"},
		{"bad hostname", "        as: 8080", "        as: 80\n        accept: [Example.COM]", `services.web.expose[0].accept[0]: "Example.COM" is not a lower-case hostname`},
		{"bad http option", "        as: 8080", "        as: 80\n        http_options: {read_timeout: 90000}", `http_options.read_timeout: read_timeout 90000 is more than 60000`},
		{"unknown http option", "        as: 8080", "        as: 80\n        http_options: {gzip: true}", `gzip is not an http option`},
		{"cpu attributes", "cpu: {units: 0.5}", "cpu: {units: 0.5, attributes: {arch: amd64}}", "line 15: profiles.compute.small.resources.cpu.attributes: CPU attributes (such as arch) are not offered"},
		{"count above the cap", "count: 2", "count: 257", "line 24: deployment.web.anywhere.count: count must be 1-256"},
		{"oversized cpu", "units: 0.5", "units: 2000", "line 15: profiles.compute.small.resources.cpu.units: 2000000 millicores is more than 1048576"},
		{"oversized volume", "storage: {size: 1Gi}", "storage: {size: 300Ti}", "line 17: profiles.compute.small.resources.storage.size: volume 0 size: more than 256Ti"},
		{"oversized storage in total", "storage: {size: 1Gi}", "storage: [{size: 200Ti}, {name: a, size: 200Ti}, {name: b, size: 200Ti}, {name: c, size: 200Ti}, {name: d, size: 200Ti}, {name: e, size: 200Ti}]", "line 17: profiles.compute.small.resources.storage: all volumes together: more than 1Pi"},
		// Before the caps, these three summed past 2^64 and wrapped to a small number.
		{"storage overflow", "storage: {size: 1Gi}", "storage: [{size: 7Ei}, {name: a, size: 7Ei}, {name: b, size: 7Ei}]", "storage[0].size: volume 0 size: more than 256Ti"},
		{"too many volumes", "storage: {size: 1Gi}", "storage: [" + strings.Repeat("{size: 1Gi}, ", 16) + "{size: 1Gi}]", "line 17: profiles.compute.small.resources.storage: 17 volumes, at most 16"},
		{"unknown volume field", "storage: {size: 1Gi}", "storage: {size: 1Gi, class: ssd}", "line 17: profiles.compute.small.resources.storage.class: field class is not a volume field"},
		// Variables the provider's GPU runtime and the loader read.
		{"env widens GPUs", "image: nginx:1.25", "image: nginx:1.25\n    env: [A=1, NVIDIA_VISIBLE_DEVICES=all]", "line 6: services.web.env: env[1]: NVIDIA_VISIBLE_DEVICES is set by the provider"},
		{"env driver capabilities", "image: nginx:1.25", "image: nginx:1.25\n    env: [nvidia_driver_capabilities=all]", "nvidia_driver_capabilities is set by the provider"},
		{"env preload", "image: nginx:1.25", "image: nginx:1.25\n    env: [LD_PRELOAD=/tmp/x.so]", "env[0]: LD_PRELOAD steers the dynamic loader"},
		{"oversized price", "amount: 1000", "amount: " + nines, "line 21: profiles.placement.anywhere.pricing.small.amount: \"" + nines + "\" is more than 1000000000000000000ugpn per hour"},
	}
	// The same kind of edits, on a GPU job.
	gpuCases := []struct {
		name, from, to, want string
	}{
		{"gpu interface", "ram: 80Gi", "ram: 80Gi\n                  interface: nvlink", `line 21: profiles.compute.gpu1.resources.gpu.attributes.vendor.nvidia[0].interface: interface "nvlink" must be sxm or pcie`},
		{"gpu vendor", "nvidia:", "amd:", `line 18: profiles.compute.gpu1.resources.gpu.attributes.vendor.amd: vendor "amd": gpunet providers offer nvidia GPUs`},
		{"gpu model", "model: h100", "model: NVIDIA", `line 19: profiles.compute.gpu1.resources.gpu.attributes.vendor.nvidia[0].model: "NVIDIA" is not a GPU model`},
		{"gpu model missing", "model: h100\n                  ram", "ram", `line 19: profiles.compute.gpu1.resources.gpu.attributes.vendor.nvidia[0].model: "" is not a GPU model`},
		{"too many gpu models", "- model: h100", "- model: h100\n" + strings.Repeat("                - model: a100\n", 8), "line 18: profiles.compute.gpu1.resources.gpu.attributes.vendor.nvidia: 9 models, at most 8"},
		{"gpu ram", "ram: 80Gi", "ram: lots", `line 20: profiles.compute.gpu1.resources.gpu.attributes.vendor.nvidia[0].ram: "lots" is not a number`},
		{"zero gpu units", "units: 1", "units: 0", "line 15: profiles.compute.gpu1.resources.gpu.units: GPU models given but units is 0"},
		{"negative gpu units", "units: 1", "units: -1", `line 15: profiles.compute.gpu1.resources.gpu.units: "-1" must be a whole number 0-64`},
		{"fractional gpu units", "units: 1", "units: 0.5", `gpu.units: "0.5" must be a whole number 0-64`},
		{"oversized gpu units", "units: 1", "units: 65", `line 15: profiles.compute.gpu1.resources.gpu.units: "65" must be a whole number 0-64`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { refused(t, cpuOnly, c.from, c.to, c.want) })
	}
	for _, c := range gpuCases {
		t.Run(c.name, func(t *testing.T) { refused(t, gpuBase, c.from, c.to, c.want) })
	}
}

// refused edits base and checks that the result is refused with want.
func refused(t *testing.T, base, from, to, want string) {
	t.Helper()
	src := strings.Replace(base, from, to, 1)
	if src == base {
		t.Fatalf("test edit %q not found", from)
	}
	_, err := Parse([]byte(src))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

func TestErrorsCarryLines(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(cpuOnly, "denom: ugpn", "denom: uakt", 1)))
	var e *Error
	if !errors.As(err, &e) || e.Line == 0 {
		t.Fatalf("want an *Error with a line, got %#v", err)
	}
}

func TestManifestHashIsStable(t *testing.T) {
	d1, err := Load("testdata/gpu-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The same content with keys in another order.
	raw, _ := os.ReadFile("testdata/gpu-job.yaml")
	reordered := strings.Replace(string(raw), "    image: gpunet/sample-job:local\n    command: [\"/job\"]\n", "    command: [\"/job\"]\n    image: gpunet/sample-job:local\n", 1)
	if reordered == string(raw) {
		t.Fatal("reorder edit not applied")
	}
	d2, err := Parse([]byte(reordered))
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := d1.Manifest.HashHex()
	h2, _ := d2.Manifest.HashHex()
	if h1 != h2 {
		t.Errorf("hash depends on key order: %s vs %s", h1, h2)
	}
	c, _ := d1.Manifest.CanonicalJSON()
	if bytes.Contains(c, []byte(" ")) && !bytes.Contains(c, []byte("secret-stays")) || bytes.Contains(c, []byte("\n")) {
		t.Errorf("canonical JSON has insignificant whitespace: %s", c)
	}
	if !bytes.HasPrefix(c, []byte(`{"groups":[{"name":"dc","services":[{"args":`)) {
		t.Errorf("canonical JSON keys not sorted: %.80s", c)
	}
	changed := strings.Replace(string(raw), "STEPS=100", "STEPS=101", 1)
	d3, err := Parse([]byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	if h3, _ := d3.Manifest.HashHex(); h3 == h1 {
		t.Error("different manifests hash the same")
	}
}

// Hashes recorded when they were defined: the hash on chain must never
// change for the same file. legacy is what deployments named before group
// digests, recorded before the canonical encoding stopped going through
// float64; providers still check whole manifests against it.
func TestManifestHashGolden(t *testing.T) {
	cases := []struct {
		name, src, want, legacy string
	}{
		{"cpuOnly", cpuOnly, "7bc28c0f73ffd03dfcddf2be10b8af40de3b5122d7266b2bf1489006785f2ca2", "b84a414b405690e6e80ca1879010790a34c5f0afbac921139f538faf86056af6"},
		{"testdata/gpu-job.yaml", "", "97a089e3c072a9b2490b736bc62b8eb6858a8e4501644963417fab4c55a79e60", "b3d7b3a9019a62fb60cdbbf1509b5bcb71320fd03e2fd6c17a6e29a44be3310f"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := []byte(c.src)
			if c.src == "" {
				var err error
				if src, err = os.ReadFile(c.name); err != nil {
					t.Fatal(err)
				}
			}
			for run := 0; run < 3; run++ { // and the same on every run
				d, err := Parse(src)
				if err != nil {
					t.Fatal(err)
				}
				if h, err := d.Manifest.HashHex(); err != nil || h != c.want {
					t.Fatalf("run %d: hash %s (%v), want %s", run, h, err, c.want)
				}
				if h, err := d.Manifest.LegacyHash(); err != nil || hex.EncodeToString(h) != c.legacy {
					t.Fatalf("run %d: legacy hash %x (%v), want %s", run, h, err, c.legacy)
				}
			}
		})
	}
	d, err := Parse([]byte(cpuOnly))
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Manifest.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"groups":[{"name":"anywhere","services":[{"args":[],"command":[],"count":2,"env":[],"expose":[{"as":8080,"global":true,"port":80,"proto":"tcp"}],"image":"nginx:1.25","name":"web","resources":{"cpu_millis":500,"gpu_memory_mib":0,"gpu_models":[],"gpu_units":0,"memory_bytes":536870912,"storage_bytes":1073741824},"restart":"always"}]}],"version":"2.0"}`
	if string(c) != want {
		t.Errorf("canonical JSON\n%s\nwant\n%s", c, want)
	}
}

func TestCanonicalJSONKeepsLargeIntegers(t *testing.T) {
	m := Manifest{Version: "2.0", Groups: []ManifestGroup{{Name: "g", Services: []ManifestService{{
		Name: "s", Resources: ManifestResource{StorageBytes: 1<<53 + 1, MemoryBytes: math.MaxUint64},
	}}}}}
	c, err := m.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"storage_bytes":9007199254740993`, `"memory_bytes":18446744073709551615`} {
		if !strings.Contains(string(c), want) {
			t.Errorf("canonical JSON lost precision: want %s in %s", want, c)
		}
	}
	var back Manifest
	if err := json.Unmarshal(c, &back); err != nil {
		t.Fatal(err)
	}
	if r := back.Groups[0].Services[0].Resources; r.StorageBytes != 1<<53+1 || r.MemoryBytes != math.MaxUint64 {
		t.Errorf("decoded %+v", r)
	}
}

// The same deployment written with services, profiles and placements in
// another order (not only fields) has the same manifest and hash.
func TestManifestHashIgnoresOrder(t *testing.T) {
	a := `
version: "2.0"
services:
  api: {image: api:1, env: [A=1], expose: [{port: 8000, to: [{global: true}]}]}
  worker: {image: worker:1, restart: never}
profiles:
  compute:
    big: {resources: {cpu: {units: 8}, memory: {size: 64Gi}, storage: {size: 50Gi}, gpu: {units: 2, attributes: {vendor: {nvidia: [{model: h100}, {model: a100}]}}}}}
    small: {resources: {cpu: {units: 1}, memory: {size: 1Gi}, storage: {size: 5Gi}}}
  placement:
    edge: {pricing: {small: {denom: ugpn, amount: 100}}}
    gpus: {attributes: {tier: dc, region: eu}, pricing: {big: {denom: ugpn, amount: 9000}}}
deployment:
  api: {edge: {profile: small, count: 2}}
  worker: {gpus: {profile: big, count: 1}}
`
	b := `
deployment:
  worker: {gpus: {count: 1, profile: big}}
  api: {edge: {count: 2, profile: small}}
profiles:
  placement:
    gpus: {pricing: {big: {amount: 9000, denom: ugpn}}, attributes: {region: eu, tier: dc}}
    edge: {pricing: {small: {amount: 100, denom: ugpn}}}
  compute:
    small: {resources: {storage: {size: 5Gi}, memory: {size: 1Gi}, cpu: {units: 1}}}
    big: {resources: {gpu: {attributes: {vendor: {nvidia: [{model: h100}, {model: a100}]}}, units: 2}, cpu: {units: 8}, storage: {size: 50Gi}, memory: {size: 64Gi}}}
services:
  worker: {restart: never, image: worker:1}
  api: {expose: [{to: [{global: true}], port: 8000}], env: [A=1], image: api:1}
version: "2.0"
`
	hash := func(src string) (string, string) {
		t.Helper()
		d, err := Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		h, err := d.Manifest.HashHex()
		if err != nil {
			t.Fatal(err)
		}
		return h, fmt.Sprint(d.Groups)
	}
	ha, ga := hash(a)
	hb, gb := hash(b)
	if ha != hb {
		t.Errorf("hash depends on the order of services and profiles: %s vs %s", ha, hb)
	}
	if ga != gb {
		t.Errorf("groups depend on order:\n%s\n%s", ga, gb)
	}
}

func TestUnknownPlacementNamesItsReference(t *testing.T) {
	src := strings.Replace(cpuOnly, "anywhere: {profile", "nowhere: {profile", 1)
	_, err := Parse([]byte(src))
	// Line 24 is "    nowhere: {profile: small, count: 2}", not the deployment key.
	want := `line 24: deployment.web.nowhere: placement profile "nowhere" is not defined under profiles.placement`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(cpuOnly))
	f.Add([]byte(gpuBase))
	raw, _ := os.ReadFile("testdata/gpu-job.yaml")
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		if len(d.Groups) == 0 {
			t.Fatal("parsed file has no groups")
		}
		if err := markettypes.ValidateGroups(d.Groups, math.MaxUint32, Denom); err != nil {
			t.Fatalf("the chain would refuse groups the SDL accepted: %v", err)
		}
		c, err := d.Manifest.CanonicalJSON()
		if err != nil {
			t.Fatalf("parsed file has no canonical JSON: %v", err)
		}
		h, err := d.Manifest.Hash()
		if err != nil {
			t.Fatalf("parsed file has no hash: %v", err)
		}
		if legacy, err := d.Manifest.LegacyHash(); err != nil || sha256.Sum256(c) != [32]byte(legacy) {
			t.Fatalf("legacy hash is not the SHA-256 of the canonical JSON (%v)", err)
		}
		// Every redaction for a provider has the manifest's hash, and
		// names nothing of a withheld group but its name and digest.
		for keep := range 1 << min(len(d.Manifest.Groups), 4) {
			r, err := d.Manifest.For(func(i int) bool { return keep&(1<<i) != 0 })
			if err != nil {
				t.Fatal(err)
			}
			if hr, err := r.Hash(); err != nil || !bytes.Equal(h, hr) || !r.MatchesHash(h) || r.CheckWithheld() != nil {
				t.Fatalf("redaction %b hashes %x (%v), want %x", keep, hr, err, h)
			}
			for i, g := range r.Groups {
				if withheld := keep&(1<<i) == 0; withheld != (g.Withheld != "") || (withheld && len(g.Services) != 0) {
					t.Fatalf("redaction %b, group %d: %+v", keep, i, g)
				}
			}
		}
		// What a provider receives decodes to the same manifest: encoding
		// it again gives the same bytes, so the same hash.
		var back Manifest
		if err := json.Unmarshal(c, &back); err != nil {
			t.Fatalf("canonical JSON does not decode: %v\n%s", err, c)
		}
		c2, err := back.CanonicalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, c2) {
			t.Fatalf("canonical JSON changes after a round trip:\n%s\n%s", c, c2)
		}
		if h2, err := back.Hash(); err != nil || !bytes.Equal(h, h2) {
			t.Fatalf("hash changes after a round trip: %v", err)
		}
	})
}

// A service listed under deployment with no placement was accepted as a
// file with no groups (found by FuzzParse; the input is kept in
// testdata/fuzz): it is refused by name.
func TestDeploymentWithoutPlacementIsRefused(t *testing.T) {
	_, err := Parse([]byte("version: \"2.0\"\nservices:\n  train:\n    image: x\ndeployment:\n  train:\n"))
	if err == nil || !strings.Contains(err.Error(), `service "train" has no placement`) {
		t.Fatalf("got %v, want a refusal naming the service without placement", err)
	}
}

// twoGroups runs an API in one placement and a worker with a secret in
// another: two groups, which two providers may win.
const twoGroups = `
version: "2.0"
services:
  api: {image: api:1, env: [A=1], expose: [{port: 8000, to: [{global: true}]}]}
  worker: {image: registry.example/team/worker:1, env: [TOKEN=s3cret-worker-token], restart: never}
profiles:
  compute:
    small: {resources: {cpu: {units: 1}, memory: {size: 1Gi}, storage: {size: 5Gi}}}
  placement:
    edge: {pricing: {small: {denom: ugpn, amount: 100}}}
    core: {pricing: {small: {denom: ugpn, amount: 200}}}
deployment:
  api: {edge: {profile: small, count: 1}}
  worker: {core: {profile: small, count: 1}}
`

// A provider sent one group of two reads nothing of the other but its
// name and digest, and checks the same on-chain hash; a digest changed,
// a withheld group dressed with services, or a whole manifest changed in
// the withheld group do not match; registry logins never count; and a
// whole manifest still matches a legacy hash, a redacted one never.
func TestRedactedManifestMatchesTheDeployment(t *testing.T) {
	d, err := Parse([]byte(twoGroups))
	if err != nil {
		t.Fatal(err)
	}
	m := d.Manifest
	if len(m.Groups) != 2 {
		t.Fatalf("%d groups", len(m.Groups))
	}
	onChain, err := m.Hash()
	if err != nil {
		t.Fatal(err)
	}
	api := slices.IndexFunc(m.Groups, func(g ManifestGroup) bool { return g.Services[0].Name == "api" })
	forAPI, err := m.For(func(i int) bool { return i == api })
	if err != nil {
		t.Fatal(err)
	}
	raw, err := forAPI.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "s3cret-worker-token") || strings.Contains(string(raw), "registry.example") {
		t.Fatalf("the API's provider reads the worker's group:\n%s", raw)
	}
	var got Manifest
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if !got.MatchesHash(onChain) || got.CheckWithheld() != nil {
		t.Fatal("the redacted manifest does not match the deployment")
	}
	if _, err := got.LegacyHash(); err == nil {
		t.Error("a redacted manifest has a legacy hash")
	}

	other := 1 - api
	tampered := got
	tampered.Groups = slices.Clone(got.Groups)
	tampered.Groups[other].Withheld = strings.Repeat("0", 64)
	if tampered.MatchesHash(onChain) {
		t.Error("a changed digest still matches")
	}
	dressed := got
	dressed.Groups = slices.Clone(got.Groups)
	dressed.Groups[other].Services = m.Groups[other].Services
	if dressed.CheckWithheld() == nil {
		t.Error("a withheld group with services passes")
	}
	for _, bad := range []string{"xyz", strings.Repeat("A", 64), strings.Repeat("0", 62)} {
		dressed.Groups[other] = ManifestGroup{Name: m.Groups[other].Name, Withheld: bad}
		if dressed.CheckWithheld() == nil {
			t.Errorf("withheld %q passes", bad)
		}
	}
	changed := m
	changed.Groups = slices.Clone(m.Groups)
	changed.Groups[other].Services = slices.Clone(m.Groups[other].Services)
	changed.Groups[other].Services[0].Env = []string{"TOKEN=another"}
	if changed.MatchesHash(onChain) {
		t.Error("a manifest with the other group changed still matches")
	}

	withLogin := m
	withLogin.Groups = slices.Clone(m.Groups)
	withLogin.Groups[other].Services = slices.Clone(m.Groups[other].Services)
	withLogin.Groups[other].Services[0].Credentials = &Credentials{Host: "registry.example", Username: "u", Password: "p"}
	if h, err := withLogin.Hash(); err != nil || !bytes.Equal(h, onChain) {
		t.Error("a registry login changes the hash")
	}

	legacy, err := m.LegacyHash()
	if err != nil {
		t.Fatal(err)
	}
	if !m.MatchesHash(legacy) || got.MatchesHash(legacy) {
		t.Error("legacy hash: a whole manifest must match it, a redacted one not")
	}
}
