// Package abcievent builds the ABCI events of typed events on the hot path
// (every deployment, order, escrow account and bid) without the SDK's
// reflection: sdk.TypedEventToEvent writes the event as JSON with gogoproto's
// jsonpb and reads it back into a map, which costs about half of what
// create-deployment's handler does. The events built here are the same, key
// for key and byte for byte: each type that has one is checked against
// TypedEventToEvent in its package's tests, so indexers and
// sdk.ParseTypedEvent read them as before.
package abcievent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

// Fast is a typed event that builds its own ABCI event.
type Fast interface {
	ABCIEvent() sdk.Event
}

// EmitFast emits ev's own event on the context's event manager and
// reports whether it had one; the caller emits the others as typed events.
func EmitFast(ctx context.Context, ev any) bool {
	f, ok := ev.(Fast)
	if ok {
		sdk.UnwrapSDKContext(ctx).EventManager().EmitEvent(f.ABCIEvent())
	}
	return ok
}

// Event collects an event's attributes: one per top-level field, named by
// its proto name, valued with the field's JSON as jsonpb writes it
// (OrigName, EmitDefaults).
type Event struct {
	typ   string
	attrs []abci.EventAttribute
}

// New starts the event of the proto message named typ with room for n
// attributes.
func New(typ string, n int) *Event {
	return &Event{typ: typ, attrs: make([]abci.EventAttribute, 0, n)}
}

// Raw adds an attribute whose value is already JSON (an Object's).
func (e *Event) Raw(key, jsonValue string) *Event {
	e.attrs = append(e.attrs, abci.EventAttribute{Key: key, Value: jsonValue})
	return e
}

func (e *Event) String(key, v string) *Event        { return e.Raw(key, String(v)) }
func (e *Event) Uint64(key string, v uint64) *Event { return e.Raw(key, Uint64(v)) }
func (e *Event) Int64(key string, v int64) *Event   { return e.Raw(key, Int64(v)) }
func (e *Event) Bool(key string, v bool) *Event     { return e.Raw(key, strconv.FormatBool(v)) }
func (e *Event) Bytes(key string, v []byte) *Event  { return e.Raw(key, Bytes(v)) }

// Done sorts the attributes by key, as TypedEventToEvent does.
func (e *Event) Done() sdk.Event {
	slices.SortFunc(e.attrs, func(a, b abci.EventAttribute) int { return strings.Compare(a.Key, b.Key) })
	return sdk.Event{Type: e.typ, Attributes: e.attrs}
}

// Object writes a nested message's JSON, fields in proto order.
type Object struct {
	b strings.Builder
	n int
}

func (o *Object) field(key, jsonValue string) *Object {
	if o.n == 0 {
		o.b.WriteByte('{')
	} else {
		o.b.WriteByte(',')
	}
	o.n++
	o.b.WriteByte('"')
	o.b.WriteString(key)
	o.b.WriteString(`":`)
	o.b.WriteString(jsonValue)
	return o
}

func (o *Object) Raw(key, jsonValue string) *Object { return o.field(key, jsonValue) }
func (o *Object) String(key, v string) *Object      { return o.field(key, String(v)) }
func (o *Object) Uint64(key string, v uint64) *Object {
	return o.field(key, Uint64(v))
}
func (o *Object) Uint32(key string, v uint32) *Object {
	return o.field(key, strconv.FormatUint(uint64(v), 10))
}

// JSON ends the object.
func (o *Object) JSON() string {
	if o.n == 0 {
		return "{}"
	}
	o.b.WriteByte('}')
	return o.b.String()
}

// String is a JSON string as encoding/json writes it (jsonpb uses it for
// strings): HTML characters and invalid UTF-8 escaped.
func String(s string) string {
	if isPlain(s) {
		return `"` + s + `"`
	}
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// isPlain: printable ASCII that encoding/json writes as is.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// Uint64 and Int64 are quoted, as proto3 JSON writes 64-bit integers.
func Uint64(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }
func Int64(v int64) string   { return `"` + strconv.FormatInt(v, 10) + `"` }

// Bytes is standard base64, quoted; nil bytes are null.
func Bytes(v []byte) string {
	if v == nil {
		return "null"
	}
	return `"` + base64.StdEncoding.EncodeToString(v) + `"`
}

// Coin is a cosmos.base.v1beta1.Coin.
func Coin(c sdk.Coin) string { return coin(c.Denom, c.Amount.IsNil(), c.Amount.String) }

// DecCoin is a cosmos.base.v1beta1.DecCoin.
func DecCoin(c sdk.DecCoin) string { return coin(c.Denom, c.Amount.IsNil(), c.Amount.String) }

// coin writes {"denom":…,"amount":"…"}; a nil amount is "0", as math.Int
// and math.LegacyDec write themselves.
func coin(denom string, nilAmount bool, amount func() string) string {
	a := `"0"`
	if !nilAmount {
		a = `"` + amount() + `"`
	}
	var o Object
	return o.String("denom", denom).Raw("amount", a).JSON()
}
