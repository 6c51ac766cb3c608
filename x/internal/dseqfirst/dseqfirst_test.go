package dseqfirst

import (
	"bytes"
	"encoding/binary"
	"testing"

	"cosmossdk.io/collections"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

// The old and new layouts are what the collections codecs write for the
// key types before and after (owner first, dseq first): Swap must turn one
// into the other, byte for byte, and leave a new key alone.
func TestSwapTurnsOwnerFirstKeysIntoTodays(t *testing.T) {
	owner := sdk.AccAddress(bytes.Repeat([]byte{7}, 20))
	provider := sdk.AccAddress(bytes.Repeat([]byte{9}, 32))
	dseq, gseq := uint64(123_450_001), uint64(1)<<32|1
	oldOrder, _ := collections.EncodeKeyWithPrefix(nil, collections.TripleKeyCodec(sdk.AccAddressKey, collections.Uint64Key, collections.Uint64Key), collections.Join3(owner, dseq, gseq))
	newOrder, _ := collections.EncodeKeyWithPrefix(nil, collections.TripleKeyCodec(collections.Uint64Key, sdk.AccAddressKey, collections.Uint64Key), collections.Join3(dseq, owner, gseq))
	oldBid, _ := collections.EncodeKeyWithPrefix(nil, collections.QuadKeyCodec(sdk.AccAddressKey, collections.Uint64Key, collections.Uint64Key, sdk.AccAddressKey), collections.Join4(owner, dseq, gseq, provider))
	newBid, _ := collections.EncodeKeyWithPrefix(nil, collections.QuadKeyCodec(collections.Uint64Key, sdk.AccAddressKey, collections.Uint64Key, sdk.AccAddressKey), collections.Join4(dseq, owner, gseq, provider))
	oldAcc, _ := collections.EncodeKeyWithPrefix(nil, collections.PairKeyCodec(sdk.AccAddressKey, collections.Uint64Key), collections.Join(owner, dseq))
	newAcc, _ := collections.EncodeKeyWithPrefix(nil, collections.PairKeyCodec(collections.Uint64Key, sdk.AccAddressKey), collections.Join(dseq, owner))
	height := binary.BigEndian.AppendUint64(nil, 1<<63|77) // an int64 height key
	for _, c := range []struct {
		name     string
		old, new []byte
		at       int
	}{
		{"order", oldOrder, newOrder, 0},
		{"bid", oldBid, newBid, 0},
		{"account (owner last)", oldAcc, newAcc, 0},
		{"queued order", append(append([]byte(nil), height...), oldOrder...), append(append([]byte(nil), height...), newOrder...), 8},
		{"indexed bid", append([]byte{32}, append(provider, oldBid...)...), append([]byte{32}, append(provider, newBid...)...), 33},
	} {
		got, moved, err := Swap(c.old, c.at)
		if err != nil || !moved || !bytes.Equal(got, c.new) {
			t.Errorf("%s: Swap(%x) = %x, %v, %v; want %x", c.name, c.old, got, moved, err, c.new)
		}
		again, moved, err := Swap(c.new, c.at)
		if err != nil || moved || !bytes.Equal(again, c.new) {
			t.Errorf("%s: a key already dseq first came back %x (moved %v, %v)", c.name, again, moved, err)
		}
	}
	if _, _, err := Swap([]byte{20, 1, 2, 3}, 0); err == nil {
		t.Error("a key too short for its owner and dseq was moved")
	}
	if _, _, err := Swap([]byte{1, 2}, 5); err == nil {
		t.Error("a lead past the key's end was accepted")
	}
}
