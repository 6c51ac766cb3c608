package keyed_test

import (
	"testing"

	"cosmossdk.io/collections"
	"cosmossdk.io/collections/codec"
	"cosmossdk.io/collections/colltest"

	"github.com/gpunet/gpunet/x/internal/keyed"
)

type record struct {
	ID   string
	Body string
}

type recordCodec struct{}

func (recordCodec) Encode(r record) ([]byte, error) { return []byte(r.ID + "|" + r.Body), nil }
func (recordCodec) Decode(b []byte) (record, error) {
	for i, c := range b {
		if c == '|' {
			return record{ID: string(b[:i]), Body: string(b[i+1:])}, nil
		}
	}
	return record{Body: string(b)}, nil
}
func (recordCodec) EncodeJSON(r record) ([]byte, error) { return recordCodec{}.Encode(r) }
func (recordCodec) DecodeJSON(b []byte) (record, error) { return recordCodec{}.Decode(b) }
func (recordCodec) Stringify(r record) string           { return r.ID + "|" + r.Body }
func (recordCodec) ValueType() string                   { return "record" }

// TestMapStoresNoIdentity: the stored bytes lack the identity, every read
// path gives it back from the key, and a value stored with it (the old
// layout) reads the same.
func TestMapStoresNoIdentity(t *testing.T) {
	ss, ctx := colltest.MockStore()
	sb := collections.NewSchemaBuilder(ss)
	raw := collections.NewMap(sb, collections.NewPrefix(1), "records", collections.StringKey, codec.ValueCodec[record](recordCodec{}))
	m := keyed.NewMap(raw, func(r record) record { r.ID = ""; return r }, func(k string, r *record) { r.ID = k })
	if _, err := sb.Build(); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(ctx, "a", record{ID: "a", Body: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(ctx, "b", record{ID: "stale", Body: "y"}); err != nil { // the old layout
		t.Fatal(err)
	}
	if stored, _ := raw.Get(ctx, "a"); stored.ID != "" {
		t.Errorf("stored value kept its identity: %+v", stored)
	}
	if r, err := m.Get(ctx, "a"); err != nil || r != (record{ID: "a", Body: "x"}) {
		t.Errorf("Get: %+v %v", r, err)
	}
	kvs, err := m.KeyValues(ctx, nil)
	if err != nil || len(kvs) != 2 || kvs[1].Value != (record{ID: "b", Body: "y"}) {
		t.Errorf("KeyValues: %+v %v", kvs, err)
	}
	stored, _ := m.Stored().Get(ctx, "a")
	if r := m.Fill("a", stored); r.ID != "a" {
		t.Errorf("Fill: %+v", r)
	}
}
