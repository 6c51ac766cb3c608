package types

import "cosmossdk.io/collections"

const (
	// ModuleName is the name of x/provider; its module account holds every bond.
	ModuleName = "provider"
	// StoreKey is the KV store key of x/provider.
	StoreKey = ModuleName
)

// Collection prefixes. Never renumber: they are the on-disk layout.
var (
	ParamsKey            = collections.NewPrefix(0)
	ProvidersKey         = collections.NewPrefix(1)
	ProvidersByModelKey  = collections.NewPrefix(2)
	UnbondingsKey        = collections.NewPrefix(3)
	UnbondingQueueKey    = collections.NewPrefix(4)
	UnbondingsByOwnerKey = collections.NewPrefix(5)
	NextUnbondingIDKey   = collections.NewPrefix(6)
	ParkedKey            = collections.NewPrefix(7)
)
