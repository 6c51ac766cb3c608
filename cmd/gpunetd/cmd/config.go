package cmd

import (
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	serverconfig "github.com/cosmos/cosmos-sdk/server/config"

	"github.com/gpunet/gpunet/app"
)

// initAppConfig returns app.toml defaults for a fresh node: a minimum gas
// price in ugpn so an unconfigured validator does not accept free spam, and
// telemetry left off until an operator enables it.
func initAppConfig() (string, any) {
	cfg := serverconfig.DefaultConfig()
	cfg.MinGasPrices = app.DefaultMinGasPrice
	cfg.Telemetry.Enabled = false
	// Keep enough history for provider daemons that reconnect after a while.
	cfg.Pruning = "custom"
	cfg.PruningKeepRecent = "100000"
	cfg.PruningInterval = "100"
	return serverconfig.DefaultConfigTemplate, cfg
}

// initCometBFTConfig returns config.toml defaults. Production networks keep
// CometBFT's timeouts; localnet tightens them through its own config.
func initCometBFTConfig() *cmtcfg.Config {
	cfg := cmtcfg.DefaultConfig()
	cfg.Consensus.TimeoutCommit = 2 * time.Second
	return cfg
}
