package types

import (
	"encoding/hex"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"

	errorsmod "cosmossdk.io/errors"
)

// Limits on a provider's description; they bound state per provider.
const (
	MaxHostURILength   = 256
	MaxAttributes      = 32
	MaxAttributeKey    = 64
	MaxAttributeValue  = 128
	MaxGPUEntries      = 16
	MaxGPUCount        = 4096
	MaxVendorLength    = 32
	MaxInterfaceLength = 16
	MaxInfoLength      = 256
)

var (
	attributeKeyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*$`)
	lowerWordPattern    = regexp.MustCompile(`^[a-z0-9]+$`)
)

// Description is everything a provider declares about itself besides its
// owner and bond; MsgRegisterProvider and MsgUpdateProvider share it.
type Description struct {
	HostURI       string
	TLSCertSHA256 string
	Attributes    []Attribute
	GPUs          []GPU
	Capacity      Capacity
	Info          Info
}

// Validate checks every field and returns the first problem as a registered
// error naming the field.
func (d Description) Validate() error {
	if err := ValidateHostURI(d.HostURI); err != nil {
		return err
	}
	if err := ValidateCertHash(d.TLSCertSHA256); err != nil {
		return err
	}
	if err := ValidateAttributes(d.Attributes); err != nil {
		return err
	}
	if err := ValidateGPUs(d.GPUs); err != nil {
		return err
	}
	if d.Capacity.CpuMillis == 0 {
		return errorsmod.Wrap(ErrInvalidCapacity, "capacity.cpu_millis must be positive")
	}
	if d.Capacity.MemoryBytes == 0 {
		return errorsmod.Wrap(ErrInvalidCapacity, "capacity.memory_bytes must be positive")
	}
	if err := ValidateStorageClasses(d.Capacity.StorageClasses); err != nil {
		return err
	}
	return ValidateInfo(d.Info)
}

// MaxStorageClasses caps the storage classes one provider declares.
const MaxStorageClasses = 16

// storageClassPattern is a storage class name: beta1, beta2, beta3,
// default, or the operator's own lower-case word.
var storageClassPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)

// IsStorageClass reports whether name is a well-formed storage class.
func IsStorageClass(name string) bool { return storageClassPattern.MatchString(name) && name != "ram" }

// ValidateStorageClasses requires unique, well-formed names with space.
func ValidateStorageClasses(cs []StorageClass) error {
	if len(cs) > MaxStorageClasses {
		return errorsmod.Wrapf(ErrInvalidCapacity, "%d storage classes, at most %d", len(cs), MaxStorageClasses)
	}
	for i, c := range cs {
		if !IsStorageClass(c.Name) {
			return errorsmod.Wrapf(ErrInvalidCapacity, "storage_classes[%d]: %q must be a lower-case word of at most 16 characters (not ram)", i, c.Name)
		}
		if c.Bytes == 0 {
			return errorsmod.Wrapf(ErrInvalidCapacity, "storage_classes[%d] (%s): bytes must be positive", i, c.Name)
		}
		for _, o := range cs[:i] {
			if o.Name == c.Name {
				return errorsmod.Wrapf(ErrInvalidCapacity, "storage_classes[%d]: class %s twice", i, c.Name)
			}
		}
	}
	return nil
}

// ValidateHostURI requires an absolute https URI with a host and nothing
// secret in it.
func ValidateHostURI(s string) error {
	if s == "" {
		return errorsmod.Wrap(ErrInvalidHostURI, "host_uri is empty")
	}
	if len(s) > MaxHostURILength {
		return errorsmod.Wrapf(ErrInvalidHostURI, "host_uri is %d bytes, at most %d", len(s), MaxHostURILength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return errorsmod.Wrapf(ErrInvalidHostURI, "host_uri %q: %v", s, err)
	}
	if u.Scheme != "https" {
		return errorsmod.Wrapf(ErrInvalidHostURI, "host_uri %q must use https", s)
	}
	if u.Hostname() == "" {
		return errorsmod.Wrapf(ErrInvalidHostURI, "host_uri %q has no host", s)
	}
	if u.User != nil {
		return errorsmod.Wrapf(ErrInvalidHostURI, "host_uri must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errorsmod.Wrapf(ErrInvalidHostURI, "host_uri %q must not have a query or fragment", s)
	}
	return nil
}

// ValidateCertHash requires 64 lower-case hex digits (a SHA-256).
func ValidateCertHash(s string) error {
	if len(s) != 64 {
		return errorsmod.Wrapf(ErrInvalidCertHash, "tls_cert_sha256 must be 64 hex digits, got %d characters", len(s))
	}
	if s != strings.ToLower(s) {
		return errorsmod.Wrap(ErrInvalidCertHash, "tls_cert_sha256 must be lower-case hex")
	}
	if _, err := hex.DecodeString(s); err != nil {
		return errorsmod.Wrapf(ErrInvalidCertHash, "tls_cert_sha256 is not hex: %v", err)
	}
	return nil
}

// ValidateAttributes requires unique, well-formed keys and bounded values.
func ValidateAttributes(attrs []Attribute) error {
	if len(attrs) > MaxAttributes {
		return errorsmod.Wrapf(ErrInvalidAttributes, "%d attributes, at most %d", len(attrs), MaxAttributes)
	}
	seen := make(map[string]bool, len(attrs))
	for i, a := range attrs {
		if len(a.Key) == 0 || len(a.Key) > MaxAttributeKey || !attributeKeyPattern.MatchString(a.Key) {
			return errorsmod.Wrapf(ErrInvalidAttributes, "attributes[%d]: key %q must be 1-%d lower-case letters, digits or ._/-", i, a.Key, MaxAttributeKey)
		}
		if len(a.Value) == 0 || len(a.Value) > MaxAttributeValue {
			return errorsmod.Wrapf(ErrInvalidAttributes, "attributes[%d] (%s): value must be 1-%d bytes", i, a.Key, MaxAttributeValue)
		}
		if seen[a.Key] {
			return errorsmod.Wrapf(ErrInvalidAttributes, "attributes[%d]: duplicate key %q", i, a.Key)
		}
		seen[a.Key] = true
	}
	return nil
}

// ValidateGPUs requires canonical model slugs and positive counts and memory.
func ValidateGPUs(gpus []GPU) error {
	if len(gpus) > MaxGPUEntries {
		return errorsmod.Wrapf(ErrInvalidGPU, "%d gpu entries, at most %d", len(gpus), MaxGPUEntries)
	}
	seen := make(map[string]bool, len(gpus))
	for i, g := range gpus {
		where := fmt.Sprintf("gpus[%d]", i)
		if len(g.Vendor) == 0 || len(g.Vendor) > MaxVendorLength || !lowerWordPattern.MatchString(g.Vendor) {
			return errorsmod.Wrapf(ErrInvalidGPU, "%s: vendor %q must be a lower-case word such as nvidia", where, g.Vendor)
		}
		if !IsGPUModelSlug(g.Model) {
			hint := ""
			if slug := CanonicalGPUModel(g.Model); IsGPUModelSlug(slug) {
				hint = fmt.Sprintf(" (did you mean %q?)", slug)
			}
			return errorsmod.Wrapf(ErrInvalidGPU, "%s: model %q is not a canonical slug%s", where, g.Model, hint)
		}
		if g.Count == 0 || g.Count > MaxGPUCount {
			return errorsmod.Wrapf(ErrInvalidGPU, "%s (%s): count must be 1-%d, got %d", where, g.Model, MaxGPUCount, g.Count)
		}
		if g.MemoryMib == 0 {
			return errorsmod.Wrapf(ErrInvalidGPU, "%s (%s): memory_mib must be positive", where, g.Model)
		}
		if len(g.Interface) > MaxInterfaceLength || (g.Interface != "" && !lowerWordPattern.MatchString(g.Interface)) {
			return errorsmod.Wrapf(ErrInvalidGPU, "%s (%s): interface %q must be a lower-case word such as pcie or sxm", where, g.Model, g.Interface)
		}
		id := g.Vendor + "/" + g.Model + "/" + g.Interface + "/" + fmt.Sprint(g.MemoryMib)
		if seen[id] {
			return errorsmod.Wrapf(ErrInvalidGPU, "%s: duplicate entry for %s %s; add to its count instead", where, g.Vendor, g.Model)
		}
		seen[id] = true
	}
	return nil
}

// ValidateInfo checks the optional contact fields.
func ValidateInfo(info Info) error {
	if len(info.Email) > MaxInfoLength || len(info.Website) > MaxInfoLength {
		return errorsmod.Wrapf(ErrInvalidInfo, "info fields are at most %d bytes", MaxInfoLength)
	}
	if info.Email != "" {
		if _, err := mail.ParseAddress(info.Email); err != nil {
			return errorsmod.Wrapf(ErrInvalidInfo, "info.email %q: %v", info.Email, err)
		}
	}
	if info.Website != "" {
		u, err := url.Parse(info.Website)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errorsmod.Wrapf(ErrInvalidInfo, "info.website %q must be an http(s) URL", info.Website)
		}
	}
	return nil
}

// GPUModels returns the distinct model slugs a provider declares, in order.
func (p Provider) GPUModels() []string {
	var models []string
	seen := map[string]bool{}
	for _, g := range p.Gpus {
		if !seen[g.Model] {
			seen[g.Model] = true
			models = append(models, g.Model)
		}
	}
	return models
}
