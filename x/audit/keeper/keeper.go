// Package keeper holds x/audit's state: which auditor vouched for which
// attributes of which provider.
package keeper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"cosmossdk.io/collections"
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/event"
	"cosmossdk.io/core/store"
	errorsmod "cosmossdk.io/errors"

	"github.com/cosmos/cosmos-sdk/codec"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/gpunet/gpunet/x/audit/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Keeper owns x/audit's state.
type Keeper struct {
	addressCodec address.Codec
	events       event.Service

	Schema collections.Schema
	// Attributes by (owner, auditor).
	Attributes collections.Map[collections.Pair[sdk.AccAddress, sdk.AccAddress], types.AuditedAttributes]
	// ByAuditor indexes Attributes by (auditor, owner).
	ByAuditor collections.KeySet[collections.Pair[sdk.AccAddress, sdk.AccAddress]]
}

// NewKeeper builds the keeper and its schema.
func NewKeeper(cdc codec.BinaryCodec, addressCodec address.Codec, storeService store.KVStoreService, events event.Service) (*Keeper, error) {
	sb := collections.NewSchemaBuilder(storeService)
	pair := collections.PairKeyCodec(sdk.AccAddressKey, sdk.AccAddressKey)
	k := &Keeper{
		addressCodec: addressCodec,
		events:       events,
		Attributes:   collections.NewMap(sb, types.AttributesKey, "attributes", pair, codec.CollValue[types.AuditedAttributes](cdc)),
		ByAuditor:    collections.NewKeySet(sb, types.ByAuditorKey, "by_auditor", pair),
	}
	schema, err := sb.Build()
	if err != nil {
		return nil, err
	}
	k.Schema = schema
	return k, nil
}

func (k *Keeper) parseAddress(field, s string) (sdk.AccAddress, error) {
	bz, err := k.addressCodec.StringToBytes(s)
	if err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidAddress, "%s %q: %v", field, s, err)
	}
	return bz, nil
}

// set stores an entry and its index, or removes both when it has no
// attributes left.
func (k *Keeper) set(ctx context.Context, owner, auditor sdk.AccAddress, a types.AuditedAttributes) error {
	if len(a.Attributes) == 0 {
		if err := k.Attributes.Remove(ctx, collections.Join(owner, auditor)); err != nil {
			return err
		}
		return k.ByAuditor.Remove(ctx, collections.Join(auditor, owner))
	}
	if err := k.Attributes.Set(ctx, collections.Join(owner, auditor), a); err != nil {
		return err
	}
	return k.ByAuditor.Set(ctx, collections.Join(auditor, owner))
}

// get is what auditor signed for owner (empty when nothing).
func (k *Keeper) get(ctx context.Context, owner, auditor sdk.AccAddress) (types.AuditedAttributes, error) {
	a, err := k.Attributes.Get(ctx, collections.Join(owner, auditor))
	if errors.Is(err, collections.ErrNotFound) {
		return types.AuditedAttributes{}, nil
	}
	return a, err
}

// Sign merges attrs into what auditor signed for owner: each key is set to
// its value. The result is sorted by key and capped like a provider's own
// attributes.
func (k *Keeper) Sign(ctx context.Context, auditor, owner sdk.AccAddress, attrs []providertypes.Attribute) error {
	a, err := k.get(ctx, owner, auditor)
	if err != nil {
		return err
	}
	a.Owner, a.Auditor = owner.String(), auditor.String()
	for _, n := range attrs {
		if i := slices.IndexFunc(a.Attributes, func(x providertypes.Attribute) bool { return x.Key == n.Key }); i >= 0 {
			a.Attributes[i].Value = n.Value
		} else {
			a.Attributes = append(a.Attributes, n)
		}
	}
	slices.SortFunc(a.Attributes, func(x, y providertypes.Attribute) int { return strings.Compare(x.Key, y.Key) })
	if err := providertypes.ValidateAttributes(a.Attributes); err != nil {
		return errorsmod.Wrap(types.ErrInvalidAttributes, err.Error())
	}
	return k.set(ctx, owner, auditor, a)
}

// Delete withdraws auditor's signature from keys of owner (every key when
// keys is empty) and returns the keys withdrawn.
func (k *Keeper) Delete(ctx context.Context, auditor, owner sdk.AccAddress, keys []string) ([]string, error) {
	a, err := k.get(ctx, owner, auditor)
	if err != nil {
		return nil, err
	}
	if len(a.Attributes) == 0 {
		return nil, errorsmod.Wrapf(types.ErrNotFound, "%s signed nothing for %s", auditor, owner)
	}
	var removed []string
	kept := a.Attributes[:0]
	for _, x := range a.Attributes {
		if len(keys) == 0 || slices.Contains(keys, x.Key) {
			removed = append(removed, x.Key)
			continue
		}
		kept = append(kept, x)
	}
	if len(removed) == 0 {
		return nil, errorsmod.Wrapf(types.ErrNotFound, "%s signed none of %v for %s", auditor, keys, owner)
	}
	a.Attributes = kept
	return removed, k.set(ctx, owner, auditor, a)
}

// ProviderAttributes is every auditor's signatures for owner, by auditor.
func (k *Keeper) ProviderAttributes(ctx context.Context, owner sdk.AccAddress) ([]types.AuditedAttributes, error) {
	var out []types.AuditedAttributes
	err := k.Attributes.Walk(ctx, collections.NewPrefixedPairRange[sdk.AccAddress, sdk.AccAddress](owner),
		func(_ collections.Pair[sdk.AccAddress, sdk.AccAddress], a types.AuditedAttributes) (bool, error) {
			out = append(out, a)
			return false, nil
		})
	return out, err
}

// Satisfies reports whether owner meets a group's signed_by for its
// requirements. It reads only the named auditors' entries: at most
// types.MaxSignedBy lookups.
func (k *Keeper) Satisfies(ctx context.Context, owner sdk.AccAddress, requirements []providertypes.Attribute, allOf, anyOf []string) (bool, error) {
	if len(allOf) == 0 && len(anyOf) == 0 {
		return true, nil
	}
	var signed []types.AuditedAttributes
	for _, s := range append(append([]string(nil), allOf...), anyOf...) {
		auditor, err := k.parseAddress("auditor", s)
		if err != nil {
			return false, err
		}
		a, err := k.get(ctx, owner, auditor)
		if err != nil {
			return false, err
		}
		if len(a.Attributes) > 0 {
			signed = append(signed, a)
		}
	}
	return types.Satisfies(signed, requirements, allOf, anyOf), nil
}

// InitGenesis loads a validated genesis state.
func (k *Keeper) InitGenesis(ctx context.Context, gs types.GenesisState) error {
	if err := gs.Validate(k.addressCodec); err != nil {
		return err
	}
	for _, a := range gs.Attributes {
		owner, err := k.parseAddress("owner", a.Owner)
		if err != nil {
			return err
		}
		auditor, err := k.parseAddress("auditor", a.Auditor)
		if err != nil {
			return err
		}
		if err := k.set(ctx, owner, auditor, a); err != nil {
			return err
		}
	}
	return nil
}

// ExportGenesis writes every entry out, by (owner, auditor).
func (k *Keeper) ExportGenesis(ctx context.Context) (*types.GenesisState, error) {
	gs := types.DefaultGenesis()
	err := k.Attributes.Walk(ctx, nil, func(_ collections.Pair[sdk.AccAddress, sdk.AccAddress], a types.AuditedAttributes) (bool, error) {
		gs.Attributes = append(gs.Attributes, a)
		return false, nil
	})
	return gs, err
}

// IndexInvariant checks that every entry is valid and stored under its own
// addresses, and that the by-auditor index holds exactly the entries.
func (k *Keeper) IndexInvariant(ctx context.Context) (string, error) {
	var broken string
	n := 0
	err := k.Attributes.Walk(ctx, nil, func(key collections.Pair[sdk.AccAddress, sdk.AccAddress], a types.AuditedAttributes) (bool, error) {
		n++
		if err := a.Validate(k.addressCodec); err != nil {
			broken = err.Error()
			return true, nil
		}
		if a.Owner != key.K1().String() || a.Auditor != key.K2().String() {
			broken = fmt.Sprintf("entry under (%s, %s) names (%s, %s)", key.K1(), key.K2(), a.Owner, a.Auditor)
			return true, nil
		}
		has, err := k.ByAuditor.Has(ctx, collections.Join(key.K2(), key.K1()))
		if err != nil {
			return true, err
		}
		if !has {
			broken = fmt.Sprintf("%s by %s is missing from the auditor index", a.Owner, a.Auditor)
			return true, nil
		}
		return false, nil
	})
	if err != nil || broken != "" {
		return broken, err
	}
	m := 0
	if err := k.ByAuditor.Walk(ctx, nil, func(collections.Pair[sdk.AccAddress, sdk.AccAddress]) (bool, error) {
		m++
		return false, nil
	}); err != nil {
		return "", err
	}
	if m != n {
		return fmt.Sprintf("the auditor index holds %d entries, the attributes %d", m, n), nil
	}
	return "", nil
}

type msgServer struct{ *Keeper }

// NewMsgServerImpl returns the x/audit Msg service.
func NewMsgServerImpl(k *Keeper) types.MsgServer { return msgServer{k} }

func (m msgServer) SignProviderAttributes(ctx context.Context, msg *types.MsgSignProviderAttributes) (*types.MsgSignProviderAttributesResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	auditor, err := m.parseAddress("auditor", msg.Auditor)
	if err != nil {
		return nil, err
	}
	owner, err := m.parseAddress("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	if err := m.Sign(ctx, auditor, owner, msg.Attributes); err != nil {
		return nil, err
	}
	keys := make([]string, len(msg.Attributes))
	for i, a := range msg.Attributes {
		keys[i] = a.Key
	}
	return &types.MsgSignProviderAttributesResponse{}, m.events.EventManager(ctx).Emit(ctx, &types.EventAttributesSigned{Owner: msg.Owner, Auditor: msg.Auditor, Keys: keys})
}

func (m msgServer) DeleteProviderAttributes(ctx context.Context, msg *types.MsgDeleteProviderAttributes) (*types.MsgDeleteProviderAttributesResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	auditor, err := m.parseAddress("auditor", msg.Auditor)
	if err != nil {
		return nil, err
	}
	owner, err := m.parseAddress("owner", msg.Owner)
	if err != nil {
		return nil, err
	}
	removed, err := m.Delete(ctx, auditor, owner, msg.Keys)
	if err != nil {
		return nil, err
	}
	return &types.MsgDeleteProviderAttributesResponse{}, m.events.EventManager(ctx).Emit(ctx, &types.EventAttributesDeleted{Owner: msg.Owner, Auditor: msg.Auditor, Keys: removed})
}

type queryServer struct{ *Keeper }

// NewQueryServerImpl returns the x/audit Query service.
func NewQueryServerImpl(k *Keeper) types.QueryServer { return queryServer{k} }

func (q queryServer) ProviderAttributes(ctx context.Context, req *types.QueryProviderAttributesRequest) (*types.QueryProviderAttributesResponse, error) {
	owner, err := q.parseAddress("owner", req.GetOwner())
	if err != nil {
		return nil, err
	}
	items, page, err := query.CollectionPaginate(ctx, q.Attributes, req.GetPagination(),
		func(_ collections.Pair[sdk.AccAddress, sdk.AccAddress], a types.AuditedAttributes) (types.AuditedAttributes, error) {
			return a, nil
		}, query.WithCollectionPaginationPairPrefix[sdk.AccAddress, sdk.AccAddress](owner))
	if err != nil {
		return nil, err
	}
	return &types.QueryProviderAttributesResponse{Attributes: items, Pagination: page}, nil
}

func (q queryServer) ProviderAuditorAttributes(ctx context.Context, req *types.QueryProviderAuditorAttributesRequest) (*types.QueryProviderAuditorAttributesResponse, error) {
	owner, err := q.parseAddress("owner", req.GetOwner())
	if err != nil {
		return nil, err
	}
	auditor, err := q.parseAddress("auditor", req.GetAuditor())
	if err != nil {
		return nil, err
	}
	a, err := q.get(ctx, owner, auditor)
	if err != nil {
		return nil, err
	}
	if len(a.Attributes) == 0 {
		return nil, errorsmod.Wrapf(types.ErrNotFound, "%s signed nothing for %s", req.GetAuditor(), req.GetOwner())
	}
	return &types.QueryProviderAuditorAttributesResponse{Attributes: a}, nil
}

func (q queryServer) AuditorAttributes(ctx context.Context, req *types.QueryAuditorAttributesRequest) (*types.QueryAuditorAttributesResponse, error) {
	auditor, err := q.parseAddress("auditor", req.GetAuditor())
	if err != nil {
		return nil, err
	}
	items, page, err := query.CollectionPaginate(ctx, q.ByAuditor, req.GetPagination(),
		func(key collections.Pair[sdk.AccAddress, sdk.AccAddress], _ collections.NoValue) (types.AuditedAttributes, error) {
			return q.Attributes.Get(ctx, collections.Join(key.K2(), key.K1()))
		}, query.WithCollectionPaginationPairPrefix[sdk.AccAddress, sdk.AccAddress](auditor))
	if err != nil {
		return nil, err
	}
	return &types.QueryAuditorAttributesResponse{Attributes: items, Pagination: page}, nil
}
