package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/server"

	"github.com/gpunet/gpunet/app"
)

// joinCommand is `gpunetd join`: configure an initialized node home to
// join a running network, from what its nodes' RPCs say.
func joinCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "join --rpc-nodes URL[,URL]",
		Short: "Configure this node (after 'gpunetd init') to join a running network: genesis, peers, and state sync",
		Long: `Reads the network from one or more of its nodes' RPC endpoints and writes this node's
config: the genesis file (checked against --chain-id when given), persistent peers (each RPC
node's own P2P address, unless --peers is given), and, unless --block-sync, state sync: the
RPC servers to verify snapshots with, and a trust height and hash taken --trust-back blocks
below the network's head. The node then starts from the newest snapshot the network serves
(validators take them every state-sync.snapshot-interval blocks, see app.toml) instead of
replaying every block. Trust the RPC nodes you name: the trusted hash comes from them.`,
		Example: `gpunetd init mynode --home ~/.gpunetd
gpunetd join --home ~/.gpunetd --chain-id gpunet-1 --rpc-nodes https://rpc1.example.com:443,https://rpc2.example.com:443
gpunetd start --home ~/.gpunetd`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sctx := server.GetServerContextFromCmd(cmd)
			cfg := sctx.Config
			rpcs, _ := cmd.Flags().GetStringSlice("rpc-nodes")
			peers, _ := cmd.Flags().GetString("peers")
			chainID, _ := cmd.Flags().GetString(flags.FlagChainID)
			blockSync, _ := cmd.Flags().GetBool("block-sync")
			back, _ := cmd.Flags().GetInt64("trust-back")
			period, _ := cmd.Flags().GetDuration("trust-period")
			if len(rpcs) == 0 {
				return errors.New("give --rpc-nodes with at least one of the network's RPC endpoints")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			plan, err := planJoin(ctx, rpcs, chainID, back)
			if err != nil {
				return err
			}
			if peers == "" {
				peers = strings.Join(plan.peers, ",")
			}
			genesisPath := cfg.GenesisFile()
			if err := plan.genesis.SaveAs(genesisPath); err != nil {
				return fmt.Errorf("write %s: %w", genesisPath, err)
			}
			cfg.P2P.PersistentPeers = peers
			cfg.StateSync.Enable = !blockSync
			if !blockSync {
				servers := append([]string(nil), rpcs...)
				if len(servers) == 1 {
					servers = append(servers, servers[0]) // CometBFT wants two; one trusted node may serve both
				}
				cfg.StateSync.RPCServers = servers
				cfg.StateSync.TrustHeight = plan.trustHeight
				cfg.StateSync.TrustHash = plan.trustHash
				cfg.StateSync.TrustPeriod = period
			}
			if err := cfg.ValidateBasic(); err != nil {
				return fmt.Errorf("the resulting config is not valid: %w", err)
			}
			cmtcfg.WriteConfigFile(filepath.Join(cfg.RootDir, "config", "config.toml"), cfg)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "chain %s: genesis written to %s\npersistent peers: %s\n", plan.chainID, genesisPath, peers)
			if blockSync {
				fmt.Fprintln(out, "block sync from genesis (state sync off)")
			} else {
				fmt.Fprintf(out, "state sync on: trust height %d, hash %s, period %s, rpc servers %s\n", plan.trustHeight, plan.trustHash, period, strings.Join(cfg.StateSync.RPCServers, ","))
			}
			return nil
		},
	}
	cmd.Flags().StringSlice("rpc-nodes", nil, "the network's RPC endpoints (http://host:26657), comma-separated; two for state sync")
	cmd.Flags().String("peers", "", "persistent peers (id@host:port,…); default: the RPC nodes' own P2P addresses")
	cmd.Flags().String(flags.FlagChainID, "", "the chain id the genesis must have (default: whatever the RPC says)")
	cmd.Flags().Bool("block-sync", false, "replay every block from genesis instead of state sync")
	cmd.Flags().Int64("trust-back", 50, "blocks below the head to take the trusted height and hash from")
	cmd.Flags().Duration("trust-period", 168*time.Hour, "how long the trusted header is trusted (below the unbonding time)")
	cmd.Flags().String(flags.FlagHome, app.DefaultNodeHome, "the node's home")
	return cmd
}

type joinPlan struct {
	chainID     string
	genesis     *cmttypes.GenesisDoc
	peers       []string
	trustHeight int64
	trustHash   string
}

// planJoin asks the RPC nodes for the genesis, their P2P addresses and a
// header to trust.
func planJoin(ctx context.Context, rpcs []string, chainID string, back int64) (joinPlan, error) {
	var plan joinPlan
	for i, addr := range rpcs {
		c, err := rpchttp.New(addr, "/websocket")
		if err != nil {
			return plan, fmt.Errorf("rpc %s: %w", addr, err)
		}
		st, err := c.Status(ctx)
		if err != nil {
			return plan, fmt.Errorf("rpc %s: status: %w", addr, err)
		}
		if chainID == "" {
			chainID = st.NodeInfo.Network
		}
		if st.NodeInfo.Network != chainID {
			return plan, fmt.Errorf("rpc %s serves chain %q, not %q", addr, st.NodeInfo.Network, chainID)
		}
		// The node's own P2P address, with the host the RPC was reached at
		// when it listens on all interfaces.
		p2p := st.NodeInfo.ListenAddr
		if u, err := url.Parse(p2p); err == nil && u.Host != "" {
			p2p = u.Host
		}
		host, port, err := net.SplitHostPort(p2p)
		if err != nil {
			return plan, fmt.Errorf("rpc %s: p2p address %q: %w", addr, st.NodeInfo.ListenAddr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			if u, err := url.Parse(addr); err == nil {
				host = u.Hostname()
			}
		}
		plan.peers = append(plan.peers, fmt.Sprintf("%s@%s", st.NodeInfo.ID(), net.JoinHostPort(host, port)))
		if i > 0 {
			continue
		}
		gen, err := c.Genesis(ctx)
		if err != nil {
			return plan, fmt.Errorf("rpc %s: genesis (a large genesis needs the file itself): %w", addr, err)
		}
		plan.genesis = gen.Genesis
		h := st.SyncInfo.LatestBlockHeight - back
		if h < 1 {
			h = 1
		}
		blk, err := c.Block(ctx, &h)
		if err != nil {
			return plan, fmt.Errorf("rpc %s: block %d: %w", addr, h, err)
		}
		plan.trustHeight, plan.trustHash = h, blk.BlockID.Hash.String()
	}
	plan.chainID = chainID
	return plan, nil
}
