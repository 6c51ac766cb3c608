package app_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"

	"github.com/gpunet/gpunet/testutil/apptest"
)

// TestExportImportRoundTrip runs a chain for some blocks, exports it, starts
// a fresh app from the export and exports that again: every module's state
// must come back identical, and the validator set and height must carry over.
func TestExportImportRoundTrip(t *testing.T) {
	chain := apptest.New(t, 3)
	for range 5 {
		chain.NextBlock(6 * time.Second) // mint and distribution change state every block
	}
	first := chain.Export()
	if first.Height != chain.Height+1 {
		t.Fatalf("export height = %d, want %d", first.Height, chain.Height+1)
	}

	imported := apptest.Import(t, first, chain.Time.Add(time.Second))
	ctx := imported.App.NewContextLegacy(false, cmtHeader(first.Height))
	secondState, err := imported.App.ModuleManager.ExportGenesisForModules(ctx, imported.App.AppCodec(), nil)
	if err != nil {
		t.Fatal(err)
	}

	var firstState map[string]json.RawMessage
	if err := json.Unmarshal(first.AppState, &firstState); err != nil {
		t.Fatal(err)
	}
	if len(firstState) != len(secondState) {
		t.Fatalf("exported %d modules, re-exported %d", len(firstState), len(secondState))
	}
	for name, want := range firstState {
		got, ok := secondState[name]
		if !ok {
			t.Errorf("module %s missing after import", name)
			continue
		}
		if !jsonEqual(t, want, got) {
			t.Errorf("module %s differs after import:\nexported: %s\nimported: %s", name, want, got)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func cmtHeader(height int64) cmtproto.Header {
	return cmtproto.Header{Height: height, ChainID: apptest.ChainID}
}
