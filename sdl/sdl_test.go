package sdl

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
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
		{"signedBy", "    anywhere:\n      pricing", "    anywhere:\n      signedBy: {anyOf: [x]}\n      pricing", "signed provider attributes are not offered"},
		{"persistent storage", "storage: {size: 1Gi}", "storage: [{size: 1Gi, attributes: {persistent: true, class: beta2}}]", "persistent storage classes) are not offered"},
		{"unknown field", "image: nginx:1.25", "image: nginx:1.25\n    colour: red", "field colour not found"},
		{"missing image", "image: nginx:1.25", "command: [x]", "image is required"},
		{"bad restart", "image: nginx:1.25", "image: nginx:1.25\n    restart: sometimes", `"sometimes": use always`},
		{"fraction of a millicore", "units: 0.5", "units: 0.0001", "not a whole number"},
		{"malformed yaml", "profiles:", "profiles: [", "not valid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(cpuOnly, c.from, c.to, 1)
			if src == cpuOnly {
				t.Fatalf("test edit %q not found", c.from)
			}
			_, err := Parse([]byte(src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
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

func FuzzParse(f *testing.F) {
	f.Add([]byte(cpuOnly))
	raw, _ := os.ReadFile("testdata/gpu-job.yaml")
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		if _, err := d.Manifest.Hash(); err != nil {
			t.Fatalf("parsed file has no hash: %v", err)
		}
		if len(d.Groups) == 0 {
			t.Fatal("parsed file has no groups")
		}
	})
}
