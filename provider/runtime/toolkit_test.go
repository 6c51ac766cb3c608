package runtime

import (
	"errors"
	"testing"
)

func TestCheckToolkitVersion(t *testing.T) {
	for out, ok := range map[string]bool{
		"NVIDIA Container Toolkit CLI version 1.17.4\ncommit: abc": true,
		"NVIDIA Container Toolkit CLI version 1.18.0":              true,
		"cli-version: 2.0.0\nlib-version: 2.0.0\nversion 2.0.0":    true,
		"NVIDIA Container Toolkit CLI version 1.16.2":              false, // CVE-2025-23359
		"NVIDIA Container Toolkit CLI version 1.14.6":              false,
		"NVIDIA Container Toolkit CLI version 1.17.3":              false,
		"something else": false,
	} {
		err := CheckToolkitVersion(out)
		if ok != (err == nil) {
			t.Errorf("%q: %v, want ok=%v", out, err, ok)
		}
		if err != nil && !errors.Is(err, ErrToolkit) {
			t.Errorf("%q: %v is not ErrToolkit", out, err)
		}
	}
}
