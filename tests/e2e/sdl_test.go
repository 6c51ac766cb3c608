package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSDLCheck runs `gpunetd sdl check` on the example job and on a file
// priced in a foreign denom, as a tenant would before deploying.
func TestSDLCheck(t *testing.T) {
	example := filepath.Join(repoRoot(), "examples", "gpu-job.yaml")
	out, err := exec.Command(gpunetd, "sdl", "check", example).CombinedOutput()
	if err != nil {
		t.Fatalf("sdl check failed: %v\n%s", err, out)
	}
	for _, want := range []string{`group 1 "anywhere"`, "max price 3000000ugpn per hour", "gpu 1 × [h100 h200 a100 l40s l4 a10g t4 rtx4090]", "job (runs to exit)", "manifest hash "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "akash.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(raw), "denom: ugpn", "denom: uakt", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(string(raw[:strings.Index(string(raw), "denom: ugpn")]), "\n")
	out, err = exec.Command(gpunetd, "sdl", "check", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), fmt.Sprintf(`line %d: profiles.placement.anywhere.pricing.one-gpu.denom: denom "uakt": gpunet prices are per hour in ugpn`, line)) {
		t.Errorf("foreign denom: err %v, output %s", err, out)
	}
}
