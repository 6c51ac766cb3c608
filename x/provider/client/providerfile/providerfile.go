// Package providerfile is the provider.yaml format a provider describes
// itself with, read by x/provider's commands and by the provider daemon
// (which does not link the commands).
package providerfile

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gpunet/gpunet/x/provider/types"
)

// ProviderFile is the provider.yaml a provider describes itself with.
type ProviderFile struct {
	HostURI       string            `yaml:"host_uri"`
	TLSCertSHA256 string            `yaml:"tls_cert_sha256"`
	Attributes    map[string]string `yaml:"attributes"`
	GPUs          []GPUEntry        `yaml:"gpus"`
	Capacity      CapacityEntry     `yaml:"capacity"`
	Info          InfoEntry         `yaml:"info"`
}

// GPUEntry is one GPU kind; model may be an NVML name or a slug.
type GPUEntry struct {
	Vendor    string `yaml:"vendor"`
	Model     string `yaml:"model"`
	MemoryMiB uint64 `yaml:"memory_mib"`
	Interface string `yaml:"interface"`
	Count     uint32 `yaml:"count"`
}

// CapacityEntry is CPU in cores ("64", "0.5") and sizes with units ("512Gi").
type CapacityEntry struct {
	CPU     string `yaml:"cpu"`
	Memory  string `yaml:"memory"`
	Storage string `yaml:"storage"`
	// StorageClasses are persistent storage by class: {beta2: 500Gi}.
	StorageClasses map[string]string `yaml:"storage_classes"`
}

// InfoEntry is contact information.
type InfoEntry struct {
	Email   string `yaml:"email"`
	Website string `yaml:"website"`
}

// LoadDescription reads a provider.yaml and returns the on-chain description,
// validated, with GPU names turned into canonical slugs.
func LoadDescription(path string) (types.Description, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return types.Description{}, err
	}
	d, err := ParseDescription(raw)
	if err != nil {
		return types.Description{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// ParseDescription parses provider.yaml content.
func ParseDescription(raw []byte) (types.Description, error) {
	var f ProviderFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return types.Description{}, err
	}
	d := types.Description{
		HostURI:       f.HostURI,
		TLSCertSHA256: strings.ToLower(f.TLSCertSHA256),
		Info:          types.Info{Email: f.Info.Email, Website: f.Info.Website},
	}
	keys := make([]string, 0, len(f.Attributes))
	for k := range f.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.Attributes = append(d.Attributes, types.Attribute{Key: k, Value: f.Attributes[k]})
	}
	for _, g := range f.GPUs {
		d.GPUs = append(d.GPUs, types.GPU{
			Vendor:    strings.ToLower(g.Vendor),
			Model:     types.CanonicalGPUModel(g.Model),
			MemoryMib: g.MemoryMiB,
			Interface: strings.ToLower(g.Interface),
			Count:     g.Count,
		})
	}
	var err error
	if d.Capacity.CpuMillis, err = ParseCPU(f.Capacity.CPU); err != nil {
		return types.Description{}, fmt.Errorf("capacity.cpu: %w", err)
	}
	if d.Capacity.MemoryBytes, err = ParseSize(f.Capacity.Memory); err != nil {
		return types.Description{}, fmt.Errorf("capacity.memory: %w", err)
	}
	names := make([]string, 0, len(f.Capacity.StorageClasses))
	for n := range f.Capacity.StorageClasses {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := ParseSize(f.Capacity.StorageClasses[n])
		if err != nil {
			return types.Description{}, fmt.Errorf("capacity.storage_classes.%s: %w", n, err)
		}
		d.Capacity.StorageClasses = append(d.Capacity.StorageClasses, types.StorageClass{Name: n, Bytes: b})
	}
	if f.Capacity.Storage != "" {
		if d.Capacity.StorageBytes, err = ParseSize(f.Capacity.Storage); err != nil {
			return types.Description{}, fmt.Errorf("capacity.storage: %w", err)
		}
	}
	if err := d.Validate(); err != nil {
		return types.Description{}, err
	}
	return d, nil
}

// ParseCPU turns cores ("64", "0.5", "250m") into millicores.
func ParseCPU(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("missing (cores, e.g. 16 or 0.5)")
	}
	if m, ok := strings.CutSuffix(s, "m"); ok {
		return parseScaled(m, 1)
	}
	return parseScaled(s, 1000)
}

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15},
}

// ParseSize turns "512Gi", "1.5T" or "1024" (bytes) into bytes.
func ParseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("missing (a size such as 64Gi)")
	}
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			return parseScaled(n, u.mult)
		}
	}
	return parseScaled(s, 1)
}

// parseScaled multiplies a non-negative decimal by mult exactly, refusing
// fractions of the base unit and overflow.
func parseScaled(num string, mult uint64) (uint64, error) {
	// Checked before parsing: big.Rat would expand an exponent like 1e999999999.
	if len(num) > 40 || strings.ContainsAny(num, "eE/") {
		return 0, fmt.Errorf("%q is not a plain decimal number", num)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("%q is not a non-negative number", num)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).SetUint64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of base units", num)
	}
	v := r.Num()
	if !v.IsUint64() || v.Uint64() > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", num)
	}
	return v.Uint64(), nil
}
