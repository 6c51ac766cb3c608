package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTemplateParsesWithDefaults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "provider.yaml")
	if err := WriteTemplate(path, TemplateParams{ChainID: "gpunet-local-1", RPC: "http://127.0.0.1:26657", GRPC: "127.0.0.1:9090", KeyName: "provider", HostURI: "https://gpu1.example.com:8443", Listen: "0.0.0.0:8443"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("the template does not load: %v", err)
	}
	if c.ReconcileInterval.D() != 30*time.Second || c.API.MaxClockSkew.D() != time.Minute || c.CertFile() != filepath.Join(dir, "data", "tls.crt") {
		t.Fatalf("defaults: %+v cert %s", c, c.CertFile())
	}
	if c.MemoryLimitBytes() != 64<<20 || c.GCPercent != 50 || c.Runtime.ParallelDeploys != 16 || c.Runtime.LeaseSubnets != "10.240.0.0/12" || c.Runtime.LeaseSubnetBits != 24 {
		t.Fatalf("memory limit %d, gc percent %d, lease subnets %s/%d", c.MemoryLimitBytes(), c.GCPercent, c.Runtime.LeaseSubnets, c.Runtime.LeaseSubnetBits)
	}
	c.MemoryLimit = "0"
	if c.MemoryLimitBytes() != 0 {
		t.Fatalf(`memory_limit "0" gives %d, want no limit`, c.MemoryLimitBytes())
	}
	table, err := c.Pricing.Table()
	if err != nil || !table.GPU["h100"].IsPositive() || !table.GPU["default"].IsPositive() {
		t.Fatalf("prices %+v %v", table, err)
	}
	if err := WriteTemplate(path, TemplateParams{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("overwrite: %v", err)
	}
}

func TestParseRefusesBadConfigsByField(t *testing.T) {
	base := "chain: {id: c}\nkey: {name: k}\nprovider: {host_uri: 'https://h:8443'}\npricing: {cpu_core_per_hour: '10'}\n"
	if _, err := Parse([]byte(base)); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	cases := []struct{ yaml, want string }{
		{"key: {name: k}\nprovider: {host_uri: 'https://h:8443'}\npricing: {cpu_core_per_hour: '10'}\n", "chain.id: missing"},
		{strings.Replace(base, "https://h:8443", "http://h:8443", 1), "provider.host_uri"},
		{base + "bogus: 1\n", "field bogus not found"},
		{strings.Replace(base, "cpu_core_per_hour: '10'", "cpu_core_per_hour: '10uatom'", 1), "prices are in ugpn per hour"},
		{strings.Replace(base, "cpu_core_per_hour: '10'", "cpu_core_per_hour: '-1'", 1), "pricing.cpu_core_per_hour"},
		{base + "runtime: {publish_host: nowhere}\n", "runtime.publish_host"},
		{base + "runtime: {lease_subnets: 10.240.0.1/12}\n", "runtime.lease_subnets"},
		{base + "memory_limit: 1Mi\n", "memory_limit"},
		{base + "memory_limit: lots\n", "memory_limit"},
		{base + "gc_percent: 5\n", "gc_percent"},
		{base + "runtime: {parallel_deploys: -1}\n", "runtime.parallel_deploys"},
		{base + "runtime: {parallel_deploys: 5000}\n", "runtime.parallel_deploys"},
		{base + "gc_percent: -1\n", "gc_percent"},
		{base + "gc_percent: often\n", "line 5: cannot unmarshal !!str `often` into int"},
		{base + "runtime: {lease_subnets: 10.240.0.0/24, lease_subnet_bits: 16}\n", "runtime.lease_subnets"},
		{base + "inventory: {memory: lots}\n", "inventory.memory"},
		{base + "inventory: {declared: [{model: h100, count: 0, memory_mib: 1}]}\n", "inventory.declared[0].count"},
		{base + "reconcile_interval: soon\n", "not a duration"},
		{base + "provider: {host_uri: 'https://h:8443', bond: '5GPN'}\n", "mapping key \"provider\" already defined"},
		{strings.Replace(base, "provider: {host_uri: 'https://h:8443'}", "provider: {host_uri: 'https://h:8443', bond: '5gpn'}", 1), "provider.bond"},
		{base + "api: {max_clock_skew: 1h}\n", "api.max_clock_skew"},
		{base + "log_format: xml\n", "log_format"},
		{base + "runtime: {lease_pids_limit: 100, max_replicas_per_lease: 64}\n", "runtime.lease_pids_limit"},
		{base + "runtime: {max_image_size: huge}\n", "runtime.max_image_size"},
		{base + "api: {metrics_listen: everywhere}\n", "api.metrics_listen"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.yaml, err, tc.want)
		}
	}
}

// A node on another host is reached over TLS unless the operator says it
// trusts the network between: plain RPC or gRPC to it is refused by name;
// loopback, https, grpc_tls or insecure_remote_node are taken.
func TestRemoteNodeNeedsTLS(t *testing.T) {
	base := "key: {name: k}\nprovider: {host_uri: 'https://h:8443'}\npricing: {cpu_core_per_hour: '10'}\n"
	chain := func(fields string) string { return "chain: {id: c, " + fields + "}\n" + base }
	for _, ok := range []string{
		"rpc: 'http://127.0.0.1:26657', grpc: 'localhost:9090'",
		"rpc: 'http://[::1]:26657', grpc: '[::1]:9090'",
		"rpc: 'https://node.example:443', grpc: 'node.example:443', grpc_tls: true",
		"rpc: 'http://10.0.0.5:26657', grpc: '10.0.0.5:9090', insecure_remote_node: true",
	} {
		if _, err := Parse([]byte(chain(ok))); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for fields, want := range map[string]string{
		"rpc: 'http://10.0.0.5:26657', grpc: 'localhost:9090'":                       "chain.rpc: \"http://10.0.0.5:26657\" reaches a node on another host without TLS",
		"rpc: 'tcp://node.example:26657', grpc: 'localhost:9090'":                    "chain.rpc",
		"rpc: 'https://node.example:443', grpc: 'node.example:9090'":                 "chain.grpc: \"node.example:9090\" reaches a node on another host without TLS",
		"rpc: 'https://node.example:443', grpc: '192.168.1.2:9090', grpc_tls: false": "set chain.grpc_tls",
	} {
		if _, err := Parse([]byte(chain(fields))); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", fields, err, want)
		}
	}
}

func TestPathsAreRelativeToTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "p.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	raw := "chain: {id: c}\nkey: {name: k}\nprovider: {host_uri: 'https://h:8443'}\npricing: {cpu_core_per_hour: '10'}\ndata_dir: state\napi: {cert_file: /etc/cert.pem}\n"
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DataPath("x"); got != filepath.Join(dir, "sub", "state", "x") {
		t.Errorf("data path %s", got)
	}
	if c.CertFile() != "/etc/cert.pem" {
		t.Errorf("absolute cert path rewritten: %s", c.CertFile())
	}
}

// The key is kept encrypted off local chains: the test keyring is refused
// there unless the operator says so; a passphrase file must be the
// owner's alone.
func TestKeyringSafety(t *testing.T) {
	base := "key: {name: k, keyring_backend: test}\nprovider: {host_uri: 'https://h:8443'}\npricing: {cpu_core_per_hour: '10'}\n"
	if _, err := Parse([]byte("chain: {id: gpunet-1}\n" + base)); err == nil || !strings.Contains(err.Error(), "key.keyring_backend") {
		t.Errorf("test keyring on gpunet-1: %v", err)
	}
	if _, err := Parse([]byte("chain: {id: gpunet-local-1}\n" + base)); err != nil {
		t.Errorf("test keyring on a local chain: %v", err)
	}
	unsafe := strings.Replace(base, "keyring_backend: test}", "keyring_backend: test, allow_unsafe_keyring: true}", 1)
	if _, err := Parse([]byte("chain: {id: gpunet-1}\n" + unsafe)); err != nil {
		t.Errorf("test keyring allowed explicitly: %v", err)
	}
	c, err := Parse([]byte("chain: {id: gpunet-1}\nkey: {name: k}\nprovider: {host_uri: 'https://h:8443'}\npricing: {cpu_core_per_hour: '10'}\n"))
	if err != nil || c.Key.KeyringBackend != "file" {
		t.Fatalf("default keyring %q (%v), want file", c.Key.KeyringBackend, err)
	}
	dir := t.TempDir()
	c.dir = dir
	c.Key.PassphraseFile = "pass"
	if err := os.WriteFile(filepath.Join(dir, "pass"), []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeyringPassphrase(); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("world-readable passphrase file: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, "pass"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := c.KeyringPassphrase(); err != nil || p != "s3cret" {
		t.Errorf("passphrase %q %v", p, err)
	}
	t.Setenv("GPUNET_KEYRING_PASSPHRASE", "from-env")
	if p, _ := c.KeyringPassphrase(); p != "from-env" {
		t.Errorf("passphrase from the environment: %q", p)
	}
}
