// Package keyed stores records without the identity their store key
// already spells out. A deployment's owner and dseq, an order's id and an
// escrow account's id are all in the key; written into the value too they
// cost 30 gas a byte on every write and 3 on every read. A Map strips them
// before a write and puts them back from the key after a read, so callers
// see whole records. Values written with the identity (before this layout)
// read the same: the key's identity overwrites theirs.
package keyed

import (
	"context"

	"cosmossdk.io/collections"
	"cosmossdk.io/core/address"
)

// Map is a collections.Map whose values are stored without their identity.
type Map[K, V any] struct {
	m     collections.Map[K, V]
	strip func(V) V
	fill  func(K, *V)
}

// NewMap wraps m: strip clears the identity from a value before it is
// written, fill sets it from the key after it is read.
func NewMap[K, V any](m collections.Map[K, V], strip func(V) V, fill func(K, *V)) Map[K, V] {
	return Map[K, V]{m: m, strip: strip, fill: fill}
}

// Get reads the value at key, whole.
func (m Map[K, V]) Get(ctx context.Context, key K) (V, error) {
	v, err := m.m.Get(ctx, key)
	if err == nil {
		m.fill(key, &v)
	}
	return v, err
}

// Set writes v at key without its identity.
func (m Map[K, V]) Set(ctx context.Context, key K, v V) error { return m.m.Set(ctx, key, m.strip(v)) }

// Has reports whether key is set.
func (m Map[K, V]) Has(ctx context.Context, key K) (bool, error) { return m.m.Has(ctx, key) }

// Remove deletes key.
func (m Map[K, V]) Remove(ctx context.Context, key K) error { return m.m.Remove(ctx, key) }

// Walk calls fn with each whole value in rng, in key order, until fn
// returns true or an error.
func (m Map[K, V]) Walk(ctx context.Context, rng collections.Ranger[K], fn func(K, V) (bool, error)) error {
	return m.m.Walk(ctx, rng, func(k K, v V) (bool, error) {
		m.fill(k, &v)
		return fn(k, v)
	})
}

// KeyValues lists the whole key-value pairs in rng.
func (m Map[K, V]) KeyValues(ctx context.Context, rng collections.Ranger[K]) ([]collections.KeyValue[K, V], error) {
	var out []collections.KeyValue[K, V]
	err := m.Walk(ctx, rng, func(k K, v V) (bool, error) {
		out = append(out, collections.KeyValue[K, V]{Key: k, Value: v})
		return false, nil
	})
	return out, err
}

// Keys iterates the keys in rng; its values are stored ones (without
// their identity), so read whole values with Walk or Get.
func (m Map[K, V]) Keys(ctx context.Context, rng collections.Ranger[K]) (collections.Iterator[K, V], error) {
	return m.m.Iterate(ctx, rng)
}

// Stored is the underlying map, for query pagination: its values lack
// their identity until passed through Fill.
func (m Map[K, V]) Stored() collections.Map[K, V] { return m.m }

// Fill puts key's identity into v (a value read from Stored).
func (m Map[K, V]) Fill(key K, v V) V {
	m.fill(key, &v)
	return v
}

// Address spells a key's address with the chain's codec. A key holds only
// addresses that were parsed from strings, so it cannot fail; if it did,
// the record would read with an empty address, which every check refuses.
func Address(ac address.Codec, bz []byte) string {
	s, err := ac.BytesToString(bz)
	if err != nil {
		return ""
	}
	return s
}
