package runtime

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// MinToolkitVersion is the oldest NVIDIA container toolkit a provider may
// offer GPUs with: older ones have known container escapes through their
// hooks (CVE-2024-0132 and CVE-2024-0133, fixed in 1.16.2; CVE-2025-23359,
// fixed in 1.17.4).
var MinToolkitVersion = [3]int{1, 17, 4}

// ErrToolkit is wrapped when GPUs are offered but the NVIDIA container
// toolkit is missing or too old.
var ErrToolkit = errors.New("NVIDIA container toolkit unsafe or missing")

var toolkitVersion = regexp.MustCompile(`version (\d+)\.(\d+)\.(\d+)`)

// CheckToolkitVersion reads the version from `nvidia-ctk --version` (or
// `nvidia-container-cli --version`) output and refuses one below
// MinToolkitVersion, saying why.
func CheckToolkitVersion(output string) error {
	m := toolkitVersion.FindStringSubmatch(output)
	if m == nil {
		return fmt.Errorf("%w: cannot read a version from %q", ErrToolkit, output)
	}
	var v [3]int
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	for i := range v {
		if v[i] != MinToolkitVersion[i] {
			if v[i] < MinToolkitVersion[i] {
				return fmt.Errorf("%w: version %d.%d.%d has known container escapes (CVE-2024-0132, CVE-2024-0133, CVE-2025-23359); upgrade to %d.%d.%d or later",
					ErrToolkit, v[0], v[1], v[2], MinToolkitVersion[0], MinToolkitVersion[1], MinToolkitVersion[2])
			}
			return nil
		}
	}
	return nil
}

// CheckToolkit runs the toolkit's own CLI and checks its version. A host
// that offers real GPUs must pass before the daemon starts.
func CheckToolkit(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var lastErr error
	for _, cmd := range [][]string{{"nvidia-ctk", "--version"}, {"nvidia-container-cli", "--version"}} {
		out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
		if err != nil {
			lastErr = err
			continue
		}
		return CheckToolkitVersion(string(out))
	}
	return fmt.Errorf("%w: neither nvidia-ctk nor nvidia-container-cli runs (%v); install the NVIDIA container toolkit %d.%d.%d or later",
		ErrToolkit, lastErr, MinToolkitVersion[0], MinToolkitVersion[1], MinToolkitVersion[2])
}
