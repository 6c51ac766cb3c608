package providerfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/gpunet/gpunet/x/provider/types"
)

const sample = `
host_uri: https://gpu1.example.com:8443
tls_cert_sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08
attributes:
  tier: datacenter
  region: eu-west
gpus:
  - vendor: NVIDIA
    model: NVIDIA H100 80GB HBM3
    memory_mib: 81559
    interface: SXM
    count: 8
capacity:
  cpu: "64"
  memory: 512Gi
  storage: 2Ti
info:
  email: ops@example.com
  website: https://example.com
`

func TestParseDescription(t *testing.T) {
	d, err := ParseDescription([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if d.TLSCertSHA256 != strings.ToLower("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08") {
		t.Errorf("cert hash not lower-cased: %s", d.TLSCertSHA256)
	}
	if len(d.Attributes) != 2 || d.Attributes[0].Key != "region" || d.Attributes[1].Key != "tier" {
		t.Errorf("attributes not sorted by key: %+v", d.Attributes)
	}
	want := types.GPU{Vendor: "nvidia", Model: "h100", MemoryMib: 81559, Interface: "sxm", Count: 8}
	if len(d.GPUs) != 1 || d.GPUs[0] != want {
		t.Errorf("gpus = %+v, want %+v", d.GPUs, want)
	}
	if c := d.Capacity; c.CpuMillis != 64_000 || c.MemoryBytes != 512<<30 || c.StorageBytes != 2<<40 || len(c.StorageClasses) != 0 {
		t.Errorf("capacity = %+v", d.Capacity)
	}
}

func TestParseDescriptionErrors(t *testing.T) {
	cases := map[string]struct {
		edit func(string) string
		want string
	}{
		"unknown field":  {func(s string) string { return s + "colour: red\n" }, "field colour not found"},
		"bad memory":     {func(s string) string { return strings.Replace(s, "512Gi", "lots", 1) }, "capacity.memory"},
		"zero gpu count": {func(s string) string { return strings.Replace(s, "count: 8", "count: 0", 1) }, "count must be"},
		"http uri":       {func(s string) string { return strings.Replace(s, "https://gpu1", "http://gpu1", 1) }, "must use https"},
		"negative count": {func(s string) string { return strings.Replace(s, "count: 8", "count: -1", 1) }, "cannot unmarshal"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDescription([]byte(c.edit(sample)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	_, err := ParseDescription([]byte(strings.Replace(sample, "count: 8", "count: 0", 1)))
	if !errors.Is(err, types.ErrInvalidGPU) {
		t.Errorf("validation errors should stay registered errors, got %v", err)
	}
}

func TestParseSizeAndCPU(t *testing.T) {
	sizes := map[string]uint64{"1024": 1024, "64Gi": 64 << 30, "1.5Ki": 1536, "2T": 2e12, "512M": 512e6, "1Ti": 1 << 40}
	for in, want := range sizes {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1Gi", "1.5", "0.1Ki", "1e9", "lots", "99999999999Pi"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	cpus := map[string]uint64{"64": 64_000, "0.5": 500, "250m": 250, "1.25": 1250}
	for in, want := range cpus {
		if got, err := ParseCPU(in); err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0.0001", "-2", "two"} {
		if _, err := ParseCPU(bad); err == nil {
			t.Errorf("ParseCPU(%q) accepted", bad)
		}
	}
}
