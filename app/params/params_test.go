package params_test

import (
	"os"
	"testing"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/app/params"
)

// The SDK's config scope is pinned, so GetConfig does not look up the
// executable and host name on every address check, and the prefixes set
// at init are the ones every later GetConfig returns.
func TestConfigScopeIsPinnedAndKeepsThePrefixes(t *testing.T) {
	if got := os.Getenv(sdk.EnvConfigScope); got == "" {
		t.Fatalf("%s is not set", sdk.EnvConfigScope)
	}
	if got := sdk.GetConfig().GetBech32AccountAddrPrefix(); got != params.AccountAddressPrefix {
		t.Fatalf("account prefix %q, want %q", got, params.AccountAddressPrefix)
	}
}
