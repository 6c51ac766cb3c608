package sdl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	sdkmath "cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/bech32"

	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Deployment is what a file becomes: groups for MsgCreateDeployment and the
// manifest that goes only to the winning provider.
type Deployment struct {
	Groups   []markettypes.GroupSpec
	Manifest Manifest
	// Warnings are things read differently from how they were written
	// (an auditor address in another chain's prefix), with their lines.
	Warnings []string
}

// Manifest is what providers run. Its hash goes on chain (Hash): one
// built from a digest per group, so that a provider can be sent its own
// groups whole and only the digests of the others (For).
type Manifest struct {
	Version string          `json:"version"`
	Groups  []ManifestGroup `json:"groups"`
}

// ManifestGroup is one placement's services.
type ManifestGroup struct {
	Name     string            `json:"name"`
	Services []ManifestService `json:"services"`
	// Withheld, in a manifest sent to a provider that does not run this
	// group, is the group's digest in place of its services (none): the
	// provider can check the manifest's hash without reading another
	// provider's images, env or logins.
	Withheld string `json:"withheld,omitempty"`
}

// ManifestService is one service as a provider starts it.
type ManifestService struct {
	Name      string           `json:"name"`
	Image     string           `json:"image"`
	Command   []string         `json:"command"`
	Args      []string         `json:"args"`
	Env       []string         `json:"env"`
	Count     uint32           `json:"count"`
	Resources ManifestResource `json:"resources"`
	Expose    []ManifestExpose `json:"expose"`
	// Restart is "always" for services and "never" for jobs (run to exit).
	Restart string `json:"restart"`
	// DependsOn are the services (of this group) started before this one,
	// sorted.
	DependsOn []string `json:"depends_on,omitempty"`
	// Mounts are the service's volumes mounted at paths, by path.
	Mounts []ManifestMount `json:"mounts,omitempty"`
	// Credentials pull the image from a private registry. They go to the
	// provider inside the manifest only and are left out of its hash, so
	// nothing derived from the password reaches the chain.
	Credentials *Credentials `json:"credentials,omitempty"`
}

// Credentials are a private registry's login.
type Credentials struct {
	Host     string `json:"host"`
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email,omitempty"`
}

// Redacted is m with every password replaced, for printing.
func (m Manifest) Redacted() Manifest {
	out := m.withoutCredentials(func(c *Credentials) *Credentials {
		r := *c
		r.Password = "(redacted)"
		return &r
	})
	return out
}

// WithoutCredentials is m with every registry login removed: what a
// provider keeps on disk.
func (m Manifest) WithoutCredentials() Manifest {
	return m.withoutCredentials(func(*Credentials) *Credentials { return nil })
}

// withoutCredentials copies m, mapping each service's credentials.
func (m Manifest) withoutCredentials(f func(*Credentials) *Credentials) Manifest {
	out := Manifest{Version: m.Version, Groups: make([]ManifestGroup, len(m.Groups))}
	for i, g := range m.Groups {
		out.Groups[i] = ManifestGroup{Name: g.Name, Services: append([]ManifestService(nil), g.Services...), Withheld: g.Withheld}
		for j := range out.Groups[i].Services {
			if c := out.Groups[i].Services[j].Credentials; c != nil {
				out.Groups[i].Services[j].Credentials = f(c)
			}
		}
	}
	return out
}

// ManifestMount is a volume of the service's profile mounted at a path.
type ManifestMount struct {
	Volume   string `json:"volume"`
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only,omitempty"`
	// Class is the volume's storage class: "ram" is a memory-backed
	// filesystem (shared memory at /dev/shm) counted in the replica's
	// memory; any other is a persistent volume of that class.
	Class      string `json:"class"`
	SizeBytes  uint64 `json:"size_bytes"`
	Persistent bool   `json:"persistent,omitempty"`
}

// ManifestResource is one replica's resources.
type ManifestResource struct {
	CPUMillis    uint64   `json:"cpu_millis"`
	MemoryBytes  uint64   `json:"memory_bytes"`
	StorageBytes uint64   `json:"storage_bytes"`
	GPUUnits     uint32   `json:"gpu_units"`
	GPUModels    []string `json:"gpu_models"`
	GPUMemoryMiB uint64   `json:"gpu_memory_mib"`
	// GPUInterface is the form factor required (sxm, pcie; "" any).
	GPUInterface string `json:"gpu_interface,omitempty"`
	// Persistent are the replica's persistent volumes by class, in the
	// profile's order.
	Persistent []PersistentVolume `json:"persistent,omitempty"`
}

// PersistentVolume is one persistent volume's class and size.
type PersistentVolume struct {
	Name  string `json:"name"`
	Class string `json:"class"`
	Bytes uint64 `json:"bytes"`
}

// ManifestExpose is a published port.
type ManifestExpose struct {
	Port   uint32 `json:"port"`
	As     uint32 `json:"as"`
	Proto  string `json:"proto"`
	Global bool   `json:"global"`
	// Hosts are the accepted hostnames of an HTTP ingress (a global tcp
	// expose as port 80), routed to it besides the lease's default name.
	Hosts []string `json:"hosts,omitempty"`
	// HTTPOptions tune the ingress route.
	HTTPOptions *HTTPOptions `json:"http_options,omitempty"`
}

// HTTPOptions are an ingress route's limits, as Akash's SDL writes them.
type HTTPOptions struct {
	MaxBodySize uint64   `json:"max_body_size,omitempty"` // bytes
	ReadTimeout uint64   `json:"read_timeout,omitempty"`  // ms
	SendTimeout uint64   `json:"send_timeout,omitempty"`  // ms
	NextTries   uint64   `json:"next_tries,omitempty"`
	NextTimeout uint64   `json:"next_timeout,omitempty"` // ms
	NextCases   []string `json:"next_cases,omitempty"`
}

// IsIngress reports whether the expose is served by the provider's HTTP
// ingress: global, tcp, as port 80.
func (e ManifestExpose) IsIngress() bool {
	return e.Global && e.As == 80 && (e.Proto == "" || e.Proto == "tcp")
}

// CanonicalJSON is the manifest as JSON with sorted keys and no
// insignificant whitespace; providers compute it the same way.
func (m Manifest) CanonicalJSON() ([]byte, error) { return canonicalJSON(m) }

// canonicalJSON is v as JSON with sorted keys and no insignificant
// whitespace.
func canonicalJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	// Round-trip through a generic value: encoding/json sorts map keys, so
	// the result no longer depends on struct field order. Numbers stay as
	// their exact digits: through float64 an integer above 2^53 would change.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	return json.Marshal(generic)
}

// Hash identifies what a group runs: the SHA-256, in hex, of its JSON
// without registry logins. A provider labels a lease's containers with it,
// so an update knows which containers run which version.
func (g ManifestGroup) Hash() string {
	c := ManifestGroup{Name: g.Name, Services: append([]ManifestService(nil), g.Services...)}
	for i := range c.Services {
		c.Services[i].Credentials = nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain structs of strings and numbers always encode
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (f *File) build() (*Deployment, error) {
	switch f.Version {
	case "2.0", "2.1":
	case "":
		return nil, f.fail(`missing; gpunet reads SDL "2.0" and "2.1"`, "version")
	default:
		return nil, f.fail(fmt.Sprintf("%q is not supported; gpunet reads SDL \"2.0\" and \"2.1\"", f.Version), "version")
	}
	if f.Endpoints != nil {
		return nil, f.fail("leased IP endpoints are not offered by gpunet yet", "endpoints")
	}
	if f.Include != nil {
		return nil, f.fail("includes are not supported", "include")
	}
	if len(f.Services) == 0 {
		return nil, f.fail("at least one service is needed", "services")
	}
	if len(f.Deployment) == 0 {
		return nil, f.fail("at least one service must be deployed", "deployment")
	}
	for _, name := range sortedKeys(f.Services) {
		if err := f.checkService(name, f.Services[name]); err != nil {
			return nil, err
		}
	}

	// Group services by placement: one group per placement, in name order.
	byPlacement := map[string][]string{}
	for _, svc := range sortedKeys(f.Deployment) {
		if _, ok := f.Services[svc]; !ok {
			return nil, f.fail(fmt.Sprintf("service %q is not defined under services", svc), "deployment", svc)
		}
		if len(f.Deployment[svc]) == 0 {
			return nil, f.fail(fmt.Sprintf("service %q has no placement: give it one, e.g. \"dcloud: {profile: small, count: 1}\"", svc), "deployment", svc)
		}
		for _, pl := range sortedKeys(f.Deployment[svc]) {
			byPlacement[pl] = append(byPlacement[pl], svc)
		}
	}
	d := &Deployment{Manifest: Manifest{Version: f.Version}}
	defer func() { d.Warnings = f.warnings }()
	for _, pl := range sortedKeys(byPlacement) {
		group, mgroup, err := f.buildGroup(pl, byPlacement[pl])
		if err != nil {
			return nil, err
		}
		d.Groups = append(d.Groups, group)
		d.Manifest.Groups = append(d.Manifest.Groups, mgroup)
	}
	return d, nil
}

func (f *File) checkService(name string, s Service) error {
	if s.Image == "" {
		return f.fail("image is required", "services", name, "image")
	}
	if s.Credentials != nil {
		if _, err := f.credentials(name, s); err != nil {
			return err
		}
	}
	if p := s.Params; p != nil {
		if p.Permissions != nil {
			return f.fail("permissions (letting others read a lease's logs and events) are not offered by gpunet: only the owner reads them; remove it", "services", name, "params", "permissions")
		}
		if p.TEE != nil {
			return f.fail("tee (confidential computing) is not offered by gpunet yet; remove it", "services", name, "params", "tee")
		}
		for _, vol := range sortedKeys(p.Storage) {
			// /dev/shm is checked against the volume's class with the profile.
			if err := CheckMountPath(p.Storage[vol].Mount, true); err != nil {
				return f.fail(err.Error(), "services", name, "params", "storage", vol, "mount")
			}
		}
	}
	for _, dep := range s.dependencies() {
		if _, ok := f.Services[dep]; !ok {
			return f.fail(fmt.Sprintf("service %q is not defined", dep), "services", name, s.dependencyField())
		}
		if dep == name {
			return f.fail("a service cannot depend on itself", "services", name, s.dependencyField())
		}
	}
	switch s.Restart {
	case "", "always", "never":
	default:
		return f.fail(fmt.Sprintf("%q: use always (a service) or never (a job that runs to exit)", s.Restart), "services", name, "restart")
	}
	if err := CheckEnv(NormalizeEnv(s.Env)); err != nil {
		return f.fail(err.Error(), "services", name, "env")
	}
	for i, e := range s.Expose {
		where := []string{"services", name, "expose", at(i)}
		if e.Port == 0 || e.Port > 65535 || e.As > 65535 {
			return f.fail("port must be 1-65535", where...)
		}
		switch strings.ToLower(e.Proto) {
		case "", "tcp", "udp":
		default:
			return f.fail(fmt.Sprintf("proto %q must be tcp or udp", e.Proto), append(where, "proto")...)
		}
		for j, to := range e.To {
			if to.IP != "" {
				return f.fail(fmt.Sprintf("leased IP %q is not offered by gpunet yet", to.IP), append(where, "to", at(j), "ip")...)
			}
			if to.Service != "" {
				if _, ok := f.Services[to.Service]; !ok {
					return f.fail(fmt.Sprintf("service %q is not defined", to.Service), append(where, "to", at(j), "service")...)
				}
			}
		}
		ingress := e.As == 80 || e.As == 0 && e.Port == 80
		ingress = ingress && strings.ToLower(e.Proto) != "udp" && slices.ContainsFunc(e.To, func(t ExposeTarget) bool { return t.Global })
		if len(e.Accept) > 0 {
			if !ingress {
				return f.fail("accept hostnames need an HTTP ingress: a global tcp expose as port 80", append(where, "accept")...)
			}
			if len(e.Accept) > MaxHosts {
				return f.fail(fmt.Sprintf("%d hostnames, at most %d", len(e.Accept), MaxHosts), append(where, "accept")...)
			}
			for k, h := range e.Accept {
				if err := CheckHostname(h); err != nil {
					return f.fail(err.Error(), append(where, "accept", at(k))...)
				}
			}
		}
		if e.HTTPOptions != nil {
			if !ingress {
				return f.fail("http_options need an HTTP ingress: a global tcp expose as port 80", append(where, "http_options")...)
			}
			if _, err := f.httpOptions(e.HTTPOptions, append(where, "http_options")); err != nil {
				return err
			}
		}
	}
	return nil
}

// MaxHosts caps the hostnames one expose accepts.
const MaxHosts = 16

// CheckHostname accepts a lower-case DNS name of two or more labels.
func CheckHostname(h string) error {
	if len(h) == 0 || len(h) > 253 || !strings.Contains(h, ".") {
		return fmt.Errorf("%q is not a hostname (e.g. app.example.com)", h)
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a hostname (e.g. app.example.com)", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not a lower-case hostname (e.g. app.example.com)", h)
			}
		}
	}
	return nil
}

// httpOptions reads an expose's http_options within Akash's bounds.
func (f *File) httpOptions(raw map[string]any, where []string) (*HTTPOptions, error) {
	var o HTTPOptions
	num := func(k string, max uint64) (uint64, error) {
		var n uint64
		switch v := raw[k].(type) {
		case int:
			if v < 0 {
				return 0, f.fail(fmt.Sprintf("%s must not be negative", k), append(where, k)...)
			}
			n = uint64(v)
		default:
			return 0, f.fail(fmt.Sprintf("%s must be a whole number", k), append(where, k)...)
		}
		if max > 0 && n > max {
			return 0, f.fail(fmt.Sprintf("%s %d is more than %d", k, n, max), append(where, k)...)
		}
		return n, nil
	}
	var err error
	for _, k := range sortedKeys(raw) {
		switch k {
		case "max_body_size":
			o.MaxBodySize, err = num(k, 100<<20)
		case "read_timeout":
			o.ReadTimeout, err = num(k, 60_000)
		case "send_timeout":
			o.SendTimeout, err = num(k, 60_000)
		case "next_tries":
			o.NextTries, err = num(k, 16)
		case "next_timeout":
			o.NextTimeout, err = num(k, 0)
		case "proxy_buffer_size":
			_, err = num(k, 1<<20) // read and bounded; Go's proxy sizes its own buffers
		case "next_cases":
			list, ok := raw[k].([]any)
			if !ok {
				return nil, f.fail("next_cases must be a list", append(where, k)...)
			}
			for i, c := range list {
				cs := fmt.Sprint(c)
				switch cs {
				case "error", "timeout", "500", "502", "503", "504", "403", "404", "429", "off":
				default:
					return nil, f.fail(fmt.Sprintf("%q is not a next case (error, timeout, 500, 502, 503, 504, 403, 404, 429, off)", cs), append(where, k, at(i))...)
				}
				o.NextCases = append(o.NextCases, cs)
			}
		default:
			return nil, f.fail(fmt.Sprintf("%s is not an http option (max_body_size, read_timeout, send_timeout, next_tries, next_timeout, next_cases, proxy_buffer_size)", k), append(where, k)...)
		}
		if err != nil {
			return nil, err
		}
	}
	return &o, nil
}

func (f *File) buildGroup(placement string, services []string) (markettypes.GroupSpec, ManifestGroup, error) {
	// services is never empty and sorted: point at the first reference.
	ref := []string{"deployment", services[0], placement}
	pp, ok := f.Profiles.Placement[placement]
	if !ok {
		return markettypes.GroupSpec{}, ManifestGroup{}, f.fail(fmt.Sprintf("placement profile %q is not defined under profiles.placement", placement), ref...)
	}
	if placement == "" || len(placement) > MaxPlacementName {
		return markettypes.GroupSpec{}, ManifestGroup{}, f.fail(fmt.Sprintf("placement name must be 1-%d characters", MaxPlacementName), ref...)
	}
	if len(services) > MaxServicesPerPlacement {
		return markettypes.GroupSpec{}, ManifestGroup{}, f.fail(fmt.Sprintf("%d services deployed in placement %q, at most %d", len(services), placement, MaxServicesPerPlacement), ref...)
	}
	group := markettypes.GroupSpec{Name: placement}
	if pp.SignedBy != nil {
		sb, err := f.signedBy(placement, *pp.SignedBy)
		if err != nil {
			return group, ManifestGroup{}, err
		}
		group.SignedBy = sb
	}
	if n := pp.MinReliability; n.Kind != 0 {
		r, err := sdkmath.LegacyNewDecFromStr(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil || r.IsNegative() || r.GT(sdkmath.LegacyOneDec()) {
			return group, ManifestGroup{}, f.fail(fmt.Sprintf("%q is not a reliability score: give a number from 0 to 1, e.g. 0.9", n.Value), "profiles", "placement", placement, "minReliability")
		}
		group.MinReliability = &r
	}
	for _, k := range sortedKeys(pp.Attributes) {
		group.Requirements = append(group.Requirements, providertypes.Attribute{Key: k, Value: pp.Attributes[k]})
	}
	if err := providertypes.ValidateAttributes(group.Requirements); err != nil {
		return group, ManifestGroup{}, f.fail(err.Error(), "profiles", "placement", placement, "attributes")
	}
	mgroup := ManifestGroup{Name: placement}
	total := sdkmath.LegacyZeroDec()
	for _, svcName := range services {
		dp := f.Deployment[svcName][placement]
		where := []string{"deployment", svcName, placement}
		if dp.Count == 0 || dp.Count > MaxCount {
			return group, mgroup, f.fail(fmt.Sprintf("count must be 1-%d", MaxCount), append(where, "count")...)
		}
		cp, ok := f.Profiles.Compute[dp.Profile]
		if !ok {
			return group, mgroup, f.fail(fmt.Sprintf("compute profile %q is not defined under profiles.compute", dp.Profile), append(where, "profile")...)
		}
		res, vols, err := f.resources(dp.Profile, cp.Resources)
		if err != nil {
			return group, mgroup, err
		}
		res, vols = f.unmountedRootDisk(svcName, dp.Profile, res, vols)
		price, ok := pp.Pricing[dp.Profile]
		if !ok {
			return group, mgroup, f.fail(fmt.Sprintf("no price for compute profile %q", dp.Profile), "profiles", "placement", placement, "pricing")
		}
		if price.Denom != Denom {
			return group, mgroup, f.fail(fmt.Sprintf("denom %q: gpunet prices are per hour in %s (1 GPN = 1000000%s)", price.Denom, Denom, Denom), "profiles", "placement", placement, "pricing", dp.Profile, "denom")
		}
		amount, err := parsePrice(price.Amount)
		if err != nil {
			return group, mgroup, f.fail(err.Error(), "profiles", "placement", placement, "pricing", dp.Profile, "amount")
		}
		total = total.Add(amount.MulInt64(int64(dp.Count)))

		unit := markettypes.ResourceUnit{
			Count: dp.Count, CpuMillis: res.CPUMillis, MemoryBytes: res.MemoryBytes, StorageBytes: res.StorageBytes,
			Gpu: markettypes.GPUSpec{Units: res.GPUUnits, Models: res.GPUModels, MinMemoryMib: res.GPUMemoryMiB, Interface: res.GPUInterface},
		}
		for _, v := range res.Persistent {
			unit.Persistent = append(unit.Persistent, markettypes.PersistentVolume{Class: v.Class, Bytes: v.Bytes})
		}
		group.Resources = append(group.Resources, unit)
		svc := f.Services[svcName]
		restart := svc.Restart
		if restart == "" {
			restart = "always"
		}
		ms := ManifestService{
			Name: svcName, Image: svc.Image, Command: nonNil(svc.Command), Args: nonNil(svc.Args), Env: nonNil(NormalizeEnv(svc.Env)),
			Count: dp.Count, Resources: res, Restart: restart, Expose: []ManifestExpose{},
		}
		if ms.Credentials, err = f.credentials(svcName, svc); err != nil {
			return group, mgroup, err
		}
		for _, dep := range svc.dependencies() {
			if !slices.Contains(services, dep) {
				return group, mgroup, f.fail(fmt.Sprintf("depends on %q, which is not deployed in placement %q: services start in order only within one placement", dep, placement), "services", svcName, svc.dependencyField())
			}
			ms.DependsOn = append(ms.DependsOn, dep)
		}
		if ms.Mounts, err = f.mounts(svcName, svc, dp.Profile, vols); err != nil {
			return group, mgroup, err
		}
		for _, e := range svc.Expose {
			me := ManifestExpose{Port: e.Port, As: e.As, Proto: strings.ToLower(e.Proto)}
			if me.As == 0 {
				me.As = me.Port
			}
			if me.Proto == "" {
				me.Proto = "tcp"
			}
			for _, to := range e.To {
				me.Global = me.Global || to.Global
			}
			if me.IsIngress() {
				me.Hosts = append([]string(nil), e.Accept...)
				sort.Strings(me.Hosts)
				if e.HTTPOptions != nil {
					if me.HTTPOptions, err = f.httpOptions(e.HTTPOptions, []string{"services", svcName, "expose"}); err != nil {
						return group, mgroup, err
					}
				}
			}
			ms.Expose = append(ms.Expose, me)
		}
		mgroup.Services = append(mgroup.Services, ms)
	}
	if err := f.checkDependencyCycles(services); err != nil {
		return group, mgroup, err
	}
	group.MaxPrice = sdk.NewDecCoinFromDec(Denom, total)
	return group, mgroup, nil
}

// credentials reads a service's private-registry login: host, username
// and password are required (email optional), and the image must come
// from that host, the only registry the login is sent to.
func (f *File) credentials(name string, s Service) (*Credentials, error) {
	if s.Credentials == nil {
		return nil, nil
	}
	where := []string{"services", name, "credentials"}
	var c Credentials
	for _, k := range sortedKeys(s.Credentials) {
		v, ok := s.Credentials[k].(string)
		if !ok {
			return nil, f.fail(fmt.Sprintf("%s must be a string", k), append(where, k)...)
		}
		switch k {
		case "host":
			c.Host = v
		case "username":
			c.Username = v
		case "password":
			c.Password = v
		case "email":
			c.Email = v
		default:
			return nil, f.fail(fmt.Sprintf("field %s is not a credentials field (host, username, password, email)", k), append(where, k)...)
		}
	}
	for _, req := range []struct{ k, v string }{{"host", c.Host}, {"username", c.Username}, {"password", c.Password}} {
		if req.v == "" {
			return nil, f.fail(req.k+" is required", append(where, req.k)...)
		}
	}
	if err := CheckLogin(s.Image, c.Host); err != nil {
		return nil, f.fail(err.Error(), append(where, "host")...)
	}
	return &c, nil
}

// signedBy reads a placement's auditors. An address written with another
// chain's bech32 prefix (akash1...) is the same key: it is read with
// gpunet's prefix, and a warning says so.
func (f *File) signedBy(placement string, sb SignedBy) (markettypes.SignedBy, error) {
	var out markettypes.SignedBy
	convert := func(list []string, field string) ([]string, error) {
		var res []string
		for i, a := range list {
			where := []string{"profiles", "placement", placement, "signedBy", field, at(i)}
			hrp, data, err := bech32.DecodeAndConvert(a)
			if err != nil {
				return nil, f.fail(fmt.Sprintf("%q is not an account address: %v", a, err), where...)
			}
			if len(data) != 20 && len(data) != 32 {
				return nil, f.fail(fmt.Sprintf("%q is not an account address (%d bytes)", a, len(data)), where...)
			}
			addr := sdk.AccAddress(data).String()
			if hrp != sdk.GetConfig().GetBech32AccountAddrPrefix() {
				f.warn(fmt.Sprintf("auditor %s is read as %s (the same key with gpunet's prefix)", a, addr), where...)
			}
			res = append(res, addr)
		}
		return res, nil
	}
	var err error
	if out.AllOf, err = convert(sb.AllOf, "allOf"); err != nil {
		return out, err
	}
	if out.AnyOf, err = convert(sb.AnyOf, "anyOf"); err != nil {
		return out, err
	}
	if err := markettypes.ValidateSignedBy(out); err != nil {
		return out, f.fail(err.Error(), "profiles", "placement", placement, "signedBy")
	}
	return out, nil
}

// dependencies are the services s starts after, from either spelling,
// sorted and without repeats.
func (s Service) dependencies() []string {
	out := append(append([]string(nil), s.DependsOn...), s.Dependencies...)
	sort.Strings(out)
	return slices.Compact(out)
}

// dependencyField is the key the service wrote its dependencies under.
func (s Service) dependencyField() string {
	if len(s.DependsOn) > 0 {
		return "depends_on"
	}
	return "dependencies"
}

// checkDependencyCycles refuses services of one placement that wait on
// each other, naming one service of the cycle.
func (f *File) checkDependencyCycles(services []string) error {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var visit func(name string) string
	visit = func(name string) string {
		switch state[name] {
		case visiting:
			return name
		case done:
			return ""
		}
		state[name] = visiting
		for _, dep := range f.Services[name].dependencies() {
			if c := visit(dep); c != "" {
				return c
			}
		}
		state[name] = done
		return ""
	}
	for _, name := range services {
		if c := visit(name); c != "" {
			return f.fail(fmt.Sprintf("services depend on each other in a cycle through %q", c), "services", c, f.Services[c].dependencyField())
		}
	}
	return nil
}

// unmountedRootDisk reads a profile's unnamed volume marked persistent but
// mounted nowhere by the service as the container's own disk, with a
// warning: Akash would reserve a claim the container cannot reach, and
// templates write it meaning "a disk this size".
func (f *File) unmountedRootDisk(svcName, profile string, res ManifestResource, vols []volume) (ManifestResource, []volume) {
	i := slices.IndexFunc(vols, func(v volume) bool { return v.Name == defaultVolume && v.Persistent })
	if i < 0 {
		return res, vols
	}
	if p := f.Services[svcName].Params; p != nil {
		if _, mounted := p.Storage[defaultVolume]; mounted {
			return res, vols
		}
	}
	v := vols[i]
	f.warn(fmt.Sprintf("persistent volume %q is mounted nowhere by service %q: gpunet gives it as the container's own (ephemeral) disk; mount it under params.storage.%s to keep its data", defaultVolume, svcName, defaultVolume), "profiles", "compute", profile, "resources", "storage")
	vols = slices.Clone(vols)
	vols[i] = volume{Name: v.Name, Size: v.Size}
	res.StorageBytes += v.Size
	res.Persistent = slices.DeleteFunc(slices.Clone(res.Persistent), func(pv PersistentVolume) bool { return pv.Name == defaultVolume })
	return res, vols
}

// mounts are the service's params.storage entries, each naming a volume
// of its compute profile: a ram volume becomes a memory-backed mount; a
// persistent one is refused by name (not offered yet); the profile's
// ephemeral volume is the container's own disk and is not mounted.
func (f *File) mounts(svcName string, svc Service, profile string, vols []volume) ([]ManifestMount, error) {
	var out []ManifestMount
	byName := map[string]volume{}
	for _, v := range vols {
		byName[v.Name] = v
	}
	if svc.Params != nil {
		for _, name := range sortedKeys(svc.Params.Storage) {
			p := svc.Params.Storage[name]
			where := []string{"services", svcName, "params", "storage", name}
			v, ok := byName[name]
			if !ok {
				return nil, f.fail(fmt.Sprintf("compute profile %q has no volume named %q", profile, name), where...)
			}
			if err := CheckMountPath(p.Mount, v.Class == ClassRAM); err != nil {
				return nil, f.fail(err.Error(), append(where, "mount")...)
			}
			switch {
			case v.Class == ClassRAM:
				out = append(out, ManifestMount{Volume: name, Path: p.Mount, ReadOnly: p.ReadOnly, Class: ClassRAM, SizeBytes: v.Size})
			case v.Persistent:
				out = append(out, ManifestMount{Volume: name, Path: p.Mount, ReadOnly: p.ReadOnly, Class: v.Class, SizeBytes: v.Size, Persistent: true})
			default:
				return nil, f.fail(fmt.Sprintf("volume %q is the container's own ephemeral disk and cannot be mounted; give it attributes {class: ram} for shared memory", name), where...)
			}
		}
	}
	for _, v := range vols {
		if v.Class == ClassRAM && !slices.ContainsFunc(out, func(m ManifestMount) bool { return m.Volume == v.Name }) {
			return nil, f.fail(fmt.Sprintf("ram volume %q is not mounted: add params.storage.%s.mount (e.g. /dev/shm)", v.Name, v.Name), "services", svcName)
		}
		if v.Persistent && !slices.ContainsFunc(out, func(m ManifestMount) bool { return m.Volume == v.Name }) {
			return nil, f.fail(fmt.Sprintf("persistent volume %q is not mounted: add params.storage.%s.mount (e.g. /data)", v.Name, v.Name), "services", svcName)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	for i := 1; i < len(out); i++ {
		if out[i].Path == out[i-1].Path {
			return nil, f.fail(fmt.Sprintf("two volumes are mounted at %s", out[i].Path), "services", svcName, "params", "storage")
		}
	}
	return out, nil
}

// ClassRAM is the storage class of a memory-backed volume (Akash's
// shared-memory volume for multi-GPU NCCL and vLLM workloads).
const ClassRAM = "ram"

// volume is one storage volume of a compute profile.
// defaultVolume is the name of a profile's unnamed volume, as in Akash.
const defaultVolume = "default"

type volume struct {
	Name       string
	Size       uint64
	Class      string // "" for the container's ephemeral disk
	Persistent bool
}

func (f *File) resources(profile string, r Resources) (ManifestResource, []volume, error) {
	where := []string{"profiles", "compute", profile, "resources"}
	var out ManifestResource
	var vols []volume
	var err error
	if out.CPUMillis, err = parseCPU(r.CPU.Units); err != nil {
		return out, nil, f.fail(err.Error(), append(where, "cpu", "units")...)
	}
	if out.CPUMillis > MaxCPUMillis {
		return out, nil, f.fail(fmt.Sprintf("%d millicores is more than %d", out.CPUMillis, MaxCPUMillis), append(where, "cpu", "units")...)
	}
	if len(r.CPU.Attributes) > 0 {
		return out, nil, f.fail("CPU attributes (such as arch) are not offered by gpunet yet; remove them", append(where, "cpu", "attributes")...)
	}
	if out.MemoryBytes, err = parseSize(r.Memory.Size.Value); err != nil {
		return out, nil, f.fail(err.Error(), append(where, "memory", "size")...)
	}
	if out.MemoryBytes > MaxMemoryBytes {
		return out, nil, f.fail("more than 16Ti", append(where, "memory", "size")...)
	}
	if vols, err = f.storage(r.Storage, where); err != nil {
		return out, nil, err
	}
	// Ephemeral volumes are the container's disk; a ram volume's size is
	// memory the replica holds (a tmpfs is charged to its memory).
	for _, v := range vols {
		switch {
		case v.Class == ClassRAM:
			out.MemoryBytes += v.Size
		case v.Persistent:
			out.Persistent = append(out.Persistent, PersistentVolume{Name: v.Name, Class: v.Class, Bytes: v.Size})
		default:
			out.StorageBytes += v.Size
		}
	}
	if out.MemoryBytes > MaxMemoryBytes {
		return out, nil, f.fail("memory and ram volumes together: more than 16Ti", append(where, "memory", "size")...)
	}
	if r.GPU == nil {
		out.GPUModels = []string{}
		return out, vols, nil
	}
	units, err := strconv.ParseUint(strings.TrimSpace(r.GPU.Units.Value), 10, 32)
	if err != nil || units > MaxGPUUnits || r.GPU.Units.Kind != yaml.ScalarNode {
		return out, nil, f.fail(fmt.Sprintf("%q must be a whole number 0-%d", r.GPU.Units.Value, MaxGPUUnits), append(where, "gpu", "units")...)
	}
	out.GPUUnits = uint32(units)
	out.GPUModels = []string{}
	var ifaces []string
	for _, vendor := range sortedKeys(r.GPU.Attributes.Vendor) {
		if vendor != "nvidia" {
			return out, nil, f.fail(fmt.Sprintf("vendor %q: gpunet providers offer nvidia GPUs", vendor), append(where, "gpu", "attributes", "vendor", vendor)...)
		}
		models := r.GPU.Attributes.Vendor[vendor]
		if len(models) > MaxGPUModels {
			return out, nil, f.fail(fmt.Sprintf("%d models, at most %d", len(models), MaxGPUModels), append(where, "gpu", "attributes", "vendor", vendor)...)
		}
		for i, m := range models {
			model := append(where, "gpu", "attributes", "vendor", vendor, at(i))
			slug := providertypes.CanonicalGPUModel(m.Model)
			if m.Model == "" || !providertypes.IsGPUModelSlug(slug) {
				return out, nil, f.fail(fmt.Sprintf("%q is not a GPU model", m.Model), append(model, "model")...)
			}
			iface := strings.ToLower(m.Interface)
			switch iface {
			case "", "sxm", "pcie":
			default:
				return out, nil, f.fail(fmt.Sprintf("interface %q must be sxm or pcie", m.Interface), append(model, "interface")...)
			}
			ifaces = append(ifaces, iface)
			out.GPUModels = append(out.GPUModels, slug)
			if m.RAM != "" {
				b, err := parseSize(m.RAM)
				if err != nil {
					return out, nil, f.fail(err.Error(), append(model, "ram")...)
				}
				mib := b >> 20
				if out.GPUMemoryMiB == 0 || mib < out.GPUMemoryMiB {
					out.GPUMemoryMiB = mib // the least any acceptable model may have
				}
			}
		}
	}
	// The order carries one interface per requirement. Models naming
	// different ones (or one naming none) make it any interface, as the
	// least any acceptable model needs, the way ram is read.
	if len(ifaces) > 0 {
		out.GPUInterface = ifaces[0]
		for i, iface := range ifaces {
			if iface != out.GPUInterface {
				out.GPUInterface = ""
				f.warn("GPU models name different interfaces (or some none): gpunet matches one interface per requirement, so this one accepts any; write one profile per interface to require it", append(where, "gpu", "attributes", "vendor", "nvidia", at(i), "interface")...)
				break
			}
		}
	}
	if out.GPUUnits == 0 && len(out.GPUModels) > 0 {
		return out, nil, f.fail("GPU models given but units is 0", append(where, "gpu", "units")...)
	}
	return out, vols, nil
}

// storage reads either a single {size} or a list of volumes: the
// container's ephemeral disk, and ram volumes (class ram, not persistent).
// Persistent classes are refused by name.
func (f *File) storage(n yaml.Node, where []string) ([]volume, error) {
	where = append(where, "storage")
	type rawVolume struct {
		Name       string         `yaml:"name"`
		Size       string         `yaml:"size"`
		Attributes map[string]any `yaml:"attributes"`
	}
	// Each volume with the path to it; a single {size} has no index.
	type located struct {
		node *yaml.Node
		path []string
	}
	var nodes []located
	switch n.Kind {
	case 0:
		return nil, f.fail("missing (e.g. storage: {size: 10Gi})", where...)
	case yaml.MappingNode:
		nodes = []located{{&n, where}}
	case yaml.SequenceNode:
		if len(n.Content) > MaxVolumes {
			return nil, f.fail(fmt.Sprintf("%d volumes, at most %d", len(n.Content), MaxVolumes), where...)
		}
		for i, c := range n.Content {
			nodes = append(nodes, located{c, append(where[:len(where):len(where)], at(i))})
		}
	default:
		return nil, f.fail("must be {size: ...} or a list of volumes", where...)
	}
	var total uint64
	var out []volume
	for i, vn := range nodes {
		// yaml.Node.Decode does not refuse unknown keys as the file's
		// decoder does, so look for them here rather than drop them.
		if vn.node.Kind == yaml.MappingNode {
			for k := 0; k+1 < len(vn.node.Content); k += 2 {
				switch key := vn.node.Content[k].Value; key {
				case "name", "size", "attributes":
				default:
					return nil, f.fail(fmt.Sprintf("field %s is not a volume field (name, size, attributes)", key), append(vn.path, key)...)
				}
			}
		}
		var v rawVolume
		if err := vn.node.Decode(&v); err != nil {
			return nil, f.fail(err.Error(), vn.path...)
		}
		vol := volume{Name: v.Name}
		if vol.Name == "" {
			vol.Name = defaultVolume
		}
		if slices.ContainsFunc(out, func(o volume) bool { return o.Name == vol.Name }) {
			return nil, f.fail(fmt.Sprintf("two volumes are named %q", vol.Name), append(vn.path, "name")...)
		}
		for _, k := range sortedKeys(v.Attributes) {
			at := append(vn.path, "attributes", k)
			switch k {
			case "class":
				c, ok := v.Attributes[k].(string)
				if !ok || c == "" {
					return nil, f.fail("class must be a name (ram, beta1, beta2, beta3, default)", at...)
				}
				vol.Class = c
			case "persistent":
				switch p := v.Attributes[k].(type) {
				case bool:
					vol.Persistent = p
				case string:
					b, err := strconv.ParseBool(p)
					if err != nil {
						return nil, f.fail(fmt.Sprintf("persistent %q is not true or false", p), at...)
					}
					vol.Persistent = b
				default:
					return nil, f.fail("persistent must be true or false", at...)
				}
			default:
				return nil, f.fail(fmt.Sprintf("attribute %s is not a volume attribute (class, persistent)", k), at...)
			}
		}
		switch {
		case vol.Class == ClassRAM && vol.Persistent:
			return nil, f.fail(fmt.Sprintf("volume %q: a ram volume cannot be persistent", vol.Name), append(vn.path, "attributes", "persistent")...)
		case vol.Persistent:
			if vol.Class == "" {
				vol.Class = "default"
			}
			if !providertypes.IsStorageClass(vol.Class) {
				return nil, f.fail(fmt.Sprintf("volume %q: %q is not a storage class", vol.Name, vol.Class), append(vn.path, "attributes", "class")...)
			}
		case vol.Class != "" && vol.Class != ClassRAM:
			return nil, f.fail(fmt.Sprintf("volume %q: class %s is for persistent volumes (persistent: true)", vol.Name, vol.Class), append(vn.path, "attributes", "class")...)
		}
		b, err := parseSize(v.Size)
		if err != nil {
			return nil, f.fail(fmt.Sprintf("volume %d size: %v", i, err), append(vn.path, "size")...)
		}
		if b > MaxVolumeBytes {
			return nil, f.fail(fmt.Sprintf("volume %d size: more than 256Ti", i), append(vn.path, "size")...)
		}
		// Compared before adding, so the sum cannot wrap around.
		if b > MaxStorageBytes-total {
			return nil, f.fail("all volumes together: more than 1Pi", where...)
		}
		total += b
		vol.Size = b
		out = append(out, vol)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
