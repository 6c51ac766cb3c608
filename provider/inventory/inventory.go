// Package inventory owns what the provider host offers: the GPUs NVML
// detects (or, without a driver, the ones the operator declares, always
// marked as declared) and the CPU, memory and storage offered to tenants.
package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/x/provider/client/providerfile"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Source says where the GPU list came from.
type Source string

const (
	// SourceNVML: detected by NVML on this host.
	SourceNVML Source = "nvml"
	// SourceDeclared: stated in the config; nothing was detected.
	SourceDeclared Source = "declared"
	// SourceNone: no GPUs (CPU-only).
	SourceNone Source = "none"
	// SourceKubernetes: a cluster's nodes, from their allocatable
	// resources and GPU feature discovery's labels.
	SourceKubernetes Source = "kubernetes"
)

// ErrNoDriver means NVML could not load the NVIDIA driver library.
var ErrNoDriver = errors.New("no NVIDIA driver found (NVML library not loadable)")

// ErrNVMLUnavailable means this binary was built without cgo and cannot use NVML.
var ErrNVMLUnavailable = errors.New("NVML unavailable in this build (built with CGO_ENABLED=0)")

// GPU is one device.
type GPU struct {
	Index     int    `json:"index"`
	UUID      string `json:"uuid"`
	Name      string `json:"name"`  // as NVML reports it
	Model     string `json:"model"` // canonical slug used on chain
	MemoryMiB uint64 `json:"memory_mib"`
	Interface string `json:"interface,omitempty"`
	Healthy   bool   `json:"healthy"`
	Health    string `json:"health"` // "ok" or why not
}

// Usage is what a GPU is doing now, as NVML reads it.
type Usage struct {
	UtilizationPercent uint32 `json:"utilization_percent"`
	MemoryUsedMiB      uint64 `json:"memory_used_mib"`
	MemoryTotalMiB     uint64 `json:"memory_total_mib"`
}

// Inventory is everything offered.
type Inventory struct {
	Source        Source `json:"source"`
	DriverVersion string `json:"driver_version,omitempty"`
	// NVMLError says why NVML found nothing, when it did not.
	NVMLError    string `json:"nvml_error,omitempty"`
	GPUs         []GPU  `json:"gpus"`
	CPUMillis    uint64 `json:"cpu_millis"`
	MemoryBytes  uint64 `json:"memory_bytes"`
	StorageBytes uint64 `json:"storage_bytes"`
	// StorageClasses are persistent storage by class, sorted by name.
	StorageClasses []StorageClass `json:"storage_classes,omitempty"`
	// Nodes are a cluster's hosts (kubernetes runtime), each with what it
	// offers: a replica must fit on one node, not on the sum above.
	Nodes []Node `json:"nodes,omitempty"`
}

// Node is one host of a cluster and what it offers.
type Node struct {
	Name         string `json:"name"`
	CPUMillis    uint64 `json:"cpu_millis"`
	MemoryBytes  uint64 `json:"memory_bytes"`
	StorageBytes uint64 `json:"storage_bytes"`
	// GPUs are the UUIDs (of Inventory.GPUs) of the node's devices.
	GPUs []string `json:"gpus,omitempty"`
	// GPUOnly: a taint keeps pods that rent no GPU off the node.
	GPUOnly bool `json:"gpu_only,omitempty"`
}

// StorageClass is one class of persistent storage offered.
type StorageClass struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Bytes uint64 `json:"bytes"`
}

// Discover asks NVML for GPUs, falling back to the config's declared GPUs
// only when NVML finds no driver, and sizes CPU/memory/storage from the config
// (default: the host's).
func Discover(c *config.Config) (Inventory, error) {
	inv := Inventory{}
	gpus, driver, err := DetectNVML()
	switch {
	case err == nil:
		inv.Source, inv.DriverVersion, inv.GPUs = SourceNVML, driver, gpus
		if len(gpus) == 0 {
			inv.Source = SourceNone
		}
	case errors.Is(err, ErrNoDriver) || errors.Is(err, ErrNVMLUnavailable):
		inv.NVMLError = err.Error()
		inv.GPUs = Declared(c.Inventory.Declared)
		inv.Source = SourceNone
		if len(inv.GPUs) > 0 {
			inv.Source = SourceDeclared
		}
	default:
		return inv, fmt.Errorf("NVML: %w", err)
	}
	if inv.CPUMillis, err = cpuMillis(c.Inventory.CPU); err != nil {
		return inv, fmt.Errorf("inventory.cpu: %w", err)
	}
	if inv.MemoryBytes, err = memoryBytes(c.Inventory.Memory); err != nil {
		return inv, fmt.Errorf("inventory.memory: %w", err)
	}
	if c.Inventory.Storage != "" {
		if inv.StorageBytes, err = providerfile.ParseSize(c.Inventory.Storage); err != nil {
			return inv, fmt.Errorf("inventory.storage: %w", err)
		}
	}
	if inv.StorageClasses, err = ConfiguredClasses(c); err != nil {
		return inv, err
	}
	return inv, nil
}

// ConfiguredClasses are the persistent storage classes the config
// offers, sorted by name.
func ConfiguredClasses(c *config.Config) ([]StorageClass, error) {
	var out []StorageClass
	for _, n := range c.StorageClassNames() {
		sc := c.Inventory.StorageClasses[n]
		b, err := providerfile.ParseSize(sc.Size)
		if err != nil {
			return nil, fmt.Errorf("inventory.storage_classes.%s.size: %w", n, err)
		}
		out = append(out, StorageClass{Name: n, Path: sc.Path, Bytes: b})
	}
	return out, nil
}

// DeclaredUUIDPrefix starts the placeholder UUID of a declared GPU; the
// runtime attaches no device for it.
const DeclaredUUIDPrefix = "declared-"

// Declared turns declared GPU kinds into devices with "declared-" UUIDs.
func Declared(ds []config.DeclaredGPU) []GPU {
	var out []GPU
	for _, d := range ds {
		slug := providertypes.CanonicalGPUModel(d.Model)
		for i := uint32(0); i < d.Count; i++ {
			out = append(out, GPU{
				Index:     len(out),
				UUID:      fmt.Sprintf("%s%s-%d", DeclaredUUIDPrefix, slug, len(out)),
				Name:      d.Model,
				Model:     slug,
				MemoryMiB: d.MemoryMiB,
				Interface: strings.ToLower(d.Interface),
				Healthy:   true,
				Health:    "declared (not detected)",
			})
		}
	}
	return out
}

// FromNVMLName fills Model from an NVML product name.
func FromNVMLName(name string) string { return providertypes.CanonicalGPUModel(name) }

// Healthy returns the GPUs that may be leased.
func (inv Inventory) Healthy() []GPU {
	var out []GPU
	for _, g := range inv.GPUs {
		if g.Healthy {
			out = append(out, g)
		}
	}
	return out
}

// OnChainGPUs groups healthy GPUs by (model, memory, interface) for registration.
func (inv Inventory) OnChainGPUs() []providertypes.GPU {
	var out []providertypes.GPU
	for _, g := range inv.Healthy() {
		found := false
		for i := range out {
			if out[i].Model == g.Model && out[i].MemoryMib == g.MemoryMiB && out[i].Interface == g.Interface {
				out[i].Count++
				found = true
				break
			}
		}
		if !found {
			out = append(out, providertypes.GPU{Vendor: "nvidia", Model: g.Model, MemoryMib: g.MemoryMiB, Interface: g.Interface, Count: 1})
		}
	}
	return out
}

// Print writes the inventory for a person.
func (inv Inventory) Print(w io.Writer) {
	switch inv.Source {
	case SourceNVML:
		fmt.Fprintf(w, "GPUs detected by NVML (driver %s):\n", inv.DriverVersion)
	case SourceDeclared:
		fmt.Fprintf(w, "NVML: %s\nGPUs DECLARED in the config (not detected; for CPU-only or test operation):\n", inv.NVMLError)
	case SourceKubernetes:
		fmt.Fprintf(w, "Kubernetes cluster, %d schedulable nodes:\n", len(inv.Nodes))
		for _, n := range inv.Nodes {
			fmt.Fprintf(w, "  %s: %.3g cores, memory %s, storage %s, %d GPUs\n", n.Name, float64(n.CPUMillis)/1000, humanBytes(n.MemoryBytes), humanBytes(n.StorageBytes), len(n.GPUs))
		}
	default:
		if inv.NVMLError != "" {
			fmt.Fprintf(w, "NVML: %s\n", inv.NVMLError)
		}
		fmt.Fprintln(w, "No GPUs: this host offers CPU only.")
	}
	if len(inv.GPUs) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  INDEX\tMODEL\tNAME\tUUID\tMEMORY\tHEALTH")
		for _, g := range inv.GPUs {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d MiB\t%s\n", g.Index, g.Model, g.Name, g.UUID, g.MemoryMiB, g.Health)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "CPU: %.3g cores  memory: %s  storage: %s\n", float64(inv.CPUMillis)/1000, humanBytes(inv.MemoryBytes), humanBytes(inv.StorageBytes))
}

func humanBytes(b uint64) string {
	const gi = 1 << 30
	if b >= gi {
		return fmt.Sprintf("%.1f GiB", float64(b)/gi)
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

func cpuMillis(s string) (uint64, error) {
	if s != "" {
		return providerfile.ParseCPU(s)
	}
	return uint64(runtime.NumCPU()) * 1000, nil
}

func memoryBytes(s string) (uint64, error) {
	if s != "" {
		return providerfile.ParseSize(s)
	}
	return hostMemory()
}

// hostMemory reads MemTotal from /proc/meminfo.
func hostMemory() (uint64, error) {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("cannot read host memory (%v); set inventory.memory", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("cannot parse MemTotal %q; set inventory.memory", rest)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo; set inventory.memory")
}

// ChainStorageClasses are the classes as the provider registry records them.
func (inv Inventory) ChainStorageClasses() []providertypes.StorageClass {
	var out []providertypes.StorageClass
	for _, c := range inv.StorageClasses {
		out = append(out, providertypes.StorageClass{Name: c.Name, Bytes: c.Bytes})
	}
	return out
}

// InterfaceFromName reads a GPU's form factor from its NVML name: "PCIe"
// or an NVL board (H100 NVL is a PCIe card) is pcie, "SXM" is sxm, and a
// data-center part named by its HBM memory alone ("H100 80GB HBM3",
// "H200") is the SXM module; anything else is unknown ("").
func InterfaceFromName(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "pcie") || strings.Contains(n, " nvl"):
		return "pcie"
	case strings.Contains(n, "sxm"):
		return "sxm"
	case strings.Contains(n, "hbm") || strings.Contains(n, "h200") || strings.Contains(n, "b200") || strings.Contains(n, "gh200"):
		return "sxm"
	}
	return ""
}
