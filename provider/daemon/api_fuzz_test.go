package daemon

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/gpunet/gpunet/sdl"
)

// FuzzManifestRequest feeds arbitrary bodies to the manifest endpoint's
// parsing and to the check of a manifest against a lease's on-chain group:
// no input panics; an accepted body has a canonical form that parses back
// to the same manifest and hash, so what the daemon stores is what the
// tenant committed to.
func FuzzManifestRequest(f *testing.F) {
	raw, err := os.ReadFile("../../sdl/testdata/gpu-job.yaml")
	if err != nil {
		f.Fatal(err)
	}
	d, err := sdl.Parse(raw)
	if err != nil {
		f.Fatal(err)
	}
	canonical, err := d.Manifest.CanonicalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(canonical)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"groups":[{"name":"x","services":[{"name":"a","count":4294967295}]}]}`))
	f.Add(append(append([]byte{}, canonical...), []byte(` {"extra":1}`)...))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, hash, err := parseManifest(body)
		if err != nil {
			return
		}
		for _, g := range d.Groups {
			_, _ = groupFor(m, g) // must not panic, whatever the manifest says
		}
		c, err := m.CanonicalJSON()
		if err != nil {
			t.Fatalf("accepted manifest has no canonical form: %v", err)
		}
		back, hash2, err := parseManifest(c)
		if err != nil {
			t.Fatalf("canonical form of an accepted manifest is refused: %v\n%s", err, c)
		}
		c2, _ := back.CanonicalJSON()
		if !bytes.Equal(c, c2) || !bytes.Equal(hash, hash2) {
			t.Fatalf("canonical form changes on a round trip:\n%s\n%s", c, c2)
		}
	})
}

func TestParseManifestRefusesUnknownFieldsAndTrailingData(t *testing.T) {
	for body, want := range map[string]string{
		`{"version":"2.0","groups":[]} {"more":1}`: "followed by more data",
		`{"version":"2.0","groups":[],"extra":1}`:  "unknown field",
		`not json`: "not valid JSON",
	} {
		if _, _, err := parseManifest([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseManifest(%s) = %v, want an error mentioning %q", body, err, want)
		}
	}
}
