// Package sdl reads Akash SDL v2.0/2.1 files, as gpunet tenants bring them,
// and turns them into deployment groups for the chain and a manifest for the
// winning provider. Two documented differences from Akash: prices are per
// hour, and in ugpn. Features gpunet does not offer yet are refused by name.
package sdl

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	sdkmath "cosmossdk.io/math"

	"github.com/gpunet/gpunet/internal/coin"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// Denom is the only pricing denom gpunet accepts.
const Denom = coin.Denom

// Limits that keep a file's groups within what the chain accepts, and its
// sums far from overflowing.
const (
	MaxCount       = markettypes.MaxReplicas
	MaxCPUMillis   = 1 << 20 // 1,048 cores
	MaxMemoryBytes = 16 << 40
	MaxGPUUnits    = 64
	MaxGPUModels   = markettypes.MaxGPUModels
	// MaxServicesPerPlacement is how many services one placement may hold:
	// each becomes a resource unit of the placement's group.
	MaxServicesPerPlacement = markettypes.MaxResourceUnits
	MaxPlacementName        = markettypes.MaxGroupNameLength
	MaxVolumes              = 16
	MaxVolumeBytes          = 256 << 40 // per volume
	MaxStorageBytes         = 1 << 50   // all volumes of a replica: 1Pi
	// MaxPriceAmount is the most a replica may be priced per hour, in ugpn
	// (10^12 GPN): far larger prices could overflow a decimal when summed.
	MaxPriceAmount = 1_000_000_000_000_000_000
)

// Error is a problem in an SDL file, with the line it was found on.
type Error struct {
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Msg)
}

// File is a parsed SDL.
type File struct {
	Version    string                          `yaml:"version"`
	Services   map[string]Service              `yaml:"services"`
	Profiles   Profiles                        `yaml:"profiles"`
	Deployment map[string]map[string]Placement `yaml:"deployment"`
	Endpoints  map[string]any                  `yaml:"endpoints"`
	Include    any                             `yaml:"include"`
	root       *yaml.Node
	warnings   []string
}

// Service is one container image and how to run it.
type Service struct {
	Image   string         `yaml:"image"`
	Command []string       `yaml:"command"`
	Args    []string       `yaml:"args"`
	Env     []string       `yaml:"env"`
	Expose  []Expose       `yaml:"expose"`
	Restart string         `yaml:"restart"`
	Params  *ServiceParams `yaml:"params"`
	// DependsOn (compose's spelling) and Dependencies (Akash's) both say
	// which services start first.
	DependsOn    Dependencies   `yaml:"depends_on"`
	Dependencies Dependencies   `yaml:"dependencies"`
	Credentials  map[string]any `yaml:"credentials"`
}

// Dependencies are service names, each written as a name or, as Akash
// writes them, as {service: name}.
type Dependencies []string

// UnmarshalYAML reads either spelling of each entry.
func (d *Dependencies) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: dependencies are a list of service names", n.Line)
	}
	for _, e := range n.Content {
		switch e.Kind {
		case yaml.ScalarNode:
			*d = append(*d, e.Value)
		case yaml.MappingNode:
			var m struct {
				Service string `yaml:"service"`
			}
			if err := e.Decode(&m); err != nil || m.Service == "" || len(e.Content) != 2 {
				return fmt.Errorf("line %d: a dependency is a service name or {service: name}", e.Line)
			}
			*d = append(*d, m.Service)
		default:
			return fmt.Errorf("line %d: a dependency is a service name or {service: name}", e.Line)
		}
	}
	return nil
}

// ServiceParams are a service's mounts (and Akash's permission and TEE
// settings, which gpunet refuses by name).
type ServiceParams struct {
	Storage     map[string]StorageParam `yaml:"storage"`
	Permissions any                     `yaml:"permissions"`
	TEE         any                     `yaml:"tee"`
}

// StorageParam mounts a volume of the service's compute profile.
type StorageParam struct {
	Mount    string `yaml:"mount"`
	ReadOnly bool   `yaml:"readOnly"`
}

// Expose is a port a service listens on.
type Expose struct {
	Port        uint32         `yaml:"port"`
	As          uint32         `yaml:"as"`
	Proto       string         `yaml:"proto"`
	To          []ExposeTarget `yaml:"to"`
	Accept      []string       `yaml:"accept"`
	HTTPOptions map[string]any `yaml:"http_options"`
}

// ExposeTarget says who may reach a port.
type ExposeTarget struct {
	Global  bool   `yaml:"global"`
	Service string `yaml:"service"`
	IP      string `yaml:"ip"`
}

// Profiles are the compute and placement profiles.
type Profiles struct {
	Compute   map[string]Compute          `yaml:"compute"`
	Placement map[string]PlacementProfile `yaml:"placement"`
}

// Compute is a resource shape.
type Compute struct {
	Resources Resources `yaml:"resources"`
}

// Resources of one replica.
type Resources struct {
	CPU struct {
		Units      yaml.Node      `yaml:"units"`
		Attributes map[string]any `yaml:"attributes"`
	} `yaml:"cpu"`
	Memory struct {
		Size yaml.Node `yaml:"size"`
	} `yaml:"memory"`
	Storage yaml.Node `yaml:"storage"`
	GPU     *struct {
		Units      yaml.Node `yaml:"units"`
		Attributes struct {
			Vendor map[string][]GPUModel `yaml:"vendor"`
		} `yaml:"attributes"`
	} `yaml:"gpu"`
}

// GPUModel is one acceptable GPU.
type GPUModel struct {
	Model     string `yaml:"model"`
	RAM       string `yaml:"ram"`
	Interface string `yaml:"interface"`
}

// PlacementProfile is where a group may run and what it pays.
type PlacementProfile struct {
	Attributes map[string]string `yaml:"attributes"`
	SignedBy   *SignedBy         `yaml:"signedBy"`
	Pricing    map[string]Price  `yaml:"pricing"`
	// MinReliability (a gpunet extension) is the lowest provider
	// reliability score, 0 to 1, the placement accepts.
	MinReliability yaml.Node `yaml:"minReliability"`
}

// SignedBy names auditors (x/audit) who must have signed a provider's
// placement attributes: every one of allOf, at least one of anyOf.
type SignedBy struct {
	AllOf []string `yaml:"allOf"`
	AnyOf []string `yaml:"anyOf"`
}

// Price is a per-hour price per replica.
type Price struct {
	Denom  string    `yaml:"denom"`
	Amount yaml.Node `yaml:"amount"`
}

// Placement deploys a service in a placement with a compute profile.
type Placement struct {
	Profile string `yaml:"profile"`
	Count   uint32 `yaml:"count"`
}

// Load reads and parses an SDL file.
func Load(path string) (*Deployment, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse parses SDL content into groups and a manifest.
func Parse(raw []byte) (*Deployment, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("the file is empty")
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		// Akash ignores keys it does not know below the top level (compose
		// leftovers such as volumes or environment, typos): so does gpunet,
		// saying so with the line, so the file deploys as it does there.
		unknown, ok := unknownKeys(err)
		if !ok {
			return nil, fmt.Errorf("%w", err)
		}
		f = File{}
		if err := yaml.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("%w", err)
		}
		f.warnings = unknown
	}
	f.root = root.Content[0]
	return f.build()
}

// unknownFieldRe is how the YAML decoder names a key its struct lacks.
var unknownFieldRe = regexp.MustCompile(`^line (\d+): field (.+) not found in type sdl\.(\w+)$`)

// keyPlaces names the parts of a file for a warning about a key there.
var keyPlaces = map[string]string{
	"Service": "a service", "ServiceParams": "a service's params", "StorageParam": "a mount",
	"Expose": "an expose", "ExposeTarget": "an expose target", "Profiles": "profiles",
	"Compute": "a compute profile", "Resources": "resources", "GPUModel": "a GPU model",
	"PlacementProfile": "a placement profile", "SignedBy": "signedBy", "Price": "a price",
	"Placement": "a deployment",
}

// unknownKeys reads a strict decoding error and returns a warning per
// unknown key, when that is all it holds and none is at the top level
// (Akash refuses unknown top-level keys too).
func unknownKeys(err error) ([]string, bool) {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return nil, false
	}
	var out []string
	for _, msg := range te.Errors {
		m := unknownFieldRe.FindStringSubmatch(msg)
		if m == nil {
			return nil, false
		}
		place, ok := keyPlaces[m[3]]
		if !ok {
			return nil, false
		}
		line, _ := strconv.Atoi(m[1])
		out = append(out, (&Error{Line: line, Field: m[2], Msg: "not an SDL key of " + place + "; ignored, as Akash ignores it"}).Error())
	}
	return out, true
}

// line finds the line of a path in the file: mapping keys, and list
// elements written as "[i]". It stops at the deepest part it finds.
func (f *File) line(path ...string) int {
	n := f.root
	best := 0
	for _, key := range path {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					best = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, ok := index(key); ok && i < len(n.Content) {
				next = n.Content[i]
				best = next.Line
			}
		}
		n = next
	}
	return best
}

// index reads a path element "[i]".
func index(key string) (int, bool) {
	s, found := strings.CutPrefix(key, "[")
	if !found {
		return 0, false
	}
	s, found = strings.CutSuffix(s, "]")
	if !found {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil && i >= 0
}

// at is the path element of list element i.
func at(i int) string { return fmt.Sprintf("[%d]", i) }

// warn records a warning at the line of path.
func (f *File) warn(msg string, path ...string) {
	f.warnings = append(f.warnings, f.fail(msg, path...).Error())
}

func (f *File) fail(msg string, path ...string) error {
	var field strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			field.WriteByte('.')
		}
		field.WriteString(p)
	}
	return &Error{Line: f.line(path...), Field: field.String(), Msg: msg}
}

// sortedKeys returns a map's keys in order, so output never depends on Go's
// map iteration.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parseCPU reads cpu units: cores as a number ("0.5", 2) or millis ("500m").
func parseCPU(n yaml.Node) (uint64, error) {
	s := strings.TrimSpace(n.Value)
	if s == "" {
		return 0, errors.New("missing")
	}
	if m, ok := strings.CutSuffix(s, "m"); ok {
		return scaled(m, 1)
	}
	return scaled(s, 1000)
}

// sizeUnits are the suffixes of a byte size, matched without regard to
// case as Akash's files write them ("16Gi", "16gi", "8G", "8g"): binary
// with an i, decimal without.
var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40}, {"pi", 1 << 50}, {"ei", 1 << 60},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12}, {"p", 1e15}, {"e", 1e18},
}

// parseSize reads a byte size: "512Mi", "512mi", "1.5G", "2GB", "1GiB",
// "1024".
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("missing")
	}
	lower := strings.TrimSuffix(strings.ToLower(s), "b") // "GB", "GiB", "512b"
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(lower, u.suffix); ok {
			return scaled(n, u.mult)
		}
	}
	return scaled(lower, 1)
}

func scaled(num string, mult uint64) (uint64, error) {
	num = strings.TrimSpace(num)
	// Checked before parsing: big.Rat would expand an exponent like 1e999999999.
	if len(num) > 40 || strings.ContainsAny(num, "eE/") {
		return 0, fmt.Errorf("%q is not a plain decimal number", num)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	if r.Sign() <= 0 {
		return 0, fmt.Errorf("%q must be positive", num)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).SetUint64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of base units", num)
	}
	if !r.Num().IsUint64() || r.Num().Uint64() > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", num)
	}
	return r.Num().Uint64(), nil
}

// parsePrice reads a per-hour price amount as a decimal.
func parsePrice(n yaml.Node) (sdkmath.LegacyDec, error) {
	s := strings.TrimSpace(n.Value)
	if s == "" {
		return sdkmath.LegacyDec{}, errors.New("missing")
	}
	d, err := sdkmath.LegacyNewDecFromStr(s)
	if err != nil {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q is not a decimal amount", s)
	}
	if !d.IsPositive() {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q must be positive", s)
	}
	if d.GT(sdkmath.LegacyNewDec(MaxPriceAmount)) {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q is more than %d%s per hour", s, int64(MaxPriceAmount), Denom)
	}
	return d, nil
}
