// Package cmd assembles the gpunetd command tree: node commands (init, start,
// genesis), keys, transactions and queries (hand-written and autocli).
package cmd

import (
	"os"

	"github.com/spf13/cobra"

	"cosmossdk.io/client/v2/autocli"
	"cosmossdk.io/depinject"
	"cosmossdk.io/log/v2"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/config"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/codec"
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	"github.com/cosmos/cosmos-sdk/server"
	"github.com/cosmos/cosmos-sdk/types/module"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/app"
)

// homeEnv names the environment variable that sets --home.
const homeEnv = "GPUNETD_HOME"

// NewRootCmd builds the gpunetd root command.
func NewRootCmd() *cobra.Command {
	var (
		autoCliOpts  autocli.AppOptions
		basicManager module.BasicManager
		clientCtx    client.Context
	)
	if err := depinject.Inject(
		depinject.Configs(
			app.AppConfig(),
			depinject.Supply(log.NewNopLogger(), appOptions{flags.FlagHome: app.DefaultNodeHome}),
			depinject.Provide(ProvideClientContext),
		),
		&autoCliOpts,
		&basicManager,
		&clientCtx,
	); err != nil {
		panic(err) // the app config is static: a failure here is a programming error
	}

	rootCmd := &cobra.Command{
		Use:           "gpunetd",
		Short:         "gpunet: a decentralized GPU compute marketplace (node and tenant CLI)",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.OutOrStdout())
			cmd.SetErr(cmd.ErrOrStderr())

			// GPUNETD_HOME stands in for --home, for every command.
			if home := os.Getenv(homeEnv); home != "" && !cmd.Flags().Changed(flags.FlagHome) {
				if err := cmd.Flags().Set(flags.FlagHome, home); err != nil {
					return err
				}
			}
			ctx := clientCtx.WithCmdContext(cmd.Context())
			ctx, err := client.ReadPersistentCommandFlags(ctx, cmd.Flags())
			if err != nil {
				return err
			}
			ctx, err = config.ReadFromClientConfig(ctx)
			if err != nil {
				return err
			}
			if err := client.SetCmdClientContextHandler(ctx, cmd); err != nil {
				return err
			}
			appTemplate, appConfig := initAppConfig()
			return server.InterceptConfigsPreRunHandler(cmd, appTemplate, appConfig, initCometBFTConfig())
		},
	}

	initRootCmd(rootCmd, clientCtx.TxConfig, basicManager)

	if err := autoCliOpts.EnhanceRootCommand(rootCmd); err != nil {
		panic(err)
	}
	return rootCmd
}

// appOptions is a fixed servertypes.AppOptions used only to wire the client.
type appOptions map[string]any

func (o appOptions) Get(key string) any { return o[key] }

// ProvideClientContext gives depinject the CLI client context; exported because depinject only calls exported providers.
func ProvideClientContext(
	appCodec codec.Codec,
	interfaceRegistry codectypes.InterfaceRegistry,
	txConfig client.TxConfig,
	legacyAmino *codec.LegacyAmino,
) client.Context {
	clientCtx := client.Context{}.
		WithCodec(appCodec).
		WithInterfaceRegistry(interfaceRegistry).
		WithTxConfig(txConfig).
		WithLegacyAmino(legacyAmino).
		WithInput(os.Stdin).
		WithAccountRetriever(authtypes.AccountRetriever{}).
		WithHomeDir(app.DefaultNodeHome).
		WithViper("GPUNETD")
	return clientCtx
}
