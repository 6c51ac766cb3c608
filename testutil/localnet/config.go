// Package localnet builds and runs a gpunet network of real gpunetd processes
// on loopback from config.yml. The `localnet` command and the black-box tests
// both use it, so what a developer starts by hand is what the tests exercise.
package localnet

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the parsed config.yml.
type Config struct {
	ChainID          string         `yaml:"chain_id"`
	Accounts         []Account      `yaml:"accounts"`
	Validators       []Validator    `yaml:"validators"`
	Genesis          map[string]any `yaml:"genesis"`
	Consensus        Consensus      `yaml:"consensus"`
	Ports            Ports          `yaml:"ports"`
	MinimumGasPrices string         `yaml:"minimum_gas_prices"`
	StateSync        StateSync      `yaml:"state_sync"`
}

// StateSync is how often every node takes a state-sync snapshot (blocks;
// 0: never) and how many it keeps, so a new node can join by state sync.
type StateSync struct {
	SnapshotInterval   uint64 `yaml:"snapshot_interval"`
	SnapshotKeepRecent uint32 `yaml:"snapshot_keep_recent"`
}

// Account is a genesis account whose key lives in node0's test keyring.
type Account struct {
	Name     string `yaml:"name"`
	Coins    string `yaml:"coins"`
	Mnemonic string `yaml:"mnemonic,omitempty"`
}

// Validator names an account that self-bonds at genesis.
type Validator struct {
	Name   string `yaml:"name"`
	Bonded string `yaml:"bonded"`
}

// Consensus holds the CometBFT timeouts applied to every node.
type Consensus struct {
	TimeoutCommit  Duration `yaml:"timeout_commit"`
	TimeoutPropose Duration `yaml:"timeout_propose"`
}

// Ports are node0's listen ports; node i adds i*PortStep.
type Ports struct {
	P2P  int `yaml:"p2p"`
	RPC  int `yaml:"rpc"`
	GRPC int `yaml:"grpc"`
	API  int `yaml:"api"`
	// Prometheus, when set, turns on each node's metrics (CometBFT's and
	// gpunet's gauges) on this port.
	Prometheus int `yaml:"prometheus"`
	PortStep   int `yaml:"port_step"`
}

// Duration reads "1s"-style YAML values.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 1s, 500ms): %w", n.Line, n.Value, err)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads and validates a config.yml.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks the config for mistakes that would otherwise surface as
// obscure gpunetd errors halfway through genesis creation.
func (c Config) Validate() error {
	var errs []error
	if c.ChainID == "" {
		errs = append(errs, errors.New("chain_id is empty"))
	}
	if len(c.Validators) == 0 {
		errs = append(errs, errors.New("validators: at least one validator is needed"))
	}
	names := map[string]bool{}
	for i, a := range c.Accounts {
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("accounts[%d]: name is empty", i))
		}
		if names[a.Name] {
			errs = append(errs, fmt.Errorf("accounts[%d]: duplicate name %q", i, a.Name))
		}
		names[a.Name] = true
		if a.Coins == "" {
			errs = append(errs, fmt.Errorf("accounts[%d] (%s): coins is empty", i, a.Name))
		}
	}
	for i, v := range c.Validators {
		if !names[v.Name] {
			errs = append(errs, fmt.Errorf("validators[%d]: %q is not in accounts", i, v.Name))
		}
		if v.Bonded == "" {
			errs = append(errs, fmt.Errorf("validators[%d] (%s): bonded is empty", i, v.Name))
		}
	}
	p := c.Ports
	if p.P2P <= 0 || p.RPC <= 0 || p.GRPC <= 0 || p.API <= 0 {
		errs = append(errs, errors.New("ports: p2p, rpc, grpc and api must all be set"))
	}
	if p.PortStep <= 0 {
		errs = append(errs, errors.New("ports: port_step must be positive"))
	}
	return errors.Join(errs...)
}

// withValidators returns a copy of c with n validators: the configured ones
// first, then generated validator<i> accounts funded like the first.
func (c Config) withValidators(n int) (Config, error) {
	if n <= 0 {
		n = len(c.Validators)
	}
	if n < len(c.Validators) {
		return c, fmt.Errorf("config lists %d validators; cannot start fewer (%d)", len(c.Validators), n)
	}
	out := c
	out.Accounts = append([]Account(nil), c.Accounts...)
	out.Validators = append([]Validator(nil), c.Validators...)
	first := c.Validators[0]
	var firstCoins string
	for _, a := range c.Accounts {
		if a.Name == first.Name {
			firstCoins = a.Coins
		}
	}
	for i := len(c.Validators); i < n; i++ {
		name := fmt.Sprintf("validator%d", i)
		out.Accounts = append(out.Accounts, Account{Name: name, Coins: firstCoins})
		out.Validators = append(out.Validators, Validator{Name: name, Bonded: first.Bonded})
	}
	return out, nil
}
