// Package dseqfirst moves store keys from the owner-first layout to the
// dseq-first one (issue 21). x/market's order, bid and lease keys and
// x/escrow's account and payment keys used to begin with the tenant's
// length-prefixed address followed by the dseq; they now begin with the
// dseq, so that what one block creates sits side by side in the IAVL tree.
//
// The two layouts tell themselves apart by their first byte: an owner-first
// key starts with the address length (20 or 32, never 0), a dseq-first key
// with the top byte of a big-endian dseq, which is 0 for every dseq below
// 2^56 (a dseq is height × 10,000 + n). So a migration can run over a store
// twice, or over one it already moved, and change nothing the second time.
package dseqfirst

import (
	"context"
	"fmt"

	"cosmossdk.io/collections"
	"cosmossdk.io/core/store"
	storetypes "github.com/cosmos/cosmos-sdk/store/v2/types"

	"github.com/gpunet/gpunet/x/internal/sweep"
	sweeptypes "github.com/gpunet/gpunet/x/internal/sweep/types"
)

// Lead says how many bytes of a stored key (after the collection's prefix)
// come before its owner and dseq: a queue's height or time, an index's
// provider address.
type Lead func(key []byte) (int, error)

// None: the key begins with the owner and dseq.
func None([]byte) (int, error) { return 0, nil }

// Fixed: n bytes (an int64 height is 8; a time is the SDK's fixed-width
// time encoding).
func Fixed(n int) Lead {
	return func(key []byte) (int, error) {
		if len(key) < n {
			return 0, fmt.Errorf("key %x is shorter than its %d-byte lead", key, n)
		}
		return n, nil
	}
}

// Address: a length-prefixed address (an index's provider).
func Address(key []byte) (int, error) {
	if len(key) == 0 || len(key) < 1+int(key[0]) {
		return 0, fmt.Errorf("key %x does not begin with a length-prefixed address", key)
	}
	return 1 + int(key[0]), nil
}

// Swap returns key with the 8-byte dseq that follows the length-prefixed
// owner at key[at:] moved in front of the owner, and whether it moved
// anything: a key already dseq first comes back as it is. An owner that
// ends up last (an escrow account's key is just (dseq, owner)) is stored
// without its length, as the collections codecs store a key's last part.
func Swap(key []byte, at int) ([]byte, bool, error) {
	if at >= len(key) {
		return nil, false, fmt.Errorf("key %x ends before its owner at byte %d", key, at)
	}
	n := int(key[at])
	if n == 0 {
		return key, false, nil
	}
	end := at + 1 + n + 8
	if end > len(key) {
		return nil, false, fmt.Errorf("key %x: an owner of %d bytes at byte %d and a dseq do not fit", key, n, at)
	}
	out := make([]byte, 0, len(key))
	out = append(out, key[:at]...)
	out = append(out, key[at+1+n:end]...) // dseq
	if end < len(key) {
		out = append(out, key[at:at+1+n]...) // owner, with its length
	} else {
		out = append(out, key[at+1:at+1+n]...) // owner, last
	}
	out = append(out, key[end:]...)
	return out, true, nil
}

// Collection is one collection to move: its prefix, and what comes before
// the owner and dseq in its keys.
type Collection struct {
	Prefix []byte
	Lead   Lead
}

// Collections moves every collection listed, in order (Prefix).
func Collections(ctx context.Context, svc store.KVStoreService, module string, cs []Collection) error {
	for _, c := range cs {
		if _, err := Prefix(ctx, svc, c.Prefix, c.Lead); err != nil {
			return fmt.Errorf("%s prefix %x: %w", module, c.Prefix, err)
		}
	}
	return nil
}

// Prefix moves every owner-first key under prefix to dseq first, values
// unchanged, and returns how many it moved.
func Prefix(ctx context.Context, svc store.KVStoreService, prefix []byte, lead Lead) (int, error) {
	st := svc.OpenKVStore(ctx)
	it, err := st.Iterator(prefix, storetypes.PrefixEndBytes(prefix))
	if err != nil {
		return 0, err
	}
	type kv struct{ k, v []byte }
	var moves []kv
	for ; it.Valid(); it.Next() {
		moves = append(moves, kv{it.Key(), it.Value()})
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	moved := 0
	for _, e := range moves {
		rest := e.k[len(prefix):]
		at, err := lead(rest)
		if err != nil {
			return moved, err
		}
		nk, ok, err := Swap(rest, at)
		if err != nil {
			return moved, err
		}
		if !ok {
			continue
		}
		if err := st.Delete(e.k); err != nil {
			return moved, err
		}
		if err := st.Set(append(append([]byte(nil), prefix...), nk...), e.v); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// Parked moves the keys of parked queue entries: leads names each queue
// whose entries hold an owner and dseq, and how many bytes (its height or
// time) come before them. Both the item's key and the key it is filed under
// change.
func Parked(ctx context.Context, parked sweep.Parked, leads map[string]int) (int, error) {
	var keys []sweep.ParkedKey
	var items []sweeptypes.ParkedItem
	if err := parked.Walk(ctx, nil, func(key sweep.ParkedKey, v sweeptypes.ParkedItem) (bool, error) {
		if _, ok := leads[key.K1()]; ok {
			keys, items = append(keys, key), append(items, v)
		}
		return false, nil
	}); err != nil {
		return 0, err
	}
	moved := 0
	for i, it := range items {
		// The entry is filed under its queue and key; the item repeats
		// both. Both move by the key it is filed under.
		queue := keys[i].K1()
		nk, ok, err := Swap(keys[i].K2(), leads[queue])
		if err != nil {
			return moved, fmt.Errorf("parked %s entry: %w", queue, err)
		}
		if !ok {
			continue
		}
		if err := parked.Remove(ctx, keys[i]); err != nil {
			return moved, err
		}
		it.Key = nk
		if err := parked.Set(ctx, collections.Join(queue, nk), it); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}
