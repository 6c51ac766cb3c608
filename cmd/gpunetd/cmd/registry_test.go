package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gpunet/gpunet/app"
)

// TestChainRegistryFiles: docs/chain.json and docs/assetlist.json, the
// chain-registry entries wallets and explorers read, say what the chain
// is: its prefix, denom and decimals, and its minimum gas price.
func TestChainRegistryFiles(t *testing.T) {
	var chain struct {
		ChainName, Bech32Prefix, DaemonName string
		Slip44                              int
		Fees                                struct {
			FeeTokens []struct {
				Denom            string
				FixedMinGasPrice float64 `json:"fixed_min_gas_price"`
			} `json:"fee_tokens"`
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "chain.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &chain); err != nil {
		t.Fatal(err)
	}
	var snake struct {
		Bech32Prefix string `json:"bech32_prefix"`
		DaemonName   string `json:"daemon_name"`
		ChainName    string `json:"chain_name"`
	}
	_ = json.Unmarshal(raw, &snake)
	if snake.Bech32Prefix != app.AccountAddressPrefix || snake.DaemonName != "gpunetd" || snake.ChainName != "gpunet" || chain.Slip44 != 118 ||
		len(chain.Fees.FeeTokens) != 1 || chain.Fees.FeeTokens[0].Denom != app.BondDenom || app.DefaultMinGasPrice != "0.025"+app.BondDenom || chain.Fees.FeeTokens[0].FixedMinGasPrice != 0.025 {
		t.Errorf("docs/chain.json does not match the chain: %+v %+v", snake, chain)
	}
	var assets struct {
		ChainName string `json:"chain_name"`
		Assets    []struct {
			Base, Display, Symbol string
			DenomUnits            []struct {
				Denom    string
				Exponent int
			} `json:"denom_units"`
		}
	}
	raw, err = os.ReadFile(filepath.Join("..", "..", "..", "docs", "assetlist.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &assets); err != nil {
		t.Fatal(err)
	}
	if assets.ChainName != "gpunet" || len(assets.Assets) != 1 || assets.Assets[0].Base != app.BondDenom || assets.Assets[0].Symbol != app.DisplayDenom ||
		len(assets.Assets[0].DenomUnits) != 2 || assets.Assets[0].DenomUnits[1].Exponent != app.DenomExponent {
		t.Errorf("docs/assetlist.json does not match the chain: %+v", assets)
	}
}
