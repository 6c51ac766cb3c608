package inventory

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gpunet/gpunet/provider/config"
)

// NVML product names become the slugs used on chain and in SDL files.
func TestNVMLNamesToSlugs(t *testing.T) {
	for name, want := range map[string]string{
		"NVIDIA H100 80GB HBM3":          "h100",
		"NVIDIA H200":                    "h200",
		"NVIDIA A100-SXM4-80GB":          "a100",
		"NVIDIA A100-PCIE-40GB":          "a100",
		"NVIDIA GeForce RTX 4090":        "rtx4090",
		"NVIDIA RTX 6000 Ada Generation": "rtx6000ada",
		"NVIDIA RTX A6000":               "a6000",
		"Tesla T4":                       "t4",
		"NVIDIA L40S":                    "l40s",
	} {
		if got := FromNVMLName(name); got != want {
			t.Errorf("%q → %q, want %q", name, got, want)
		}
	}
}

// Without a driver (this machine, CI) NVML says so, and the declared GPUs
// are offered, marked as declared; without declared GPUs the host is CPU-only.
func TestDiscoverWithoutDriver(t *testing.T) {
	gpus, driver, nvmlErr := DetectNVML()
	c, err := config.Parse([]byte("chain: {id: c}\nkey: {name: k}\nprovider: {host_uri: 'https://h:8443'}\npricing: {cpu_core_per_hour: '10'}\n" +
		"inventory: {cpu: '4', memory: 8Gi, storage: 100Gi, declared: [{model: NVIDIA H100 80GB HBM3, memory_mib: 81559, count: 2}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Discover(c)
	if err != nil {
		t.Fatal(err)
	}
	if nvmlErr == nil {
		// A host with a driver: NVML's devices win and nothing declared is used.
		if inv.Source != SourceNVML && len(gpus) > 0 || inv.DriverVersion != driver || len(inv.GPUs) != len(gpus) {
			t.Fatalf("with a driver: %+v", inv)
		}
		for _, g := range inv.GPUs {
			if g.UUID == "" || strings.HasPrefix(g.UUID, DeclaredUUIDPrefix) || g.Model == "" {
				t.Fatalf("detected GPU %+v", g)
			}
		}
		return
	}
	if inv.Source != SourceDeclared || inv.NVMLError == "" || len(inv.GPUs) != 2 || inv.GPUs[1].UUID != "declared-h100-1" || inv.CPUMillis != 4000 || inv.MemoryBytes != 8<<30 {
		t.Fatalf("%+v", inv)
	}
	if g := inv.OnChainGPUs(); len(g) != 1 || g[0].Model != "h100" || g[0].Count != 2 {
		t.Fatalf("on chain %+v", g)
	}
	var out bytes.Buffer
	inv.Print(&out)
	for _, want := range []string{nvmlErr.Error(), "DECLARED", "declared-h100-0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printout lacks %q:\n%s", want, out.String())
		}
	}

	c.Inventory.Declared = nil
	inv, err = Discover(c)
	if err != nil || inv.Source != SourceNone || len(inv.GPUs) != 0 {
		t.Fatalf("cpu-only: %+v %v", inv, err)
	}
}

func TestInterfaceFromNVMLNames(t *testing.T) {
	for name, want := range map[string]string{
		"NVIDIA H100 80GB HBM3": "sxm", "NVIDIA H100 PCIe": "pcie", "NVIDIA H100 NVL": "pcie",
		"NVIDIA A100-SXM4-80GB": "sxm", "NVIDIA A100-PCIE-40GB": "pcie", "NVIDIA H200": "sxm",
		"NVIDIA GeForce RTX 4090": "", "Tesla T4": "",
	} {
		if got := InterfaceFromName(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
