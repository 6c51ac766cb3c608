package app

import (
	"fmt"
	"github.com/gpunet/gpunet/app/params"

	dbm "github.com/cosmos/cosmos-db"

	"cosmossdk.io/depinject"
	"cosmossdk.io/log/v2"

	"github.com/cosmos/cosmos-sdk/baseapp"
	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/codec"
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	"github.com/cosmos/cosmos-sdk/runtime"
	servertypes "github.com/cosmos/cosmos-sdk/server/types"
	"github.com/cosmos/cosmos-sdk/types/module"
	authkeeper "github.com/cosmos/cosmos-sdk/x/auth/keeper"
	authzkeeper "github.com/cosmos/cosmos-sdk/x/authz/keeper"
	bankkeeper "github.com/cosmos/cosmos-sdk/x/bank/keeper"
	consensuskeeper "github.com/cosmos/cosmos-sdk/x/consensus/keeper"
	distrkeeper "github.com/cosmos/cosmos-sdk/x/distribution/keeper"
	evidencekeeper "github.com/cosmos/cosmos-sdk/x/evidence/keeper"
	feegrantkeeper "github.com/cosmos/cosmos-sdk/x/feegrant/keeper"
	govkeeper "github.com/cosmos/cosmos-sdk/x/gov/keeper"
	mintkeeper "github.com/cosmos/cosmos-sdk/x/mint/keeper"
	slashingkeeper "github.com/cosmos/cosmos-sdk/x/slashing/keeper"
	stakingkeeper "github.com/cosmos/cosmos-sdk/x/staking/keeper"
	upgradekeeper "github.com/cosmos/cosmos-sdk/x/upgrade/keeper"

	auditkeeper "github.com/gpunet/gpunet/x/audit/keeper"
	escrowkeeper "github.com/gpunet/gpunet/x/escrow/keeper"
	marketkeeper "github.com/gpunet/gpunet/x/market/keeper"
	providerkeeper "github.com/gpunet/gpunet/x/provider/keeper"
)

// DefaultNodeHome is where gpunetd keeps its data unless --home says otherwise.
var DefaultNodeHome = params.DefaultHome()

var (
	_ runtime.AppI            = (*App)(nil)
	_ servertypes.Application = (*App)(nil)
)

// App is the gpunet application: a runtime.App plus typed access to keepers.
type App struct {
	*runtime.App

	legacyAmino       *codec.LegacyAmino
	appCodec          codec.Codec
	txConfig          client.TxConfig
	interfaceRegistry codectypes.InterfaceRegistry

	AccountKeeper         authkeeper.AccountKeeper
	BankKeeper            bankkeeper.BaseKeeper
	StakingKeeper         *stakingkeeper.Keeper
	SlashingKeeper        slashingkeeper.Keeper
	MintKeeper            mintkeeper.Keeper
	DistrKeeper           distrkeeper.Keeper
	GovKeeper             *govkeeper.Keeper
	UpgradeKeeper         *upgradekeeper.Keeper
	AuthzKeeper           authzkeeper.Keeper
	EvidenceKeeper        evidencekeeper.Keeper
	FeeGrantKeeper        feegrantkeeper.Keeper
	ConsensusParamsKeeper consensuskeeper.Keeper

	ProviderKeeper *providerkeeper.Keeper
	AuditKeeper    *auditkeeper.Keeper
	EscrowKeeper   *escrowkeeper.Keeper
	MarketKeeper   *marketkeeper.Keeper

	sm *module.SimulationManager
}

// New builds the application over db. loadLatest loads the last committed
// state; tests and export at a past height pass false and load themselves.
func New(
	logger log.Logger,
	db dbm.DB,
	loadLatest bool,
	appOpts servertypes.AppOptions,
	baseAppOptions ...func(*baseapp.BaseApp),
) (*App, error) {
	var (
		app        = &App{}
		appBuilder *runtime.AppBuilder
	)
	if err := depinject.Inject(
		depinject.Configs(AppConfig(), depinject.Supply(appOpts, logger)),
		&appBuilder,
		&app.appCodec,
		&app.legacyAmino,
		&app.txConfig,
		&app.interfaceRegistry,
		&app.AccountKeeper,
		&app.BankKeeper,
		&app.StakingKeeper,
		&app.SlashingKeeper,
		&app.MintKeeper,
		&app.DistrKeeper,
		&app.GovKeeper,
		&app.UpgradeKeeper,
		&app.AuthzKeeper,
		&app.EvidenceKeeper,
		&app.FeeGrantKeeper,
		&app.ConsensusParamsKeeper,
		&app.ProviderKeeper,
		&app.AuditKeeper,
		&app.EscrowKeeper,
		&app.MarketKeeper,
	); err != nil {
		return nil, fmt.Errorf("wire app: %w", err)
	}

	app.App = appBuilder.Build(db, baseAppOptions...)

	anteHandler, err := newAnteHandler(app)
	if err != nil {
		return nil, err
	}
	app.SetAnteHandler(anteHandler)

	app.sm = module.NewSimulationManagerFromAppModules(app.ModuleManager.Modules, nil)
	app.sm.RegisterStoreDecoders()

	if err := app.registerUpgradeHandlers(); err != nil {
		return nil, err
	}
	app.SetInitChainer(app.initChainer)
	if err := app.Load(loadLatest); err != nil {
		return nil, fmt.Errorf("load app state: %w", err)
	}
	return app, nil
}

// LegacyAmino returns the amino codec, still needed by a few legacy CLI paths.
func (app *App) LegacyAmino() *codec.LegacyAmino { return app.legacyAmino }

// AppCodec returns the app's protobuf codec.
func (app *App) AppCodec() codec.Codec { return app.appCodec }

// InterfaceRegistry returns the app's interface registry.
func (app *App) InterfaceRegistry() codectypes.InterfaceRegistry { return app.interfaceRegistry }

// TxConfig returns the app's transaction config.
func (app *App) TxConfig() client.TxConfig { return app.txConfig }

// SimulationManager implements runtime.AppI.
func (app *App) SimulationManager() *module.SimulationManager { return app.sm }
