package sdl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// The manifest's hash, which the deployment names on chain, is built from a
// digest per group: the SHA-256 of the group's canonical JSON without its
// registry logins. A tenant sends each provider its own groups whole and
// the others' digests only (For); the provider computes the same hash from
// either, and so checks what it runs against the chain without learning
// the images, env or logins of groups other providers run.
//
// Deployments made before that named the SHA-256 of the whole manifest's
// canonical JSON (LegacyHash); a provider still takes a whole manifest
// that matches such a hash (MatchesHash).

// hashDomain starts the hashed summary, so it can never be read as a
// legacy manifest hash.
const hashDomain = "gpunet manifest v2\n"

// Digest is the group's digest, in hex: Withheld for a withheld group.
func (g ManifestGroup) Digest() (string, error) {
	if g.Withheld != "" {
		return g.Withheld, nil
	}
	c := Manifest{Groups: []ManifestGroup{g}}.WithoutCredentials().Groups[0]
	raw, err := canonicalJSON(c)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:]), nil
}

// Hash is what a deployment names on chain: the SHA-256 of the manifest's
// version and each group's name and digest, in order. A manifest and any
// of its redactions (For) have the same hash.
func (m Manifest) Hash() ([]byte, error) {
	type entry struct {
		Name   string `json:"name"`
		Digest string `json:"digest"`
	}
	summary := struct {
		Version string  `json:"version"`
		Groups  []entry `json:"groups"`
	}{Version: m.Version, Groups: make([]entry, len(m.Groups))}
	for i, g := range m.Groups {
		d, err := g.Digest()
		if err != nil {
			return nil, err
		}
		summary.Groups[i] = entry{Name: g.Name, Digest: d}
	}
	raw, err := canonicalJSON(summary)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(append([]byte(hashDomain), raw...))
	return h[:], nil
}

// HashHex is Hash in hex.
func (m Manifest) HashHex() (string, error) {
	h, err := m.Hash()
	return hex.EncodeToString(h), err
}

// LegacyHash is the hash deployments named before group digests: the
// SHA-256 of the whole manifest's canonical JSON without registry logins.
// A manifest with a withheld group has none.
func (m Manifest) LegacyHash() ([]byte, error) {
	for _, g := range m.Groups {
		if g.Withheld != "" {
			return nil, fmt.Errorf("group %q is withheld: a legacy hash needs the whole manifest", g.Name)
		}
	}
	c, err := m.WithoutCredentials().CanonicalJSON()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(c)
	return h[:], nil
}

// MatchesHash reports whether m is the manifest a deployment names with
// onChain: by its hash, or, whole, by its legacy hash.
func (m Manifest) MatchesHash(onChain []byte) bool {
	if h, err := m.Hash(); err == nil && bytes.Equal(h, onChain) {
		return true
	}
	h, err := m.LegacyHash()
	return err == nil && bytes.Equal(h, onChain)
}

// For is the manifest to send a provider that runs the groups keep says
// (by index): those whole, every other one withheld behind its digest.
func (m Manifest) For(keep func(i int) bool) (Manifest, error) {
	out := Manifest{Version: m.Version, Groups: make([]ManifestGroup, len(m.Groups))}
	for i, g := range m.Groups {
		if keep(i) {
			out.Groups[i] = g
			continue
		}
		d, err := g.Digest()
		if err != nil {
			return Manifest{}, err
		}
		out.Groups[i] = ManifestGroup{Name: g.Name, Withheld: d}
	}
	return out, nil
}

// CheckWithheld refuses a withheld group that is not just a name and a
// digest (a provider reads nothing else of it, so nothing else may hide
// there).
func (m Manifest) CheckWithheld() error {
	for _, g := range m.Groups {
		if g.Withheld == "" {
			continue
		}
		if len(g.Services) != 0 {
			return fmt.Errorf("group %q is withheld yet lists services", g.Name)
		}
		if b, err := hex.DecodeString(g.Withheld); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != g.Withheld {
			return fmt.Errorf("group %q: withheld must be a SHA-256 digest in lowercase hex", g.Name)
		}
	}
	return nil
}
