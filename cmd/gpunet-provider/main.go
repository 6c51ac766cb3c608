// Command gpunet-provider is the provider daemon: it discovers the host's
// GPUs, registers the provider on chain, bids on orders, runs won leases as
// containers and serves the tenant API.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"syscall"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	_ "github.com/gpunet/gpunet/app/params" // bech32 prefixes and the ugpn denom
	"github.com/gpunet/gpunet/provider/chain"
	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/provider/daemon"
	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/provider/leaseauth"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/provider/runtime/kube"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// version is stamped by `make build`.
var version = "dev"

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "gpunet-provider",
		Short:         "gpunet provider daemon: bid on GPU orders, run leases, get paid",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().String("config", defaultConfig(), "path of provider.yaml (env GPUNET_PROVIDER_CONFIG)")
	root.AddCommand(initCmd(), inventoryCmd(), egressCmd(), registerCmd(), runCmd(), versionCmd())
	return root
}

func defaultConfig() string {
	if p := os.Getenv("GPUNET_PROVIDER_CONFIG"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".gpunet-provider", "provider.yaml")
}

func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	return config.Load(path)
}

func newLogger(format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if os.Getenv("GPUNET_PROVIDER_DEBUG") != "" {
		opts.Level = slog.LevelDebug
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func initCmd() *cobra.Command {
	var p config.TemplateParams
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented provider.yaml and the API's self-signed TLS certificate",
		Example: `gpunet-provider init --chain-id gpunet-local-1 --key provider --host-uri https://gpu1.example.com:8443
gpunet-provider --config ./prov/provider.yaml init --chain-id gpunet-local-1 --key provider --host-uri https://127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("config")
			u, err := url.Parse(p.HostURI)
			if err != nil || u.Hostname() == "" {
				return fmt.Errorf("--host-uri %q is not an https URL", p.HostURI)
			}
			if err := config.WriteTemplate(path, p); err != nil {
				return err
			}
			c, err := config.Load(path)
			if err != nil {
				return fmt.Errorf("the written config does not load (a bug): %w", err)
			}
			if err := os.MkdirAll(c.Path(c.DataDir), 0o700); err != nil {
				return err
			}
			certPEM, keyPEM, err := leaseauth.GenerateCert([]string{u.Hostname(), "localhost", "127.0.0.1"})
			if err != nil {
				return err
			}
			if err := os.WriteFile(c.CertFile(), certPEM, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(c.KeyFile(), keyPEM, 0o600); err != nil {
				return err
			}
			fp, _ := leaseauth.CertFingerprint(certPEM)
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nwrote %s (sha256 %s; registered on chain so tenants can pin it)\nnext: edit the pricing, then run 'gpunet-provider register' and 'gpunet-provider run'\n", path, c.CertFile(), fp)
			return nil
		},
	}
	cmd.Flags().StringVar(&p.ChainID, "chain-id", "gpunet-local-1", "chain id")
	cmd.Flags().StringVar(&p.RPC, "rpc", "http://127.0.0.1:26657", "CometBFT RPC URL")
	cmd.Flags().StringVar(&p.GRPC, "grpc", "127.0.0.1:9090", "gRPC host:port")
	cmd.Flags().StringVar(&p.KeyName, "key", "provider", "keyring key of the provider account")
	cmd.Flags().StringVar(&p.KeyringBackend, "keyring-backend", "file", "keyring backend: file or os (test only on a local chain)")
	cmd.Flags().StringVar(&p.HostURI, "host-uri", "", "https URL tenants reach the API at (required)")
	cmd.Flags().StringVar(&p.Listen, "listen", "0.0.0.0:8443", "API listen address")
	_ = cmd.MarkFlagRequired("host-uri")
	return cmd
}

func inventoryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Print the GPUs NVML detects (model, UUID, memory, driver, health) and what is offered",
		Long: `Print what this host offers. GPUs come from NVML; without an NVIDIA driver the
command says so, and lists the config's declared GPUs marked as declared. Without
a config only NVML is asked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					return err
				}
				c, _ = config.Parse([]byte("chain: {id: x}\nkey: {name: x}\nprovider: {host_uri: 'https://localhost:8443'}\npricing: {cpu_core_per_hour: '1'}\n"))
			}
			inv, err := discoverInventory(cmd.Context(), c)
			if err != nil {
				return err
			}
			if c.Runtime.Kind == config.RuntimeKubernetes {
				// The cluster confines leases (network policies, quotas,
				// Pod Security per lease namespace), not this host.
				if j, _ := cmd.Flags().GetBool("json"); j {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(inv)
				}
				inv.Print(cmd.OutOrStdout())
				return nil
			}
			iso, isoErr := hostIsolation(cmd.Context(), c)
			if j, _ := cmd.Flags().GetBool("json"); j {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				report := struct {
					inventory.Inventory
					Isolation      *runtime.Isolation `json:"isolation,omitempty"`
					IsolationError string             `json:"isolation_error,omitempty"`
				}{Inventory: inv}
				if isoErr != nil {
					report.IsolationError = isoErr.Error()
				} else {
					report.Isolation = &iso
				}
				return enc.Encode(report)
			}
			inv.Print(cmd.OutOrStdout())
			out := cmd.OutOrStdout()
			if isoErr != nil {
				fmt.Fprintf(out, "Isolation: unknown (%v)\n", isoErr)
				return nil
			}
			fmt.Fprintf(out, "Isolation:\n  leases run as host root: %v (userns-remap %v, container_user %q)\n  storage limit: %s (%s)\n  egress filter: %s\n",
				iso.LeasesRunAsHostRoot, iso.UsernsRemap, iso.ContainerUser, iso.StorageLimit, iso.StorageDriver, c.Runtime.EgressFilter)
			return nil
		},
	}
	cmd.Flags().Bool("json", false, "print JSON")
	return cmd
}

func egressCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "egress", Short: "The iptables filter that keeps leases off this host and its networks"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rules",
		Short: "Print a shell script (run it as root) that installs the lease egress filter for this config",
		Long: `Print the script that installs the filter the daemon installs itself with
runtime.egress_filter: install, for operators who set it to verify and manage the
host firewall themselves. Running it twice changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			p, err := c.EgressPolicy()
			if err != nil {
				return err
			}
			_, err = io.WriteString(cmd.OutOrStdout(), p.Script())
			return err
		},
	})
	return cmd
}

// hostIsolation asks the Docker engine how it would contain leases under
// this config.
func hostIsolation(ctx context.Context, c *config.Config) (runtime.Isolation, error) {
	rt, err := runtime.New(ctx, runtime.Options{
		Provider: "inventory", DockerHost: c.Runtime.DockerHost, ContainerUser: c.Runtime.ContainerUser,
		StorageLimit: c.Runtime.StorageLimit, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return runtime.Isolation{}, err
	}
	defer func() { _ = rt.Close() }() // a read-only probe
	return rt.Isolation(), nil
}

// declaredAttribute marks on chain that a provider's GPUs are declared, not detected.
const declaredAttribute = "gpu-inventory"

func registerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register the provider on chain (or update its record) from the config and the detected inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			inv, err := discoverInventory(cmd.Context(), c)
			if err != nil {
				return err
			}
			fp, err := leaseauth.CertFileFingerprint(c.CertFile())
			if err != nil {
				return fmt.Errorf("API certificate %s: %w (run 'gpunet-provider init')", c.CertFile(), err)
			}
			desc := providertypes.Description{
				HostURI: c.Provider.HostURI, TLSCertSHA256: fp, GPUs: inv.OnChainGPUs(),
				Capacity: providertypes.Capacity{CpuMillis: inv.CPUMillis, MemoryBytes: inv.MemoryBytes, StorageBytes: inv.StorageBytes, StorageClasses: inv.ChainStorageClasses()},
				Info:     providertypes.Info{Email: c.Provider.Email, Website: c.Provider.Website},
			}
			attrs := map[string]string{}
			for k, v := range c.Provider.Attributes {
				attrs[k] = v
			}
			attrs[declaredAttribute] = string(inv.Source)
			keys := make([]string, 0, len(attrs))
			for k := range attrs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				desc.Attributes = append(desc.Attributes, providertypes.Attribute{Key: k, Value: attrs[k]})
			}
			if err := desc.Validate(); err != nil {
				return fmt.Errorf("provider description: %w", err)
			}
			pass, err := c.KeyringPassphrase()
			if err != nil {
				return err
			}
			cl, err := chain.Dial(chain.Options{ChainID: c.Chain.ID, RPC: c.Chain.RPC, GRPC: c.Chain.GRPC,
				GRPCTLS: c.Chain.GRPCTLS, GRPCCAFile: c.Path(c.Chain.GRPCCAFile), GRPCServerName: c.Chain.GRPCServerName,
				KeyName: c.Key.Name, KeyringBackend: c.Key.KeyringBackend, KeyringDir: c.Path(c.Key.KeyringDir), Passphrase: pass})
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }() // a closing gRPC connection has nothing to report
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			gasPrice, _ := config.ParseGasPrice(c.Chain.GasPrices)
			logger := newLogger(c.LogFormat)
			b := chain.NewBroadcaster(cl, gasPrice, c.Chain.GasAdjustment, logger)
			// The same cap as the daemon's: a node that inflates its gas
			// estimate must not make the registration pay for it.
			if b.MaxFee, err = config.ParseCoin(c.Chain.MaxFee); err != nil {
				return fmt.Errorf("chain.max_fee: %w", err)
			}
			go b.Run(ctx)

			owner := cl.Address.String()
			_, err = cl.Provider.Provider(ctx, &providertypes.QueryProviderRequest{Owner: owner})
			if err != nil && status.Code(err) != codes.NotFound {
				return fmt.Errorf("read provider record from %s: %w", c.Chain.GRPC, err)
			}
			exists := err == nil
			var msg sdk.Msg
			action := "updated"
			if exists {
				msg = &providertypes.MsgUpdateProvider{Owner: owner, HostUri: desc.HostURI, TlsCertSha256: desc.TLSCertSHA256,
					Attributes: desc.Attributes, Gpus: desc.GPUs, Capacity: desc.Capacity, Info: desc.Info}
			} else {
				if c.Provider.Bond == "" {
					return errors.New("provider.bond is required for the first registration")
				}
				amt, err := config.ParseCoin(c.Provider.Bond)
				if err != nil {
					return err
				}
				msg = &providertypes.MsgRegisterProvider{Owner: owner, HostUri: desc.HostURI, TlsCertSha256: desc.TLSCertSHA256,
					Attributes: desc.Attributes, Gpus: desc.GPUs, Capacity: desc.Capacity, Info: desc.Info, Bond: sdk.NewCoin(config.Denom, amt)}
				action = "registered"
			}
			res, err := b.SendAndWait(ctx, time.Minute, msg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "provider %s %s in block %d (tx %s)\n", owner, action, res.Height, res.TxHash)
			fmt.Fprintf(out, "host_uri %s, certificate sha256 %s, inventory %s\n", desc.HostURI, fp, inv.Source)
			for _, g := range desc.GPUs {
				fmt.Fprintf(out, "  %d x %s (%d MiB)\n", g.Count, g.Model, g.MemoryMib)
			}
			if inv.Source == inventory.SourceDeclared {
				fmt.Fprintln(out, "NOTE: GPUs are DECLARED in the config, not detected by NVML; the chain record says gpu-inventory=declared")
			}
			return nil
		},
	}
	return cmd
}

func runCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: follow the chain, bid, run leases, serve the tenant API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			logger := newLogger(c.LogFormat)
			if n := c.MemoryLimitBytes(); n > 0 && os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(n)
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(c.GCPercent)
			}
			inv, err := discoverInventory(cmd.Context(), c)
			if err != nil {
				return err
			}
			if inv.Source == inventory.SourceDeclared {
				logger.Warn("NVML found no driver; offering the DECLARED GPUs from the config", "nvml", inv.NVMLError, "gpus", len(inv.GPUs))
			}
			d, err := daemon.New(c, inv, logger)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return d.Run(ctx)
		},
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	}
}

// discoverInventory is what the provider offers: this host's (NVML, the
// config) on Docker, the cluster's nodes on Kubernetes.
func discoverInventory(ctx context.Context, c *config.Config) (inventory.Inventory, error) {
	if c.Runtime.Kind != config.RuntimeKubernetes {
		return inventory.Discover(c)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inv, err := kube.Discover(ctx, c.Path(c.Runtime.Kubernetes.Kubeconfig), "")
	if err != nil {
		return inv, err
	}
	inv.StorageClasses, err = inventory.ConfiguredClasses(c)
	return inv, err
}
