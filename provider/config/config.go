// Package config owns gpunet-provider's configuration file: its format, its
// defaults, its validation and the commented template `gpunet-provider init`
// writes.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	sdkmath "cosmossdk.io/math"
	"go.yaml.in/yaml/v3"

	"github.com/gpunet/gpunet/internal/coin"
	"github.com/gpunet/gpunet/provider/egress"
	"github.com/gpunet/gpunet/provider/subnet"
	"github.com/gpunet/gpunet/x/provider/client/providerfile"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Denom is the only denom prices are quoted in.
const Denom = coin.Denom

// Config is the whole provider.yaml of the daemon.
type Config struct {
	Chain     Chain     `yaml:"chain"`
	Key       Key       `yaml:"key"`
	Provider  Provider  `yaml:"provider"`
	Pricing   Pricing   `yaml:"pricing"`
	Inventory Inventory `yaml:"inventory"`
	Runtime   Runtime   `yaml:"runtime"`
	API       API       `yaml:"api"`
	Ingress   Ingress   `yaml:"ingress"`
	DataDir   string    `yaml:"data_dir"`
	// ReconcileInterval is how often the daemon re-reads its orders and
	// leases from gRPC besides following blocks.
	ReconcileInterval Duration `yaml:"reconcile_interval"`
	// WithdrawInterval is how often earnings of running leases are withdrawn.
	WithdrawInterval Duration `yaml:"withdraw_interval"`
	// LogFormat is "text" or "json".
	LogFormat string `yaml:"log_format"`
	// MemoryLimit is the Go runtime's soft memory limit for the daemon
	// ("64Mi"; "0" turns it off). The collector then returns freed memory
	// to the system instead of keeping it for later, which keeps the RSS
	// near what the daemon uses. The GOMEMLIMIT environment variable, when
	// set, wins.
	MemoryLimit string `yaml:"memory_limit"`
	// GCPercent is how far the Go heap may grow past what is live before
	// the collector runs, in percent (the runtime's GOGC; default 50, the
	// runtime's own is 100). Most of what the daemon allocates is garbage
	// of moments (a reconcile's listings of the chain and the engine), so
	// a lower figure keeps its resident memory near what it holds, for a
	// little more CPU. The GOGC environment variable, when set, wins.
	GCPercent int `yaml:"gc_percent"`

	dir string // directory of the file, for relative paths
}

// Chain says where the chain is.
type Chain struct {
	ID   string `yaml:"id"`
	RPC  string `yaml:"rpc"`
	GRPC string `yaml:"grpc"`
	// GRPCTLS reaches GRPC over TLS, checking its certificate against
	// GRPCCAFile (default: the system's roots) for GRPCServerName
	// (default: GRPC's host).
	GRPCTLS        bool    `yaml:"grpc_tls"`
	GRPCCAFile     string  `yaml:"grpc_ca_file"`
	GRPCServerName string  `yaml:"grpc_server_name"`
	GasPrices      string  `yaml:"gas_prices"`
	GasAdjustment  float64 `yaml:"gas_adjustment"`
	// MaxFee is the most one transaction of the daemon may pay, in ugpn.
	MaxFee string `yaml:"max_fee"`
	// InsecureRemoteNode lets RPC and gRPC reach a node on another host
	// without TLS (a private network the operator trusts end to end).
	// Otherwise a node that is not on this host must be reached over
	// TLS: whoever sits on the path could feed the daemon false events
	// and simulations.
	InsecureRemoteNode bool `yaml:"insecure_remote_node"`
}

// Key names the provider's account key.
type Key struct {
	Name           string `yaml:"name"`
	KeyringBackend string `yaml:"keyring_backend"`
	KeyringDir     string `yaml:"keyring_dir"`
	// PassphraseFile holds the file keyring's passphrase for a daemon
	// without a terminal; it must be readable by its owner only.
	PassphraseFile string `yaml:"passphrase_file"`
	// AllowUnsafeKeyring lets the unencrypted test (or memory) keyring hold
	// the key on a chain that is not a local one.
	AllowUnsafeKeyring bool `yaml:"allow_unsafe_keyring"`
}

// Provider is what `register` publishes on chain besides the inventory.
type Provider struct {
	HostURI    string            `yaml:"host_uri"`
	Attributes map[string]string `yaml:"attributes"`
	Email      string            `yaml:"email"`
	Website    string            `yaml:"website"`
	// Bond is staked on first registration, e.g. "500000000ugpn".
	Bond string `yaml:"bond"`
}

// Pricing is what a bid asks, in ugpn per hour.
type Pricing struct {
	// GPUPerHour maps a GPU model slug (or NVML name) to its hourly price;
	// "default" prices any other model.
	GPUPerHour        map[string]string `yaml:"gpu_per_hour"`
	CPUCorePerHour    string            `yaml:"cpu_core_per_hour"`
	MemoryGiBPerHour  string            `yaml:"memory_gib_per_hour"`
	StorageGiBPerHour string            `yaml:"storage_gib_per_hour"`
	// BidDeposit overrides the chain's minimum bid deposit, e.g. "1000000ugpn".
	BidDeposit string `yaml:"bid_deposit"`
}

// Inventory sets what the host offers besides the GPUs NVML finds.
type Inventory struct {
	CPU     string `yaml:"cpu"`     // cores for tenants, e.g. "14"; default: all host cores
	Memory  string `yaml:"memory"`  // e.g. "48Gi"; default: host memory
	Storage string `yaml:"storage"` // e.g. "500Gi"
	// Declared GPUs are used only when NVML finds no driver, for CPU-only
	// or test operation; they are always reported as declared.
	Declared []DeclaredGPU `yaml:"declared"`
	// StorageClasses are persistent storage by class (beta1, beta2,
	// beta3, default): each volume is a size-limited filesystem image kept
	// under Path (the daemon must run as root to mount them).
	StorageClasses map[string]StorageClass `yaml:"storage_classes"`
}

// StorageClass is where one class's volumes live and how much it offers.
type StorageClass struct {
	Path string `yaml:"path"`
	Size string `yaml:"size"`
	// KubernetesClass is the cluster's StorageClass the class's volumes
	// are claimed from (kubernetes runtime; default: the class's name).
	KubernetesClass string `yaml:"kubernetes_class"`
}

// dnsSubdomain reports whether s is a Kubernetes object name (RFC 1123
// subdomain).
func dnsSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}

// KubernetesClasses maps each configured storage class to the cluster's
// StorageClass its volumes are claimed from.
func (c *Config) KubernetesClasses() map[string]string {
	out := map[string]string{}
	for n, sc := range c.Inventory.StorageClasses {
		out[n] = sc.KubernetesClass
		if out[n] == "" {
			out[n] = n
		}
	}
	return out
}

// StorageClassNames are the configured classes, sorted.
func (c *Config) StorageClassNames() []string {
	names := make([]string, 0, len(c.Inventory.StorageClasses))
	for n := range c.Inventory.StorageClasses {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DeclaredGPU is a GPU the operator states exists.
type DeclaredGPU struct {
	Model     string `yaml:"model"`
	MemoryMiB uint64 `yaml:"memory_mib"`
	Interface string `yaml:"interface"`
	Count     uint32 `yaml:"count"`
}

// Runtime configures the container engine.
type Runtime struct {
	// Kind is what leases run on: "docker" (default), one host's Docker
	// engine, or "kubernetes", a cluster through its API (Kubernetes).
	Kind       string     `yaml:"kind"`
	Kubernetes Kubernetes `yaml:"kubernetes"`
	DockerHost string     `yaml:"docker_host"` // default: DOCKER_HOST or the local socket
	// PublishHost is the host IP Docker publishes ports on.
	PublishHost string `yaml:"publish_host"`
	PidsLimit   int64  `yaml:"pids_limit"`
	// LeasePidsLimit is a lease's process budget, shared by its replicas
	// (each gets at most pids_limit); MaxReplicasPerLease caps how many
	// replicas one lease may run (orders with more are not bid on).
	LeasePidsLimit      int64 `yaml:"lease_pids_limit"`
	MaxReplicasPerLease int   `yaml:"max_replicas_per_lease"`
	// MaxVolumesPerLease and MaxVolumes cap the persistent volumes (each a
	// loop device and a mount) of one lease and of the host.
	MaxVolumesPerLease int  `yaml:"max_volumes_per_lease"`
	MaxVolumes         int  `yaml:"max_volumes"`
	PullImages         bool `yaml:"pull_images"`
	// MaxImageSize refuses larger images (a tenant fault: the lease closes
	// as workload_invalid); "0" means no limit.
	MaxImageSize string `yaml:"max_image_size"`
	// LeaseSubnets is the IPv4 pool lease networks get their subnets from;
	// LeaseSubnetBits the prefix length of each (see package subnet).
	LeaseSubnets    string `yaml:"lease_subnets"`
	LeaseSubnetBits int    `yaml:"lease_subnet_bits"`
	// EgressFilter keeps leases off the host's and its LAN's addresses
	// (package egress): "install" (default) writes the iptables rules at
	// start and restores them when they drift, "verify" only checks rules
	// the operator installs and refuses to start without them, "off" runs
	// leases unfiltered. EgressAllow are CIDRs opened anyway.
	EgressFilter string   `yaml:"egress_filter"`
	EgressAllow  []string `yaml:"egress_allow"`
	// ContainerUser ("uid:gid") runs every lease container as that user
	// instead of the image's (often root); empty keeps the image's. Under
	// Docker user-namespace remapping root in a container is not root on
	// the host either way.
	ContainerUser string `yaml:"container_user"`
	// StorageLimit says how each replica's writable layer is held to its
	// storage size: "auto" (default: "quota" when the engine can, else
	// "watch"), "quota" (the engine's size option, overlay2 on xfs with
	// pquota: writes past it fail with "no space"), "watch" (the daemon
	// measures layers every storage_check_interval and stops a replica
	// past its size) or "off" (no storage is offered).
	StorageLimit         string   `yaml:"storage_limit"`
	StorageCheckInterval Duration `yaml:"storage_check_interval"`
	// CrashLoopRestarts failed exits of a service replica within
	// CrashLoopWindow close its lease as workload_failed (-1: never).
	CrashLoopRestarts int      `yaml:"crash_loop_restarts"`
	CrashLoopWindow   Duration `yaml:"crash_loop_window"`
	// ParallelDeploys is how many leases' deploys, updates and adoption
	// checks run against the Docker engine at once (default 16); the others
	// wait their turn, so manifests arriving by the hundred queue up instead
	// of holding as many requests at the engine and goroutines in the
	// daemon. Image pulls do not wait for a turn. On Kubernetes, whose
	// rollouts wait on the cluster, deploys are not bounded.
	ParallelDeploys int `yaml:"parallel_deploys"`
	// RegistryAllow, when not empty, are the only registries images may
	// come from; RegistryDeny are refused. Entries are registry host
	// names ("docker.io", "ghcr.io", "*.example.com").
	RegistryAllow []string `yaml:"registry_allow"`
	RegistryDeny  []string `yaml:"registry_deny"`
}

// Runtime kinds.
const (
	RuntimeDocker     = "docker"
	RuntimeKubernetes = "kubernetes"
)

// Kubernetes configures the kubernetes runtime: one daemon and one
// account over a cluster.
type Kubernetes struct {
	// Kubeconfig is the cluster's kubeconfig file (relative to the config
	// file); empty: the in-cluster service account, else $KUBECONFIG.
	Kubeconfig string `yaml:"kubeconfig"`
	// NodeHost is where tenants reach global ports (node ports): a node's
	// address, or a load balancer's in front of the nodes. Required.
	NodeHost string `yaml:"node_host"`
	// ImagePullPolicy is the pods' pull policy: IfNotPresent (default),
	// Always or Never (images the nodes already have only).
	ImagePullPolicy string `yaml:"image_pull_policy"`
	// RuntimeClass, when set, runs every pod with that RuntimeClass (a
	// sandbox such as gVisor or Kata).
	RuntimeClass string `yaml:"runtime_class"`
	// RunAsNonRoot refuses images that run as root.
	RunAsNonRoot bool `yaml:"run_as_non_root"`
	// DeployTimeout bounds a deploy from its objects to every replica
	// running (default 5m).
	DeployTimeout Duration `yaml:"deploy_timeout"`
}

// Ingress configures the HTTP ingress: leases' global tcp exposes as port
// 80 are served on Listen by hostname, each under a default name in
// Domain (point a wildcard DNS record *.Domain at the provider) and the
// names their SDL accepts.
//
// TLSListen serves the same routes over HTTPS with the operator's
// certificates: TLSCert/TLSKey for the default names (it must cover
// *.Domain) and CertsDir holding <hostname>.crt/.key for accepted names.
type Ingress struct {
	Listen    string `yaml:"listen"`     // host:port, or "off"
	Domain    string `yaml:"domain"`     // default: the host of provider.host_uri
	TLSListen string `yaml:"tls_listen"` // host:port, or "off"
	TLSCert   string `yaml:"tls_cert"`
	TLSKey    string `yaml:"tls_key"`
	CertsDir  string `yaml:"certs_dir"`
}

// IngressOn reports whether the ingress serves on either address.
func (c *Config) IngressOn() bool {
	return c.Ingress.Listen != "off" || c.Ingress.TLSListen != "off"
}

// IngressDomain is Ingress.Domain, or host_uri's host.
func (c *Config) IngressDomain() string {
	if c.Ingress.Domain != "" {
		return c.Ingress.Domain
	}
	if u, err := url.Parse(c.Provider.HostURI); err == nil {
		return u.Hostname()
	}
	return ""
}

// API configures the tenant HTTPS API.
type API struct {
	Listen   string `yaml:"listen"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MaxClockSkew is how far a signed request's timestamp may be from now.
	MaxClockSkew Duration `yaml:"max_clock_skew"`
	// MetricsListen is where Prometheus metrics are served (plain HTTP),
	// apart from the public API; loopback by default, "off" for none.
	MetricsListen string `yaml:"metrics_listen"`
}

// MaxImageBytes is Runtime.MaxImageSize in bytes; 0 means no limit.
func (c *Config) MaxImageBytes() int64 {
	n, err := providerfile.ParseSize(c.Runtime.MaxImageSize)
	if c.Runtime.MaxImageSize == "0" || err != nil || n > 1<<62 {
		return 0
	}
	return int64(n)
}

// DefaultParallelDeploys is runtime.parallel_deploys when unset.
const DefaultParallelDeploys = 16

// MemoryLimitBytes is MemoryLimit in bytes; 0 means no limit.
func (c *Config) MemoryLimitBytes() int64 {
	if c.MemoryLimit == "0" {
		return 0
	}
	n, err := providerfile.ParseSize(c.MemoryLimit)
	if err != nil {
		return 0
	}
	return int64(n)
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML reads "30s", "5m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 30s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes "30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Load reads, defaults and validates a config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	c.dir = abs
	return c, nil
}

// Parse reads config YAML; unknown fields are errors.
func Parse(raw []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Chain.RPC == "" {
		c.Chain.RPC = "http://127.0.0.1:26657"
	}
	if c.Chain.GRPC == "" {
		c.Chain.GRPC = "127.0.0.1:9090"
	}
	if c.Chain.GasPrices == "" {
		c.Chain.GasPrices = "0.025ugpn"
	}
	if c.Chain.MaxFee == "" {
		c.Chain.MaxFee = "5000000ugpn"
	}
	if c.Chain.GasAdjustment == 0 {
		c.Chain.GasAdjustment = 1.4
	}
	if c.Key.KeyringBackend == "" {
		c.Key.KeyringBackend = "file"
	}
	if c.Runtime.PublishHost == "" {
		c.Runtime.PublishHost = "0.0.0.0"
	}
	if c.Runtime.Kind == "" {
		c.Runtime.Kind = RuntimeDocker
	}
	if c.Runtime.Kubernetes.ImagePullPolicy == "" {
		c.Runtime.Kubernetes.ImagePullPolicy = "IfNotPresent"
	}
	if c.Runtime.Kubernetes.DeployTimeout == 0 {
		c.Runtime.Kubernetes.DeployTimeout = Duration(5 * time.Minute)
	}
	if c.Runtime.PidsLimit == 0 {
		c.Runtime.PidsLimit = 512
	}
	if c.Runtime.LeasePidsLimit == 0 {
		c.Runtime.LeasePidsLimit = 4096
	}
	if c.Runtime.MaxReplicasPerLease == 0 {
		c.Runtime.MaxReplicasPerLease = 64
	}
	if c.Runtime.MaxVolumesPerLease == 0 {
		c.Runtime.MaxVolumesPerLease = 64
	}
	if c.Runtime.MaxVolumes == 0 {
		c.Runtime.MaxVolumes = 512
	}
	if c.Runtime.MaxImageSize == "" {
		c.Runtime.MaxImageSize = "50Gi"
	}
	if c.Runtime.LeaseSubnets == "" {
		c.Runtime.LeaseSubnets = subnet.DefaultPool
	}
	if c.Runtime.LeaseSubnetBits == 0 {
		c.Runtime.LeaseSubnetBits = subnet.DefaultBits
	}
	if c.Runtime.EgressFilter == "" {
		c.Runtime.EgressFilter = "install"
	}
	if c.Runtime.StorageLimit == "" {
		c.Runtime.StorageLimit = "auto"
	}
	if c.Runtime.StorageCheckInterval == 0 {
		c.Runtime.StorageCheckInterval = Duration(10 * time.Second)
	}
	if c.Runtime.ParallelDeploys == 0 {
		c.Runtime.ParallelDeploys = DefaultParallelDeploys
	}
	if c.Runtime.CrashLoopRestarts == 0 {
		c.Runtime.CrashLoopRestarts = 5
	}
	if c.Runtime.CrashLoopWindow == 0 {
		c.Runtime.CrashLoopWindow = Duration(10 * time.Minute)
	}
	if c.Ingress.Listen == "" {
		c.Ingress.Listen = "off"
	}
	if c.Ingress.TLSListen == "" {
		c.Ingress.TLSListen = "off"
	}
	if c.API.MetricsListen == "" {
		c.API.MetricsListen = "127.0.0.1:9465"
	}
	if c.API.Listen == "" {
		c.API.Listen = "0.0.0.0:8443"
	}
	if c.API.MaxClockSkew == 0 {
		c.API.MaxClockSkew = Duration(60 * time.Second)
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = Duration(30 * time.Second)
	}
	if c.WithdrawInterval == 0 {
		c.WithdrawInterval = Duration(time.Hour)
	}
	if c.MemoryLimit == "" {
		c.MemoryLimit = "64Mi"
	}
	if c.GCPercent == 0 {
		c.GCPercent = 50
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
}

// Validate checks every field and names the first wrong one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Chain.ID == "" {
		bad("chain.id", "missing (the chain id, e.g. gpunet-local-1)")
	}
	if u, err := url.Parse(c.Chain.RPC); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp") || u.Host == "" {
		bad("chain.rpc", "%q is not an http(s) URL of a CometBFT RPC", c.Chain.RPC)
	}
	if u, err := url.Parse(c.Chain.RPC); err == nil && u.Scheme != "https" && u.Host != "" && !isLoopback(u.Hostname()) && !c.Chain.InsecureRemoteNode {
		bad("chain.rpc", "%q reaches a node on another host without TLS: use https:// (or set chain.insecure_remote_node for a private network you trust)", c.Chain.RPC)
	}
	if host, _, err := net.SplitHostPort(c.Chain.GRPC); err != nil {
		bad("chain.grpc", "%q is not host:port", c.Chain.GRPC)
	} else if !c.Chain.GRPCTLS && !isLoopback(host) && !c.Chain.InsecureRemoteNode {
		bad("chain.grpc", "%q reaches a node on another host without TLS: set chain.grpc_tls (or chain.insecure_remote_node for a private network you trust)", c.Chain.GRPC)
	}
	if _, err := ParseGasPrice(c.Chain.GasPrices); err != nil {
		bad("chain.gas_prices", "%v", err)
	}
	if _, err := ParseCoin(c.Chain.MaxFee); err != nil {
		bad("chain.max_fee", "%v", err)
	}
	if c.Chain.GasAdjustment < 1 || c.Chain.GasAdjustment > 5 {
		bad("chain.gas_adjustment", "%v is outside 1..5", c.Chain.GasAdjustment)
	}
	if c.Key.Name == "" {
		bad("key.name", "missing (the keyring key the provider signs with)")
	}
	switch c.Key.KeyringBackend {
	case "os", "file", "pass", "kwallet":
	case "test", "memory":
		if !IsLocalChain(c.Chain.ID) && !c.Key.AllowUnsafeKeyring {
			bad("key.keyring_backend", "%q keeps the key unencrypted; on chain %q use file or os (or set key.allow_unsafe_keyring)", c.Key.KeyringBackend, c.Chain.ID)
		}
	default:
		bad("key.keyring_backend", "%q is not one of os, file, test, pass, kwallet", c.Key.KeyringBackend)
	}
	if err := providertypes.ValidateHostURI(c.Provider.HostURI); err != nil {
		bad("provider.host_uri", "%v", err)
	}
	if c.Provider.Bond != "" {
		if _, err := ParseCoin(c.Provider.Bond); err != nil {
			bad("provider.bond", "%v", err)
		}
	}
	if len(c.Pricing.GPUPerHour) == 0 && c.Pricing.CPUCorePerHour == "" {
		bad("pricing", "no prices: set gpu_per_hour and cpu_core_per_hour")
	}
	if _, err := c.Pricing.Table(); err != nil {
		errs = append(errs, err)
	}
	if c.Pricing.BidDeposit != "" {
		if _, err := ParseCoin(c.Pricing.BidDeposit); err != nil {
			bad("pricing.bid_deposit", "%v", err)
		}
	}
	if c.Inventory.CPU != "" {
		if _, err := providerfile.ParseCPU(c.Inventory.CPU); err != nil {
			bad("inventory.cpu", "%v", err)
		}
	}
	for _, f := range []struct{ name, v string }{{"inventory.memory", c.Inventory.Memory}, {"inventory.storage", c.Inventory.Storage}} {
		if f.v != "" {
			if _, err := providerfile.ParseSize(f.v); err != nil {
				bad(f.name, "%v", err)
			}
		}
	}
	if c.Runtime.MaxImageSize != "0" {
		if _, err := providerfile.ParseSize(c.Runtime.MaxImageSize); err != nil {
			bad("runtime.max_image_size", "%v", err)
		}
	}
	if c.MemoryLimit != "0" {
		if n, err := providerfile.ParseSize(c.MemoryLimit); err != nil {
			bad("memory_limit", "%v", err)
		} else if n < 16<<20 {
			bad("memory_limit", "%s is below 16Mi; the daemon would spend its time collecting garbage", c.MemoryLimit)
		}
	}
	if c.GCPercent < 10 || c.GCPercent > 1000 {
		bad("gc_percent", "%d is outside 10..1000", c.GCPercent)
	}
	for i, g := range c.Inventory.Declared {
		if !providertypes.IsGPUModelSlug(providertypes.CanonicalGPUModel(g.Model)) {
			bad(fmt.Sprintf("inventory.declared[%d].model", i), "%q is not a GPU model", g.Model)
		}
		if g.Count == 0 {
			bad(fmt.Sprintf("inventory.declared[%d].count", i), "must be at least 1")
		}
		if g.MemoryMiB == 0 {
			bad(fmt.Sprintf("inventory.declared[%d].memory_mib", i), "must be set")
		}
	}
	if ip := net.ParseIP(c.Runtime.PublishHost); ip == nil {
		bad("runtime.publish_host", "%q is not an IP address", c.Runtime.PublishHost)
	}
	if c.Runtime.MaxVolumesPerLease < 0 || c.Runtime.MaxVolumes < c.Runtime.MaxVolumesPerLease {
		bad("runtime.max_volumes", "%d must be at least max_volumes_per_lease (%d)", c.Runtime.MaxVolumes, c.Runtime.MaxVolumesPerLease)
	}
	if c.Runtime.MaxReplicasPerLease < 1 || c.Runtime.LeasePidsLimit < 16*int64(c.Runtime.MaxReplicasPerLease) {
		bad("runtime.lease_pids_limit", "%d must give each of max_replicas_per_lease (%d) replicas at least 16 processes", c.Runtime.LeasePidsLimit, c.Runtime.MaxReplicasPerLease)
	}
	if c.Runtime.PidsLimit < 16 {
		bad("runtime.pids_limit", "%d is below 16", c.Runtime.PidsLimit)
	}
	if _, err := subnet.Parse(c.Runtime.LeaseSubnets, c.Runtime.LeaseSubnetBits); err != nil {
		bad("runtime.lease_subnets", "%v", err)
	}
	if (c.Chain.GRPCCAFile != "" || c.Chain.GRPCServerName != "") && !c.Chain.GRPCTLS {
		bad("chain.grpc_tls", "false, yet grpc_ca_file or grpc_server_name is set (set grpc_tls: true)")
	}
	if c.Chain.GRPCCAFile != "" {
		if _, err := os.Stat(c.Path(c.Chain.GRPCCAFile)); err != nil {
			bad("chain.grpc_ca_file", "%v", err)
		}
	}
	for _, n := range c.StorageClassNames() {
		sc := c.Inventory.StorageClasses[n]
		if !providertypes.IsStorageClass(n) {
			bad("inventory.storage_classes", "%q is not a storage class name (a lower-case word, not ram)", n)
		}
		if c.Runtime.Kind == RuntimeKubernetes {
			if k := sc.KubernetesClass; k != "" && !dnsSubdomain(k) {
				bad("inventory.storage_classes."+n+".kubernetes_class", "%q is not a StorageClass name (lower-case letters, digits, '-' and '.')", k)
			}
		} else if !filepath.IsAbs(sc.Path) {
			bad("inventory.storage_classes."+n+".path", "%q must be an absolute directory", sc.Path)
		}
		if b, err := providerfile.ParseSize(sc.Size); err != nil || b == 0 {
			bad("inventory.storage_classes."+n+".size", "%q is not a size (e.g. 500Gi)", sc.Size)
		}
	}
	switch c.Runtime.Kind {
	case RuntimeDocker:
	case RuntimeKubernetes:
		k := c.Runtime.Kubernetes
		if k.NodeHost == "" {
			bad("runtime.kubernetes.node_host", "is required: the address tenants reach node ports at")
		} else if strings.ContainsAny(k.NodeHost, " /:") {
			bad("runtime.kubernetes.node_host", "%q is not a host name or IPv4 address", k.NodeHost)
		}
		switch k.ImagePullPolicy {
		case "IfNotPresent", "Always", "Never":
		default:
			bad("runtime.kubernetes.image_pull_policy", "%q is not IfNotPresent, Always or Never", k.ImagePullPolicy)
		}
		if k.DeployTimeout.D() < 10*time.Second {
			bad("runtime.kubernetes.deploy_timeout", "%s is below 10s", k.DeployTimeout.D())
		}
	default:
		bad("runtime.kind", "%q is not docker or kubernetes", c.Runtime.Kind)
	}
	switch c.Runtime.EgressFilter {
	case "install", "verify", "off":
	default:
		bad("runtime.egress_filter", "%q is not install, verify or off", c.Runtime.EgressFilter)
	}
	for _, a := range c.Runtime.EgressAllow {
		if _, err := netip.ParsePrefix(a); err != nil {
			bad("runtime.egress_allow", "%q is not a CIDR (e.g. 192.168.1.10/32)", a)
		}
	}
	if u := c.Runtime.ContainerUser; u != "" {
		uid, gid, ok := strings.Cut(u, ":")
		if _, err := strconv.ParseUint(uid, 10, 32); err != nil || !ok {
			bad("runtime.container_user", "%q is not uid:gid (numbers, e.g. 65534:65534)", u)
		} else if _, err := strconv.ParseUint(gid, 10, 32); err != nil {
			bad("runtime.container_user", "%q is not uid:gid (numbers, e.g. 65534:65534)", u)
		} else if uid == "0" {
			bad("runtime.container_user", "%q is root; leave it empty to keep the image's user", u)
		}
	}
	switch c.Runtime.StorageLimit {
	case "auto", "quota", "watch", "off":
	default:
		bad("runtime.storage_limit", "%q is not auto, quota, watch or off", c.Runtime.StorageLimit)
	}
	if c.Runtime.CrashLoopRestarts < -1 || c.Runtime.CrashLoopWindow.D() < time.Second {
		bad("runtime.crash_loop_restarts", "%d within %s: give a count of at least 1 (or -1: never) and a window of at least 1s", c.Runtime.CrashLoopRestarts, c.Runtime.CrashLoopWindow.D())
	}
	if c.Runtime.ParallelDeploys < 1 || c.Runtime.ParallelDeploys > 1024 {
		bad("runtime.parallel_deploys", "%d is outside 1..1024", c.Runtime.ParallelDeploys)
	}
	if c.Runtime.StorageCheckInterval.D() < time.Second {
		bad("runtime.storage_check_interval", "%s is below 1s", c.Runtime.StorageCheckInterval.D())
	}
	for _, r := range append(append([]string(nil), c.Runtime.RegistryAllow...), c.Runtime.RegistryDeny...) {
		if r == "" || strings.ContainsAny(r, "/ :@") {
			bad("runtime.registry_allow/registry_deny", "%q is not a registry host name (e.g. docker.io, *.example.com)", r)
		}
	}
	if _, _, err := net.SplitHostPort(c.Ingress.Listen); err != nil && c.Ingress.Listen != "off" {
		bad("ingress.listen", "%q is not host:port (or off)", c.Ingress.Listen)
	}
	if _, _, err := net.SplitHostPort(c.Ingress.TLSListen); err != nil && c.Ingress.TLSListen != "off" {
		bad("ingress.tls_listen", "%q is not host:port (or off)", c.Ingress.TLSListen)
	}
	if c.Ingress.TLSListen != "off" && (c.Ingress.TLSCert == "" || c.Ingress.TLSKey == "") {
		bad("ingress.tls_cert", "tls_listen needs tls_cert and tls_key: a certificate covering *.%s", c.IngressDomain())
	}
	if d := c.IngressDomain(); c.IngressOn() && (d == "" || strings.ContainsAny(d, "/: ")) {
		bad("ingress.domain", "%q is not a DNS name under which leases get hostnames", d)
	}
	if _, _, err := net.SplitHostPort(c.API.MetricsListen); err != nil && c.API.MetricsListen != "off" {
		bad("api.metrics_listen", "%q is not host:port (or off)", c.API.MetricsListen)
	}
	if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
		bad("api.listen", "%q is not host:port", c.API.Listen)
	}
	if c.API.MaxClockSkew.D() < time.Second || c.API.MaxClockSkew.D() > 10*time.Minute {
		bad("api.max_clock_skew", "%s is outside 1s..10m", c.API.MaxClockSkew.D())
	}
	if c.ReconcileInterval.D() < time.Second {
		bad("reconcile_interval", "%s is below 1s", c.ReconcileInterval.D())
	}
	if c.WithdrawInterval.D() < 10*time.Second {
		bad("withdraw_interval", "%s is below 10s", c.WithdrawInterval.D())
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "%q is not text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// Path resolves a path from the config relative to the config file.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// DataPath is a file in the data directory.
func (c *Config) DataPath(name string) string { return filepath.Join(c.Path(c.DataDir), name) }

// CertFile is the API's certificate path (default data_dir/tls.crt).
func (c *Config) CertFile() string {
	if c.API.CertFile != "" {
		return c.Path(c.API.CertFile)
	}
	return c.DataPath("tls.crt")
}

// KeyFile is the API's private key path (default data_dir/tls.key).
func (c *Config) KeyFile() string {
	if c.API.KeyFile != "" {
		return c.Path(c.API.KeyFile)
	}
	return c.DataPath("tls.key")
}

// PriceTable is parsed pricing.
type PriceTable struct {
	GPU        map[string]sdkmath.LegacyDec // by model slug; "default" for any
	CPUCore    sdkmath.LegacyDec
	MemoryGiB  sdkmath.LegacyDec
	StorageGiB sdkmath.LegacyDec
}

// Table parses the prices.
func (p Pricing) Table() (PriceTable, error) {
	t := PriceTable{GPU: map[string]sdkmath.LegacyDec{}}
	models := make([]string, 0, len(p.GPUPerHour))
	for m := range p.GPUPerHour {
		models = append(models, m)
	}
	sort.Strings(models)
	for _, m := range models {
		v, err := parsePrice(p.GPUPerHour[m])
		if err != nil {
			return t, fmt.Errorf("pricing.gpu_per_hour.%s: %w", m, err)
		}
		slug := m
		if m != "default" {
			slug = providertypes.CanonicalGPUModel(m)
		}
		t.GPU[slug] = v
	}
	var err error
	for _, f := range []struct {
		name string
		v    string
		dst  *sdkmath.LegacyDec
	}{
		{"pricing.cpu_core_per_hour", p.CPUCorePerHour, &t.CPUCore},
		{"pricing.memory_gib_per_hour", p.MemoryGiBPerHour, &t.MemoryGiB},
		{"pricing.storage_gib_per_hour", p.StorageGiBPerHour, &t.StorageGiB},
	} {
		if f.v == "" {
			*f.dst = sdkmath.LegacyZeroDec()
			continue
		}
		if *f.dst, err = parsePrice(f.v); err != nil {
			return t, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return t, nil
}

// parsePrice reads "2000000" or "2000000ugpn" (ugpn per hour).
func parsePrice(s string) (sdkmath.LegacyDec, error) {
	s = strings.TrimSpace(s)
	if num, ok := strings.CutSuffix(s, Denom); ok {
		s = num
	} else if strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0 {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q: prices are in %s per hour", s, Denom)
	}
	if len(s) > 40 {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q is too long", s)
	}
	v, err := sdkmath.LegacyNewDecFromStr(s)
	if err != nil || v.IsNegative() {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q is not a non-negative amount of %s per hour", s, Denom)
	}
	return v, nil
}

// ParseCoin reads "500000000ugpn" and refuses other denoms.
func ParseCoin(s string) (sdkmath.Int, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), Denom)
	if !ok {
		return sdkmath.Int{}, fmt.Errorf("%q must be an amount of %s, e.g. 500000000%s", s, Denom, Denom)
	}
	v, ok := sdkmath.NewIntFromString(num)
	if !ok || !v.IsPositive() {
		return sdkmath.Int{}, fmt.Errorf("%q is not a positive amount of %s", s, Denom)
	}
	return v, nil
}

// ParseGasPrice reads "0.025ugpn".
func ParseGasPrice(s string) (sdkmath.LegacyDec, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), Denom)
	if !ok {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q must be a price in %s, e.g. 0.025%s", s, Denom, Denom)
	}
	v, err := sdkmath.LegacyNewDecFromStr(num)
	if err != nil || v.IsNegative() {
		return sdkmath.LegacyDec{}, fmt.Errorf("%q is not a gas price", s)
	}
	return v, nil
}

// isLoopback reports whether host (a name or an IP) is this host's
// loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLocalChain reports a chain id of a local network (gpunet-local-1, a
// localnet): one whose keys guard nothing of value.
func IsLocalChain(id string) bool { return strings.Contains(strings.ToLower(id), "local") }

// KeyringPassphrase is the file keyring's passphrase: from
// GPUNET_KEYRING_PASSPHRASE, else from key.passphrase_file, which must not
// be readable by group or others; "" when neither is set (a terminal then
// asks).
func (c *Config) KeyringPassphrase() (string, error) {
	if p := os.Getenv("GPUNET_KEYRING_PASSPHRASE"); p != "" {
		return p, nil
	}
	if c.Key.PassphraseFile == "" {
		return "", nil
	}
	path := c.Path(c.Key.PassphraseFile)
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("key.passphrase_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("key.passphrase_file %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("key.passphrase_file: %w", err)
	}
	return strings.TrimRight(string(raw), "\r\n"), nil
}

// EgressPolicy is the lease egress filter runtime.lease_subnets and
// runtime.egress_allow describe, with the host's DNS resolvers (from
// /etc/resolv.conf) left reachable on port 53.
func (c *Config) EgressPolicy() (egress.Policy, error) {
	pool, err := netip.ParsePrefix(c.Runtime.LeaseSubnets)
	if err != nil {
		return egress.Policy{}, fmt.Errorf("runtime.lease_subnets: %w", err)
	}
	p := egress.Policy{Pool: pool.Masked()}
	for _, a := range c.Runtime.EgressAllow {
		pfx, err := netip.ParsePrefix(a)
		if err != nil {
			return egress.Policy{}, fmt.Errorf("runtime.egress_allow: %w", err)
		}
		p.Allow = append(p.Allow, pfx.Masked())
	}
	// A host without a resolv.conf has no resolvers to open.
	p.Resolvers, _ = egress.Resolvers("/etc/resolv.conf")
	return p, nil
}
