package app

import (
	"strings"
	"testing"

	protov2 "google.golang.org/protobuf/proto"

	sdkmath "cosmossdk.io/math"

	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/x/authz"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
)

type fakeTx struct {
	msgs []sdk.Msg
	fee  sdk.Coins
}

func (t fakeTx) GetMsgs() []sdk.Msg                    { return t.msgs }
func (t fakeTx) GetMsgsV2() ([]protov2.Message, error) { return nil, nil }
func (t fakeTx) GetGas() uint64                        { return 200_000 }
func (t fakeTx) GetFee() sdk.Coins                     { return t.fee }
func (t fakeTx) FeePayer() []byte                      { return nil }
func (t fakeTx) FeeGranter() []byte                    { return nil }

func coins(denom string, amt int64) sdk.Coins {
	return sdk.NewCoins(sdk.NewCoin(denom, sdkmath.NewInt(amt)))
}

func execOf(t *testing.T, msgs ...sdk.Msg) *authz.MsgExec {
	t.Helper()
	anys := make([]*codectypes.Any, len(msgs))
	for i, m := range msgs {
		a, err := codectypes.NewAnyWithValue(m)
		if err != nil {
			t.Fatal(err)
		}
		anys[i] = a
	}
	return &authz.MsgExec{Grantee: "g", Msgs: anys}
}

func TestCheckNativeDenom(t *testing.T) {
	send := func(c sdk.Coins) *banktypes.MsgSend { return &banktypes.MsgSend{Amount: c} }
	fee := coins(BondDenom, 5000)
	cases := []struct {
		name string
		tx   fakeTx
		want string // empty: accepted
	}{
		{"ugpn send, ugpn fee", fakeTx{[]sdk.Msg{send(coins(BondDenom, 1))}, fee}, ""},
		{"no fee at all", fakeTx{[]sdk.Msg{send(coins(BondDenom, 1))}, nil}, ""},
		{"foreign send", fakeTx{[]sdk.Msg{send(coins("uatom", 1))}, fee}, `amount is in "uatom"`},
		{"mixed send", fakeTx{[]sdk.Msg{send(coins(BondDenom, 1).Add(coins("uatom", 1)...))}, fee}, `"uatom"`},
		{"foreign fee", fakeTx{[]sdk.Msg{send(coins(BondDenom, 1))}, coins("uatom", 5000)}, `fee is in "uatom"`},
		{"foreign multisend input", fakeTx{[]sdk.Msg{&banktypes.MsgMultiSend{Inputs: []banktypes.Input{{Coins: coins("ibc/AB", 1)}}}}, fee}, `input is in "ibc/AB"`},
		{"foreign send inside authz exec", fakeTx{[]sdk.Msg{execOf(t, send(coins("uatom", 1)))}, fee}, `amount is in "uatom"`},
		{"ugpn send inside authz exec", fakeTx{[]sdk.Msg{execOf(t, send(coins(BondDenom, 1)))}, fee}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkNativeDenom(c.tx)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestCheckNativeDenomBoundsNesting(t *testing.T) {
	var msg sdk.Msg = &banktypes.MsgSend{Amount: coins(BondDenom, 1)}
	for range maxNesting + 2 {
		msg = execOf(t, msg)
	}
	if err := checkNativeDenom(fakeTx{msgs: []sdk.Msg{msg}}); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("deeply nested exec accepted: %v", err)
	}
}
