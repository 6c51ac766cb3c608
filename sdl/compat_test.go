package sdl

import (
	"slices"
	"strings"
	"testing"

	_ "github.com/gpunet/gpunet/app/params" // gpunet's bech32 prefixes
)

// akashStyle is written as Akash's templates are: lowercase size units,
// an env entry without "=", both spellings of dependencies (each entry
// as a name or as {service}), compose leftovers Akash ignores, and a
// shared-memory volume for a multi-GPU server.
const akashStyle = `
version: "2.0"
services:
  db:
    image: postgres:16
    env: [POSTGRES_PASSWORD=x, DEBUG]
    volumes: [./data:/var/lib/postgresql/data]
  cache:
    image: redis:7
    expose:
      - port: 6379
        to:
          - servcie: api
  api:
    image: api:1
    depends_on: [{service: db}]
    dependencies:
      - cache
    params:
      storage:
        shm:
          mount: /dev/shm
profiles:
  compute:
    small:
      resources:
        cpu: {units: 1}
        memory: {size: 512mi}
        storage: {size: 8g}
    gpu:
      resources:
        cpu: {units: 8}
        memory: {size: 16gi}
        storage:
          - size: 100Gi
          - name: shm
            size: 10Gi
            attributes:
              class: ram
              persistent: false
  placement:
    dc:
      pricing:
        small: {denom: ugpn, amount: 1000}
        gpu: {denom: ugpn, amount: 100000}
deployment:
  db:
    dc: {profile: small, count: 1}
  cache:
    dc: {profile: small, count: 1}
  api:
    dc: {profile: gpu, count: 1}
`

func TestAkashStyleFile(t *testing.T) {
	d, err := Parse([]byte(akashStyle))
	if err != nil {
		t.Fatal(err)
	}
	svcs := map[string]ManifestService{}
	for _, s := range d.Manifest.Groups[0].Services {
		svcs[s.Name] = s
	}
	if r := svcs["db"].Resources; r.MemoryBytes != 512<<20 || r.StorageBytes != 8e9 {
		t.Errorf("lowercase units: memory %d storage %d", r.MemoryBytes, r.StorageBytes)
	}
	if env := svcs["db"].Env; !slices.Equal(env, []string{"POSTGRES_PASSWORD=x", "DEBUG="}) {
		t.Errorf("env %q", env)
	}
	api := svcs["api"]
	if !slices.Equal(api.DependsOn, []string{"cache", "db"}) {
		t.Errorf("depends_on %v", api.DependsOn)
	}
	// Keys Akash ignores are ignored, each with its line.
	if want := []string{
		"line 7: volumes: not an SDL key of a service; ignored, as Akash ignores it",
		"line 13: servcie: not an SDL key of an expose target; ignored, as Akash ignores it",
	}; !slices.Equal(d.Warnings, want) {
		t.Errorf("warnings %q, want %q", d.Warnings, want)
	}
	// The ram volume is memory, mounted at /dev/shm; the ephemeral disk is storage.
	if api.Resources.MemoryBytes != 26<<30 || api.Resources.StorageBytes != 100<<30 {
		t.Errorf("api memory %d storage %d, want 16Gi+10Gi and 100Gi", api.Resources.MemoryBytes, api.Resources.StorageBytes)
	}
	if len(api.Mounts) != 1 || api.Mounts[0] != (ManifestMount{Volume: "shm", Path: "/dev/shm", Class: ClassRAM, SizeBytes: 10 << 30}) {
		t.Errorf("mounts %+v", api.Mounts)
	}
	// The order asks for what the containers get.
	for i, u := range d.Groups[0].Resources {
		if s := d.Manifest.Groups[0].Services[i]; u.MemoryBytes != s.Resources.MemoryBytes || u.StorageBytes != s.Resources.StorageBytes {
			t.Errorf("unit %d: order %d/%d, manifest %d/%d", i, u.MemoryBytes, u.StorageBytes, s.Resources.MemoryBytes, s.Resources.StorageBytes)
		}
	}
}

func TestSizesReadAsAkashWritesThem(t *testing.T) {
	for in, want := range map[string]uint64{
		"16gi": 16 << 30, "16Gi": 16 << 30, "16GI": 16 << 30, "1GiB": 1 << 30, "512mi": 512 << 20, "512Mi": 512 << 20,
		"8g": 8e9, "8G": 8e9, "2GB": 2e9, "500m": 500e6, "500M": 500e6, "1k": 1000, "1Ki": 1024, "1024": 1024, "512b": 512,
		"1.5Gi": 3 << 29,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "gi", "1.5", "-1Gi", "1e9", "lots", "1Zi"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestDependencyCyclesAreRefused(t *testing.T) {
	f := strings.Replace(akashStyle, "    image: redis:7", "    image: redis:7\n    depends_on: [api]", 1)
	_, err := Parse([]byte(f))
	if err == nil || !strings.Contains(err.Error(), "depend on each other in a cycle") {
		t.Fatalf("cycle: %v", err)
	}
	// A dependency in another placement cannot be ordered.
	f = strings.Replace(akashStyle, "  cache:\n    dc: {profile: small, count: 1}", "  cache:\n    other: {profile: small, count: 1}", 1)
	f = strings.Replace(f, "  placement:\n", "  placement:\n    other:\n      pricing:\n        small: {denom: ugpn, amount: 1000}\n", 1)
	if _, err := Parse([]byte(f)); err == nil || !strings.Contains(err.Error(), `depends on "cache", which is not deployed in placement "dc"`) {
		t.Fatalf("cross-placement dependency: %v", err)
	}
}

func TestSignedByReadsAuditorsAndOtherPrefixes(t *testing.T) {
	// The same 20 bytes written with Akash's prefix and with gpunet's.
	akashAddr := "akash1365yvmc4s7awdyj3n2sav7xfx76adc6dnmlx63" // Akash's own auditor
	f := strings.Replace(cpuOnly, "    anywhere:\n", "    anywhere:\n      attributes: {region: eu}\n      signedBy:\n        anyOf: ["+akashAddr+"]\n", 1)
	d, err := Parse([]byte(f))
	if err != nil {
		t.Fatal(err)
	}
	sb := d.Groups[0].SignedBy
	if len(sb.AnyOf) != 1 || !strings.HasPrefix(sb.AnyOf[0], "gpunet1") || len(sb.AllOf) != 0 {
		t.Fatalf("signed_by %+v", sb)
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "is read as "+sb.AnyOf[0]) || !strings.Contains(d.Warnings[0], "line ") {
		t.Fatalf("warnings %q", d.Warnings)
	}
	bad := strings.Replace(f, akashAddr, "not-an-address", 1)
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "signedBy.anyOf[0]") {
		t.Fatalf("bad auditor: %v", err)
	}
	twice := strings.Replace(f, "anyOf: ["+akashAddr+"]", "anyOf: ["+akashAddr+"]\n        allOf: ["+akashAddr+"]", 1)
	if _, err := Parse([]byte(twice)); err == nil || !strings.Contains(err.Error(), "named twice") {
		t.Fatalf("auditor twice: %v", err)
	}
}

func TestCredentialsReachTheManifestButNotItsHash(t *testing.T) {
	with := strings.Replace(cpuOnly, "    image: nginx:1.25", "    image: registry.example.com:5000/team/web:1\n    credentials:\n      host: https://registry.example.com:5000/\n      username: deploy\n      password: hunter2hunter2", 1)
	without := strings.Replace(cpuOnly, "    image: nginx:1.25", "    image: registry.example.com:5000/team/web:1", 1)
	a, err := Parse([]byte(with))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(without))
	if err != nil {
		t.Fatal(err)
	}
	c := a.Manifest.Groups[0].Services[0].Credentials
	if c == nil || c.Username != "deploy" || c.Password != "hunter2hunter2" {
		t.Fatalf("credentials %+v", c)
	}
	ha, _ := a.Manifest.HashHex()
	hb, _ := b.Manifest.HashHex()
	if ha != hb {
		t.Fatal("the password changes the manifest hash that goes on chain")
	}
	raw, _ := a.Manifest.CanonicalJSON()
	if !strings.Contains(string(raw), "hunter2hunter2") {
		t.Fatal("the manifest the provider gets has no password")
	}
	red, _ := a.Manifest.Redacted().CanonicalJSON()
	if strings.Contains(string(red), "hunter2hunter2") || a.Manifest.Groups[0].Services[0].Credentials.Password != "hunter2hunter2" {
		t.Fatalf("redaction: %s (and the original must be kept)", red)
	}
}

func TestIngressHostsAndHTTPOptionsReachTheManifest(t *testing.T) {
	f := strings.Replace(cpuOnly, "        as: 8080", "        as: 80\n        accept: [www.example.com, app.example.com]\n        http_options: {max_body_size: 1048576, read_timeout: 30000, next_cases: [error, timeout]}", 1)
	d, err := Parse([]byte(f))
	if err != nil {
		t.Fatal(err)
	}
	e := d.Manifest.Groups[0].Services[0].Expose[0]
	if !e.IsIngress() || !slices.Equal(e.Hosts, []string{"app.example.com", "www.example.com"}) {
		t.Fatalf("expose %+v", e)
	}
	if o := e.HTTPOptions; o == nil || o.MaxBodySize != 1<<20 || o.ReadTimeout != 30000 || !slices.Equal(o.NextCases, []string{"error", "timeout"}) {
		t.Fatalf("http options %+v", e.HTTPOptions)
	}
}

func TestPersistentVolumesGoOnChainAndToTheMount(t *testing.T) {
	f := strings.Replace(cpuOnly, "        storage: {size: 1Gi}", "        storage:\n          - size: 1Gi\n          - name: data\n            size: 10Gi\n            attributes: {persistent: true, class: beta2}", 1)
	f = strings.Replace(f, "    image: nginx:1.25", "    image: nginx:1.25\n    params:\n      storage:\n        data: {mount: /var/lib/data}", 1)
	d, err := Parse([]byte(f))
	if err != nil {
		t.Fatal(err)
	}
	u := d.Groups[0].Resources[0]
	if u.StorageBytes != 1<<30 || len(u.Persistent) != 1 || u.Persistent[0].Class != "beta2" || u.Persistent[0].Bytes != 10<<30 {
		t.Fatalf("order unit %+v", u)
	}
	m := d.Manifest.Groups[0].Services[0]
	if len(m.Mounts) != 1 || m.Mounts[0] != (ManifestMount{Volume: "data", Path: "/var/lib/data", Class: "beta2", SizeBytes: 10 << 30, Persistent: true}) {
		t.Fatalf("mounts %+v", m.Mounts)
	}
}

func TestGPUInterfaceGoesOnChain(t *testing.T) {
	f := strings.Replace(gpuBase, "                  ram: 80Gi", "                  ram: 80Gi\n                  interface: SXM", 1)
	d, err := Parse([]byte(f))
	if err != nil {
		t.Fatal(err)
	}
	if g := d.Groups[0].Resources[0].Gpu; g.Interface != "sxm" || d.Manifest.Groups[0].Services[0].Resources.GPUInterface != "sxm" {
		t.Fatalf("gpu spec %+v", g)
	}
}

// Files Akash deploys although gpunet reads them with one constraint less
// than written, each said with its line: GPU models naming different
// interfaces, and an unnamed persistent volume mounted nowhere.
func TestReadLooserWithAWarning(t *testing.T) {
	mixed := strings.Replace(gpuBase, "ram: 80Gi", "ram: 80Gi\n                  interface: sxm\n                - model: a100", 1)
	d, err := Parse([]byte(mixed))
	if err != nil {
		t.Fatal(err)
	}
	if g := d.Groups[0].Resources[0].Gpu; g.Interface != "" || !slices.Equal(g.Models, []string{"h100", "a100"}) {
		t.Errorf("gpu %+v: want any interface for h100 or a100", g)
	}
	if len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], "line 22: ") || !strings.Contains(d.Warnings[0], "accepts any") {
		t.Errorf("warnings %q", d.Warnings)
	}
	same := strings.Replace(gpuBase, "ram: 80Gi", "ram: 80Gi\n                  interface: sxm\n                - model: a100\n                  interface: sxm", 1)
	if d, err := Parse([]byte(same)); err != nil || d.Groups[0].Resources[0].Gpu.Interface != "sxm" || len(d.Warnings) != 0 {
		t.Errorf("one interface: %v %+v %q", err, d.Groups[0].Resources[0].Gpu, d.Warnings)
	}

	root := strings.Replace(gpuBase, "storage: {size: 20Gi}", "storage:\n          - size: 20Gi\n            attributes: {persistent: true, class: beta3}", 1)
	d, err = Parse([]byte(root))
	if err != nil {
		t.Fatal(err)
	}
	u := d.Groups[0].Resources[0]
	if u.StorageBytes != 20<<30 || len(u.Persistent) != 0 || len(d.Manifest.Groups[0].Services[0].Resources.Persistent) != 0 {
		t.Errorf("unit %+v: want a 20Gi ephemeral disk and no persistent volume", u)
	}
	if len(d.Warnings) != 1 || !strings.HasPrefix(d.Warnings[0], "line 13: ") || !strings.Contains(d.Warnings[0], "mounted nowhere") {
		t.Errorf("warnings %q", d.Warnings)
	}
	// Mounted, it stays a persistent volume.
	mounted := strings.Replace(root, "restart: never", "restart: never\n    params:\n      storage:\n        default: {mount: /data}", 1)
	if d, err = Parse([]byte(mounted)); err != nil || len(d.Groups[0].Resources[0].Persistent) != 1 || len(d.Warnings) != 0 {
		t.Errorf("mounted root: %v %q", err, d.Warnings)
	}
}

// /dev/shm takes a ram volume only; a disk there is refused by name, as
// on the daemon's side for a manifest that skipped the SDL.
func TestDevShmIsForRAM(t *testing.T) {
	disk := strings.Replace(akashStyle, "class: ram\n              persistent: false", "class: beta2\n              persistent: true", 1)
	if _, err := Parse([]byte(disk)); err == nil || !strings.Contains(err.Error(), `mount "/dev/shm" is under /dev`) {
		t.Fatalf("a persistent volume at /dev/shm: %v", err)
	}
	if err := CheckMountPath("/dev/shm", false); err == nil {
		t.Fatal("CheckMountPath let a disk cover /dev/shm")
	}
	if err := CheckMountPath("/dev/shm", true); err != nil {
		t.Fatal(err)
	}
}

// TestMinReliabilityReachesTheGroup: a placement's minReliability becomes
// its group's min_reliability on chain.
func TestMinReliabilityReachesTheGroup(t *testing.T) {
	f := strings.Replace(cpuOnly, "    anywhere:\n", "    anywhere:\n      minReliability: 0.9\n", 1)
	d, err := Parse([]byte(f))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Groups[0].MinReliability; got == nil || got.String() != "0.900000000000000000" {
		t.Fatalf("min_reliability %v, want 0.9", got)
	}
	if d, err := Parse([]byte(cpuOnly)); err != nil || d.Groups[0].MinReliability != nil {
		t.Fatalf("without minReliability: %v, %v; want none", d.Groups[0].MinReliability, err)
	}
}
