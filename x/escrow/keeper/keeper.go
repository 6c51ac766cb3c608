// Package keeper holds x/escrow's accounts and payments and the settlement
// and depletion logic over them.
package keeper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/runtime/protoiface"

	"cosmossdk.io/collections"
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/event"
	"cosmossdk.io/core/header"
	"cosmossdk.io/core/store"
	errorsmod "cosmossdk.io/errors"

	"github.com/cosmos/cosmos-sdk/codec"
	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/gpunet/gpunet/x/escrow/types"
	"github.com/gpunet/gpunet/x/internal/abcievent"
	"github.com/gpunet/gpunet/x/internal/keyed"
	"github.com/gpunet/gpunet/x/internal/sweep"
)

// AccountKey is the store key of an account: (dseq, owner). The dseq leads,
// as in x/market's order and lease keys: the accounts a block opens sit
// side by side in the store instead of each under its owner.
type AccountKey = collections.Pair[uint64, sdk.AccAddress]

// PaymentKey is the store key of a payment: (dseq, owner, gseq<<32|oseq,
// provider), the key of its lease in x/market.
type PaymentKey = collections.Quad[uint64, sdk.AccAddress, uint64, sdk.AccAddress]

// Keeper owns x/escrow's state.
type Keeper struct {
	cdc          codec.BinaryCodec
	addressCodec address.Codec
	events       event.Service
	headers      header.Service
	authority    string
	bank         types.BankKeeper
	accounts     types.AccountKeeper
	moduleAddr   sdk.AccAddress
	feeCollector string
	hooks        types.Hooks
	storeService store.KVStoreService

	Schema collections.Schema
	Params collections.Item[types.Params]
	// Accounts are stored without their id (it is the key).
	Accounts keyed.Map[AccountKey, types.Account]
	Payments collections.Map[PaymentKey, types.Payment]
	// PaymentsByProvider lists each provider's payments.
	PaymentsByProvider collections.KeySet[collections.Pair[sdk.AccAddress, PaymentKey]]
	// DepletionQueue orders accounts by the first second they cannot pay for.
	// Parked holds the due entries EndBlock could not process.
	Parked         sweep.Parked
	DepletionQueue collections.KeySet[collections.Pair[time.Time, AccountKey]]
	// AutoTopUps are the accounts' automatic refills; TopUpQueue orders
	// them by when the refill is due (depletion less the horizon).
	AutoTopUps collections.Map[AccountKey, types.AutoTopUp]
	TopUpQueue collections.KeySet[collections.Pair[time.Time, AccountKey]]
}

// NewKeeper builds the keeper and its schema.
func NewKeeper(cdc codec.BinaryCodec, ac address.Codec, storeService store.KVStoreService, events event.Service,
	headers header.Service, bank types.BankKeeper, accounts types.AccountKeeper, feeCollector, authority string,
) (*Keeper, error) {
	if _, err := ac.StringToBytes(authority); err != nil {
		return nil, fmt.Errorf("invalid authority address %q: %w", authority, err)
	}
	accountKey := collections.PairKeyCodec(collections.Uint64Key, sdk.AccAddressKey)
	paymentKey := collections.QuadKeyCodec(collections.Uint64Key, sdk.AccAddressKey, collections.Uint64Key, sdk.AccAddressKey)
	sb := collections.NewSchemaBuilder(storeService)
	k := &Keeper{
		cdc: cdc, addressCodec: ac, events: events, headers: headers, authority: authority, bank: bank, feeCollector: feeCollector, storeService: storeService,
		accounts: accounts, moduleAddr: authtypes.NewModuleAddress(types.ModuleName),

		Params: collections.NewItem(sb, types.ParamsKey, "params", codec.CollValue[types.Params](cdc)),
		Parked: sweep.NewParked(sb, types.ParkedKey, cdc),
		Accounts: keyed.NewMap(collections.NewMap(sb, types.AccountsKey, "accounts", accountKey, codec.CollValue[types.Account](cdc)),
			func(a types.Account) types.Account { a.Id = types.AccountID{}; return a },
			func(key AccountKey, a *types.Account) {
				a.Id = types.AccountID{Owner: keyed.Address(ac, key.K2()), Dseq: key.K1()}
			}),
		Payments:           collections.NewMap(sb, types.PaymentsKey, "payments", paymentKey, codec.CollValue[types.Payment](cdc)),
		PaymentsByProvider: collections.NewKeySet(sb, types.PaymentsByProviderKey, "payments_by_provider", collections.PairKeyCodec(sdk.AccAddressKey, paymentKey)),
		DepletionQueue:     collections.NewKeySet(sb, types.DepletionQueueKey, "depletion_queue", collections.PairKeyCodec(sdk.TimeKey, accountKey)),
		AutoTopUps:         collections.NewMap(sb, types.AutoTopUpsKey, "auto_topups", accountKey, codec.CollValue[types.AutoTopUp](cdc)),
		TopUpQueue:         collections.NewKeySet(sb, types.TopUpQueueKey, "topup_queue", collections.PairKeyCodec(sdk.TimeKey, accountKey)),
	}
	schema, err := sb.Build()
	if err != nil {
		return nil, err
	}
	k.Schema = schema
	return k, nil
}

// SetHooks connects x/market.
func (k *Keeper) SetHooks(h types.Hooks) { k.hooks = h }

// Authority is the address allowed to update the params (the gov module).
func (k *Keeper) Authority() string { return k.authority }

func (k *Keeper) emit(ctx context.Context, ev protoiface.MessageV1) error {
	if abcievent.EmitFast(ctx, ev) {
		return nil
	}
	return k.events.EventManager(ctx).Emit(ctx, ev)
}

func (k *Keeper) now(ctx context.Context) time.Time { return k.headers.GetHeaderInfo(ctx).Time }

func (k *Keeper) accountKey(id types.AccountID) (AccountKey, error) {
	owner, err := k.addressCodec.StringToBytes(id.Owner)
	if err != nil {
		return AccountKey{}, errorsmod.Wrapf(types.ErrInvalidAddress, "account owner %q: %v", id.Owner, err)
	}
	return collections.Join(id.Dseq, sdk.AccAddress(owner)), nil
}

func (k *Keeper) paymentKey(id types.PaymentID) (PaymentKey, sdk.AccAddress, error) {
	ak, err := k.accountKey(id.Account)
	if err != nil {
		return PaymentKey{}, nil, err
	}
	provider, err := k.addressCodec.StringToBytes(id.Provider)
	if err != nil {
		return PaymentKey{}, nil, errorsmod.Wrapf(types.ErrInvalidAddress, "payment provider %q: %v", id.Provider, err)
	}
	return collections.Join4(ak.K1(), ak.K2(), uint64(id.Gseq)<<32|uint64(id.Oseq), sdk.AccAddress(provider)), provider, nil
}

// ledger is an account with its open payments, loaded for one change.
type ledger struct {
	key      AccountKey
	account  types.Account
	payments []*types.Payment
	oldDue   *time.Time
}

func (k *Keeper) load(ctx context.Context, id types.AccountID) (*ledger, error) {
	key, err := k.accountKey(id)
	if err != nil {
		return nil, err
	}
	return k.loadKey(ctx, key, id.Name())
}

// loadKey reads an account and its open payments by store key.
func (k *Keeper) loadKey(ctx context.Context, key AccountKey, name string) (*ledger, error) {
	acc, err := k.Accounts.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil, errorsmod.Wrapf(types.ErrAccountNotFound, "%s (closed accounts are removed)", name)
	}
	if err != nil {
		return nil, err
	}
	l := &ledger{key: key, account: acc, oldDue: acc.DepletesAt}
	rng := collections.NewSuperPrefixedQuadRange[uint64, sdk.AccAddress, uint64, sdk.AccAddress](key.K1(), key.K2())
	err = k.Payments.Walk(ctx, rng, func(_ PaymentKey, p types.Payment) (bool, error) {
		l.payments = append(l.payments, &p)
		return false, nil
	})
	return l, err
}

// loadSettled loads an account and settles it to the current block time.
func (k *Keeper) loadSettled(ctx context.Context, id types.AccountID) (*ledger, error) {
	l, err := k.load(ctx, id)
	if err != nil {
		return nil, err
	}
	types.Settle(&l.account, l.payments, k.now(ctx))
	return l, nil
}

// save writes the account and payments back and moves its depletion entry.
func (k *Keeper) save(ctx context.Context, l *ledger) error {
	types.Reschedule(&l.account, l.payments)
	if l.oldDue != nil {
		if err := k.DepletionQueue.Remove(ctx, collections.Join(*l.oldDue, l.key)); err != nil {
			return err
		}
	}
	if d := l.account.DepletesAt; d != nil {
		if err := k.DepletionQueue.Set(ctx, collections.Join(*d, l.key)); err != nil {
			return err
		}
	}
	l.oldDue = l.account.DepletesAt
	if err := k.requeueTopUp(ctx, l); err != nil {
		return err
	}
	for _, p := range l.payments {
		pk, _, err := k.paymentKey(p.Id)
		if err != nil {
			return err
		}
		if err := k.Payments.Set(ctx, pk, *p); err != nil {
			return err
		}
	}
	return k.Accounts.Set(ctx, l.key, l.account)
}

// toModule moves coins from an account into escrow. It sends to the module
// address directly: SendCoinsFromAccountToModule would read the module
// account on every deposit, and InitGenesis has made sure it exists.
func (k *Keeper) toModule(ctx context.Context, from sdk.AccAddress, amt sdk.Coins) error {
	return k.bank.SendCoins(ctx, from, k.moduleAddr, amt)
}
