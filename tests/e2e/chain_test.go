package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpunet/gpunet/testutil/localnet"
)

// TestSingleValidatorTransfers starts a one-validator chain from config.yml
// and moves GPN through the CLI and through REST, then checks that bad
// transfers are refused without moving anything.
func TestSingleValidatorTransfers(t *testing.T) {
	nw := startNetwork(t, 1)
	node := nw.Nodes[0]
	tenant, provider := nw.Keys["tenant"], nw.Keys["provider"]
	const fee = 5000

	t.Run("cli", func(t *testing.T) {
		tenantBefore, providerBefore := balanceCLI(t, nw, node, tenant), balanceCLI(t, nw, node, provider)
		const amount = 1_234_567

		res := sendTx(t, nw, node, "tenant", provider, fmt.Sprintf("%dugpn", amount), fmt.Sprintf("%dugpn", fee))
		if res.Code != 0 {
			t.Fatalf("send refused: code %d: %s", res.Code, res.RawLog)
		}
		done := waitTx(t, nw, node, res.TxHash)
		if done.Code != 0 {
			t.Fatalf("send failed in block: code %d: %s", done.Code, done.RawLog)
		}
		if got := done.eventAttr("tx", "fee"); got != fmt.Sprintf("%dugpn", fee) {
			t.Errorf("fee event = %q, want %dugpn", got, fee)
		}
		if got, want := balanceCLI(t, nw, node, tenant), tenantBefore-amount-fee; got != want {
			t.Errorf("tenant balance = %d, want %d (before %d - amount %d - fee %d)", got, want, tenantBefore, amount, fee)
		}
		if got, want := balanceCLI(t, nw, node, provider), providerBefore+amount; got != want {
			t.Errorf("provider balance = %d, want %d", got, want)
		}
	})

	t.Run("rest", func(t *testing.T) {
		tenantBefore, providerBefore := balanceREST(t, node, tenant), balanceREST(t, node, provider)
		const amount = 777_000
		txBytes := signedSendBytes(t, nw, "tenant", provider, fmt.Sprintf("%dugpn", amount), fmt.Sprintf("%dugpn", fee))

		var broadcast struct {
			TxResponse txResponse `json:"tx_response"`
		}
		status := httpJSON(t, http.MethodPost, node.APIURL()+"/cosmos/tx/v1beta1/txs",
			map[string]string{"tx_bytes": txBytes, "mode": "BROADCAST_MODE_SYNC"}, &broadcast)
		if status != http.StatusOK || broadcast.TxResponse.Code != 0 {
			t.Fatalf("REST broadcast: HTTP %d, code %d: %s", status, broadcast.TxResponse.Code, broadcast.TxResponse.RawLog)
		}

		var got struct {
			TxResponse txResponse `json:"tx_response"`
			Tx         struct {
				AuthInfo struct {
					Fee struct {
						Amount []struct{ Denom, Amount string } `json:"amount"`
					} `json:"fee"`
				} `json:"auth_info"`
			} `json:"tx"`
		}
		deadline := time.Now().Add(30 * time.Second)
		for httpJSON(t, http.MethodGet, node.APIURL()+"/cosmos/tx/v1beta1/txs/"+broadcast.TxResponse.TxHash, nil, &got) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("tx %s not found over REST within 30s", broadcast.TxResponse.TxHash)
			}
			time.Sleep(300 * time.Millisecond)
		}
		if got.TxResponse.Code != 0 {
			t.Fatalf("REST tx failed in block: code %d: %s", got.TxResponse.Code, got.TxResponse.RawLog)
		}
		fees := got.Tx.AuthInfo.Fee.Amount
		if len(fees) != 1 || fees[0].Denom != "ugpn" || fees[0].Amount != fmt.Sprint(fee) {
			t.Errorf("fee = %+v, want %dugpn", fees, fee)
		}
		if got, want := balanceREST(t, node, tenant), tenantBefore-amount-fee; got != want {
			t.Errorf("tenant balance over REST = %d, want %d", got, want)
		}
		if got, want := balanceREST(t, node, provider), providerBefore+amount; got != want {
			t.Errorf("provider balance over REST = %d, want %d", got, want)
		}
	})

	t.Run("bad input moves nothing", func(t *testing.T) {
		tenantBefore, providerBefore := balanceCLI(t, nw, node, tenant), balanceCLI(t, nw, node, provider)

		// An address that is not bech32 is refused before anything is signed.
		out, err := nw.CLIOn(context.Background(), node, "tx", "bank", "send", "tenant", "gpunet1notanaddress", "1000ugpn",
			"--fees", "5000ugpn", "--yes", "--output", "json")
		if err == nil {
			t.Errorf("send to an invalid address succeeded: %s", out)
		} else if !strings.Contains(err.Error(), "bech32") {
			t.Errorf("invalid address error does not say what is wrong: %v", err)
		}

		cases := []struct {
			name, amount, fees string
			code               int
			log                string
		}{
			{"foreign denom amount", "1000uatom", "5000ugpn", 10, `amount is in "uatom", but gpunet only uses ugpn`},
			{"foreign denom fee", "1000ugpn", "5000uatom", 10, `fee is in "uatom", but gpunet only uses ugpn`},
			{"fee below minimum gas price", "1000ugpn", "1ugpn", 13, "insufficient fees; got: 1ugpn required: 5000ugpn"},
		}
		for _, c := range cases {
			res := sendTx(t, nw, node, "tenant", provider, c.amount, c.fees)
			if res.Code != c.code || !strings.Contains(res.RawLog, c.log) {
				t.Errorf("%s: got code %d %q, want code %d containing %q", c.name, res.Code, res.RawLog, c.code, c.log)
			}
		}

		waitBlocks(t, nw, 2)
		if got := balanceCLI(t, nw, node, tenant); got != tenantBefore {
			t.Errorf("tenant balance moved from %d to %d", tenantBefore, got)
		}
		if got := balanceCLI(t, nw, node, provider); got != providerBefore {
			t.Errorf("provider balance moved from %d to %d", providerBefore, got)
		}
	})
}

// signedSendBytes builds and signs a bank send offline-style with the CLI
// (generate-only, sign, encode) and returns the base64 transaction bytes.
func signedSendBytes(t *testing.T, nw *localnet.Network, from, to, amount, fees string) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	unsigned, err := nw.CLI(ctx, "tx", "bank", "send", from, to, amount, "--fees", fees, "--generate-only", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	unsignedPath := filepath.Join(dir, "unsigned.json")
	if err := os.WriteFile(unsignedPath, []byte(localnet.LastJSON(unsigned)), 0o600); err != nil {
		t.Fatal(err)
	}
	signedPath := filepath.Join(dir, "signed.json")
	if _, err := nw.CLI(ctx, "tx", "sign", unsignedPath, "--from", from, "--output", "json", "--output-document", signedPath); err != nil {
		t.Fatal(err)
	}
	encoded, err := nw.CLI(ctx, "tx", "encode", signedPath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(encoded)
}

// TestFourValidators runs four validators on loopback: every one of them
// signs blocks, and a transfer sent to one node is visible on all four.
func TestFourValidators(t *testing.T) {
	nw := startNetwork(t, 4)
	ctx := context.Background()

	var vals struct {
		Result struct {
			Total      string `json:"total"`
			Validators []struct {
				Address string `json:"address"`
			} `json:"validators"`
		} `json:"result"`
	}
	httpJSON(t, http.MethodGet, nw.Nodes[0].RPCURL()+"/validators", nil, &vals)
	if len(vals.Result.Validators) != 4 {
		t.Fatalf("validator set has %d members, want 4", len(vals.Result.Validators))
	}

	waitBlocks(t, nw, 5)
	h, err := nw.Nodes[0].Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signed := map[string]int{}
	for height := h - 4; height <= h; height++ {
		var blk struct {
			Result struct {
				Block struct {
					LastCommit struct {
						Signatures []struct {
							Flag    int    `json:"block_id_flag"`
							Address string `json:"validator_address"`
						} `json:"signatures"`
					} `json:"last_commit"`
				} `json:"block"`
			} `json:"result"`
		}
		httpJSON(t, http.MethodGet, fmt.Sprintf("%s/block?height=%d", nw.Nodes[0].RPCURL(), height), nil, &blk)
		for _, s := range blk.Result.Block.LastCommit.Signatures {
			if s.Flag == 2 { // BLOCK_ID_FLAG_COMMIT
				signed[s.Address]++
			}
		}
	}
	for _, v := range vals.Result.Validators {
		if signed[v.Address] == 0 {
			t.Errorf("validator %s signed none of the commits of heights %d..%d", v.Address, h-4, h)
		}
	}

	tenant, provider := nw.Keys["tenant"], nw.Keys["provider"]
	entry := nw.Nodes[2]
	providerBefore := balanceCLI(t, nw, entry, provider)
	const amount = 4_000_000
	res := sendTx(t, nw, entry, "tenant", provider, fmt.Sprintf("%dugpn", amount), "5000ugpn")
	if res.Code != 0 {
		t.Fatalf("send to %s refused: %s", entry.Moniker, res.RawLog)
	}
	done := waitTx(t, nw, entry, res.TxHash)
	if done.Code != 0 {
		t.Fatalf("send failed: %s", done.RawLog)
	}
	txHeight := mustInt(t, done.Height)
	if err := nw.WaitForHeight(ctx, txHeight, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	tenantAfter := balanceCLI(t, nw, entry, tenant)
	for _, n := range nw.Nodes {
		if got := balanceCLI(t, nw, n, provider); got != providerBefore+amount {
			t.Errorf("%s: provider balance %d, want %d", n.Moniker, got, providerBefore+amount)
		}
		if got := balanceCLI(t, nw, n, tenant); got != tenantAfter {
			t.Errorf("%s: tenant balance %d, want %d", n.Moniker, got, tenantAfter)
		}
		var tx txResponse
		cli(t, nw, n, &tx, "query", "tx", res.TxHash, "--output", "json")
		if tx.Height != done.Height {
			t.Errorf("%s: tx at height %s, want %s", n.Moniker, tx.Height, done.Height)
		}
	}
}

// TestGenesisExportImport exports a running chain's state after a transfer,
// restarts the validator from the exported genesis, and checks that balances,
// validators and params carried over and that the chain goes on from there.
func TestGenesisExportImport(t *testing.T) {
	nw := startNetwork(t, 1)
	node := nw.Nodes[0]
	ctx := context.Background()
	tenant, provider := nw.Keys["tenant"], nw.Keys["provider"]

	res := sendTx(t, nw, node, "tenant", provider, "3000000ugpn", "5000ugpn")
	if res.Code != 0 {
		t.Fatalf("send refused: %s", res.RawLog)
	}
	if done := waitTx(t, nw, node, res.TxHash); done.Code != 0 {
		t.Fatalf("send failed: %s", done.RawLog)
	}
	tenantBal, providerBal := balanceCLI(t, nw, node, tenant), balanceCLI(t, nw, node, provider)

	first := restartFromExport(t, nw, node)

	if got := balanceCLI(t, nw, node, tenant); got != tenantBal {
		t.Errorf("tenant balance after import = %d, want %d", got, tenantBal)
	}
	if got := balanceCLI(t, nw, node, provider); got != providerBal {
		t.Errorf("provider balance after import = %d, want %d", got, providerBal)
	}

	// A second export from the restarted chain: the modules that blocks do
	// not touch without transactions must be byte-for-byte what was imported.
	if err := nw.StopNode(node); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again.json")
	if _, err := nw.RunBinary(ctx, "export", "--home", node.Home, "--output-document", again); err != nil {
		t.Fatal(err)
	}
	second := readGenesis(t, again)
	for _, m := range []string{"auth", "gov", "consensus", "authz", "feegrant", "evidence", "upgrade"} {
		if string(first.AppState[m]) != string(second.AppState[m]) {
			t.Errorf("module %s changed across export → import → export:\nfirst:  %s\nsecond: %s", m, first.AppState[m], second.AppState[m])
		}
	}
	if first.ChainID != second.ChainID {
		t.Errorf("chain id %q became %q", first.ChainID, second.ChainID)
	}
}

type genesisFile struct {
	ChainID       string                     `json:"chain_id"`
	InitialHeight int64                      `json:"initial_height,string"`
	AppState      map[string]json.RawMessage `json:"app_state"`
}

func readGenesis(t *testing.T, path string) genesisFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g genesisFile
	if err := json.Unmarshal(raw, &g); err != nil {
		// initial_height may be a number in some encoders
		var alt struct {
			ChainID       string                     `json:"chain_id"`
			InitialHeight int64                      `json:"initial_height"`
			AppState      map[string]json.RawMessage `json:"app_state"`
		}
		if err2 := json.Unmarshal(raw, &alt); err2 != nil {
			t.Fatalf("%s: %v", path, err)
		}
		g = genesisFile(alt)
	}
	return g
}
