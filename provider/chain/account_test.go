package chain

import (
	"bytes"
	"context"
	"testing"

	authv1beta1 "cosmossdk.io/api/cosmos/auth/v1beta1"
	gogoproto "github.com/cosmos/gogoproto/proto"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// accountNode answers AccountInfo with one account's public key (as an
// Any of the given type URL and bytes, or none).
type accountNode struct {
	authv1beta1.QueryClient
	pub *anypb.Any
}

func (n accountNode) AccountInfo(context.Context, *authv1beta1.QueryAccountInfoRequest, ...grpc.CallOption) (*authv1beta1.QueryAccountInfoResponse, error) {
	return &authv1beta1.QueryAccountInfoResponse{Info: &authv1beta1.BaseAccount{AccountNumber: 4, Sequence: 9, PubKey: n.pub}}, nil
}

// The tenant API checks signatures against the key the chain holds for an
// account: AccountPubKey returns exactly that key, nothing for an account
// that never signed, and a clear error for a key it cannot read.
func TestAccountPubKeyIsTheChainsKey(t *testing.T) {
	_, addr, pub := newKey(t)
	key, err := gogoproto.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Auth: accountNode{pub: &anypb.Any{TypeUrl: "/cosmos.crypto.secp256k1.PubKey", Value: key}}}
	got, err := c.AccountPubKey(context.Background(), addr.String())
	if err != nil || !bytes.Equal(got, pub.Bytes()) {
		t.Fatalf("got %x, %v; want the account's key %x", got, err, pub.Bytes())
	}
	if num, seq, err := c.Account(context.Background(), addr); err != nil || num != 4 || seq != 9 {
		t.Fatalf("account %d/%d, %v; want 4/9", num, seq, err)
	}
	c.Auth = accountNode{}
	if got, err := c.AccountPubKey(context.Background(), addr.String()); err != nil || got != nil {
		t.Fatalf("an account that never signed: %x, %v; want no key", got, err)
	}
	c.Auth = accountNode{pub: &anypb.Any{TypeUrl: "/cosmos.crypto.unknown.PubKey", Value: []byte{1, 2}}}
	if _, err := c.AccountPubKey(context.Background(), addr.String()); err == nil {
		t.Fatal("a public key of an unknown type was read")
	}
}
