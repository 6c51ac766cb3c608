package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// TemplateParams fill the file `gpunet-provider init` writes.
type TemplateParams struct {
	ChainID string
	RPC     string
	GRPC    string
	KeyName string
	// KeyringBackend is file unless the operator chose otherwise (test is
	// only for local chains).
	KeyringBackend string
	HostURI        string
	Listen         string
}

// Template returns a commented provider.yaml that Parse accepts.
func Template(p TemplateParams) string {
	return fmt.Sprintf(`# gpunet-provider configuration. Every field is explained; sizes accept
# Ki/Mi/Gi/Ti (binary) or K/M/G/T (decimal); prices are ugpn per hour.

chain:
  id: %q
  rpc: %q      # CometBFT RPC (blocks are followed over its websocket)
  grpc: %q           # gRPC (queries, simulation, broadcast)
  grpc_tls: false            # reach gRPC over TLS (a node behind a TLS proxy); rpc takes https:// URLs
  grpc_ca_file: ""           # CA that signed the node's certificate (default: the system's roots)
  grpc_server_name: ""       # name to check in the node's certificate (default: grpc's host)
  gas_prices: 0.025ugpn
  max_fee: 5000000ugpn       # the most one transaction may pay; more is refused, not paid
  gas_adjustment: 1.4
  insecure_remote_node: false # a node on another host is reached over TLS unless this is set

key:
  name: %q             # key in the keyring that owns the provider
  keyring_backend: %s        # file | os | test (test only on a local chain, or with allow_unsafe_keyring)
  keyring_dir: ""            # default: ~/.gpunetd
  passphrase_file: ""        # file keyring: a file holding the passphrase, owner-only (or GPUNET_KEYRING_PASSPHRASE)

provider:
  host_uri: %q   # where tenants reach this daemon's API
  attributes:
    region: local
  email: ""
  website: ""
  bond: 500000000ugpn        # staked by the first 'gpunet-provider register'

pricing:
  gpu_per_hour:              # by model slug or NVML name
    h100: 2000000
    a100: 1200000
    rtx4090: 400000
    default: 1000000
  cpu_core_per_hour: 10000
  memory_gib_per_hour: 2000
  storage_gib_per_hour: 100
  bid_deposit: ""            # default: the chain's minimum

inventory:
  cpu: ""                    # cores offered to tenants; default: all host cores
  memory: ""                 # default: host memory
  storage: 100Gi
  # GPUs declared here are used ONLY when NVML finds no NVIDIA driver (CPU-only
  # or test hosts); they are registered and reported as declared, not detected.
  declared: []
  storage_classes: {}        # persistent volumes, e.g. {beta2: {path: /var/lib/gpunet/volumes/beta2, size: 500Gi}}
  #  - model: h100
  #    memory_mib: 81559
  #    interface: sxm
  #    count: 1

runtime:
  kind: docker               # docker: this host's engine | kubernetes: a cluster (below; see README)
  kubernetes:
    kubeconfig: ""           # the cluster's kubeconfig (empty: in-cluster service account, else $KUBECONFIG)
    node_host: ""            # address tenants reach global ports (node ports) at: a node's or a load balancer's
    image_pull_policy: IfNotPresent # Always | IfNotPresent | Never (images the nodes have only)
    runtime_class: ""        # RuntimeClass every pod runs with, e.g. gvisor (empty: the cluster's default)
    run_as_non_root: false   # refuse images that run as root
    deploy_timeout: 5m       # from a lease's objects to every replica running
  docker_host: ""            # default: DOCKER_HOST or unix:///var/run/docker.sock
  publish_host: 0.0.0.0      # host IP tenants' global ports are published on
  pids_limit: 512            # processes per container
  lease_pids_limit: 4096     # processes of a whole lease, shared by its replicas
  max_replicas_per_lease: 64 # orders with more replicas are not bid on
  max_volumes_per_lease: 64  # persistent volumes (loop devices) one lease may hold; more: not bid on
  max_volumes: 512           # persistent volumes on this host, all leases together
  pull_images: true          # pull images that are not present locally
  max_image_size: 50Gi       # larger images are refused (the lease closes as workload_invalid)
  lease_subnets: 10.240.0.0/12 # each multi-container lease's network gets a subnet from this
  lease_subnet_bits: 24      # pool, the shared one-container network 16 of them; pick a pool
                             # your host's networks do not use
  egress_filter: install     # iptables rules keep leases off the host, its LAN and link-local
                             # addresses (install | verify: you install them | off)
  egress_allow: []           # CIDRs leases may reach anyway, e.g. [192.168.1.20/32]
  container_user: ""         # uid:gid every lease runs as (empty: the image's user; see README)
  storage_limit: auto        # writable layers held to their size: auto | quota | watch | off
  storage_check_interval: 10s
  crash_loop_restarts: 5     # failed exits of a service replica within crash_loop_window that close its lease as workload_failed (-1: never)
  crash_loop_window: 10m
  parallel_deploys: 16       # leases whose containers Docker creates and starts at once; the rest wait (pulls do not)
  registry_allow: []         # only these registries, e.g. [docker.io, ghcr.io] (empty: any)
  registry_deny: []          # never these registries

ingress:
  listen: 0.0.0.0:80         # HTTP ingress for leases' global exposes as port 80 (off: none)
  domain: ""                 # leases get <hash>.<domain>; default: host_uri's host (point *.domain here)
  tls_listen: "off"          # HTTPS ingress, e.g. 0.0.0.0:443; needs tls_cert/tls_key
  tls_cert: ""               # PEM certificate (chain) covering *.<domain>, e.g. from certbot (DNS-01)
  tls_key: ""
  certs_dir: ""              # <hostname>.crt/.key for names leases accept; re-read when they change

api:
  listen: %q
  cert_file: ""              # default: <data_dir>/tls.crt (created by init)
  key_file: ""
  max_clock_skew: 60s        # signed requests older or newer than this are refused
  metrics_listen: 127.0.0.1:9465 # Prometheus metrics (plain HTTP); keep it off public interfaces; "off": none

data_dir: data               # relative to this file
reconcile_interval: 30s
withdraw_interval: 1h
log_format: text             # text | json
memory_limit: 64Mi           # Go soft memory limit for the daemon ("0": none; GOMEMLIMIT wins)
gc_percent: 50               # heap growth between garbage collections, percent (GOGC wins)
`, p.ChainID, p.RPC, p.GRPC, p.KeyName, p.keyringBackend(), p.HostURI, p.Listen)
}

// WriteTemplate writes the template to path, refusing to overwrite.
func WriteTemplate(path string, p TemplateParams) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists; remove it first or edit it", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(Template(p)), 0o600)
}

func (p TemplateParams) keyringBackend() string {
	if p.KeyringBackend == "" {
		return "file"
	}
	return p.KeyringBackend
}
