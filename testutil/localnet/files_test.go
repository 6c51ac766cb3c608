package localnet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEditTOMLSetsKeysPerSectionAndKeepsComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	in := "# top comment\nmoniker = \"old\"\n\n[rpc]\n# the address\nladdr = \"tcp://0.0.0.0:26657\"\n\n[p2p]\nladdr = \"tcp://0.0.0.0:26656\"\n"
	if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	err := editTOML(path, map[string]map[string]string{
		"":    {"moniker": quote("node0")},
		"rpc": {"laddr": quote("tcp://127.0.0.1:1")},
		"p2p": {"laddr": quote("tcp://127.0.0.1:2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# top comment\nmoniker = \"node0\"\n\n[rpc]\n# the address\nladdr = \"tcp://127.0.0.1:1\"\n\n[p2p]\nladdr = \"tcp://127.0.0.1:2\"\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestEditTOMLRefusesUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.toml")
	if err := os.WriteFile(path, []byte("[api]\nenable = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := editTOML(path, map[string]map[string]string{"api": {"enable": "true", "swagger": "true"}, "grpc": {"enable": "true"}})
	if err == nil || !strings.Contains(err.Error(), "[api] swagger") || !strings.Contains(err.Error(), "[grpc] enable") {
		t.Fatalf("want an error naming both missing keys, got %v", err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "[api]\nenable = false\n" {
		t.Errorf("file changed despite the error: %q", got)
	}
}

func TestGenesisOverridesMergeDeeply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "genesis.json")
	gen := `{"chain_id":"x","app_state":{"gov":{"params":{"voting_period":"172800s","quorum":"0.33"}},"bank":{"denom_metadata":[]}}}`
	if err := os.WriteFile(path, []byte(gen), 0o644); err != nil {
		t.Fatal(err)
	}
	err := applyGenesisOverrides(path, map[string]any{
		"app_state": map[string]any{
			"gov":  map[string]any{"params": map[string]any{"voting_period": "60s"}},
			"bank": map[string]any{"denom_metadata": []any{map[string]any{"base": "ugpn", "exponent": 6}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var got struct {
		AppState struct {
			Gov struct {
				Params map[string]string `json:"params"`
			} `json:"gov"`
			Bank struct {
				DenomMetadata []map[string]any `json:"denom_metadata"`
			} `json:"bank"`
		} `json:"app_state"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if p := got.AppState.Gov.Params; p["voting_period"] != "60s" || p["quorum"] != "0.33" {
		t.Errorf("gov params = %v: override lost a sibling or was not applied", p)
	}
	if md := got.AppState.Bank.DenomMetadata; len(md) != 1 || md[0]["exponent"] != "6" {
		t.Errorf("denom metadata = %v: lists replace, numbers become strings", md)
	}
}

func TestGenesisOverridesRejectUnknownFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(path, []byte(`{"app_state":{"gov":{}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := applyGenesisOverrides(path, map[string]any{"app_state": map[string]any{"govv": map[string]any{}}})
	if err == nil || !strings.Contains(err.Error(), "genesis.app_state.govv") {
		t.Fatalf("want an error naming genesis.app_state.govv, got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{
		ChainID:    "c",
		Accounts:   []Account{{Name: "v", Coins: "1ugpn"}},
		Validators: []Validator{{Name: "v", Bonded: "1ugpn"}},
		Ports:      Ports{P2P: 1, RPC: 2, GRPC: 3, API: 4, PortStep: 10},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	cases := map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"no chain id":           {func(c *Config) { c.ChainID = "" }, "chain_id is empty"},
		"validator not account": {func(c *Config) { c.Validators[0].Name = "x" }, `"x" is not in accounts`},
		"duplicate account":     {func(c *Config) { c.Accounts = append(c.Accounts, c.Accounts[0]) }, `duplicate name "v"`},
		"no bond":               {func(c *Config) { c.Validators[0].Bonded = "" }, "bonded is empty"},
		"no port step":          {func(c *Config) { c.Ports.PortStep = 0 }, "port_step"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := good
			c.Accounts = append([]Account(nil), good.Accounts...)
			c.Validators = append([]Validator(nil), good.Validators...)
			tc.mutate(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestWithValidatorsAddsFundedValidators(t *testing.T) {
	c := Config{
		Accounts:   []Account{{Name: "validator", Coins: "100ugpn"}, {Name: "tenant", Coins: "5ugpn"}},
		Validators: []Validator{{Name: "validator", Bonded: "50ugpn"}},
	}
	got, err := c.withValidators(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Validators) != 3 || got.Validators[2].Name != "validator2" || got.Validators[2].Bonded != "50ugpn" {
		t.Errorf("validators = %+v", got.Validators)
	}
	if len(got.Accounts) != 4 || got.Accounts[3].Coins != "100ugpn" {
		t.Errorf("accounts = %+v", got.Accounts)
	}
	if len(c.Validators) != 1 {
		t.Error("withValidators changed its receiver")
	}
	if _, err := got.withValidators(2); err == nil {
		t.Error("asking for fewer validators than configured should fail")
	}
}

func TestLoadRepositoryConfig(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "..", "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, a := range cfg.Accounts {
		names[a.Name] = true
	}
	for _, want := range []string{"validator", "provider", "tenant"} {
		if !names[want] {
			t.Errorf("config.yml has no %q account", want)
		}
	}
	if cfg.ChainID != "gpunet-local-1" {
		t.Errorf("chain id = %q", cfg.ChainID)
	}
}
