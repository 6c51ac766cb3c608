package app_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cosmos/cosmos-sdk/codec"
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	gogoproto "github.com/cosmos/gogoproto/proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	marketv1 "github.com/gpunet/gpunet/api/gpunet/market/v1"
	"github.com/gpunet/gpunet/testutil/apptest"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// Every gpunet message a transaction can carry has a protobuf-go type, so
// the SDK decodes it into that type to find its signers instead of into a
// dynamicpb message, and the two registries describe gpunet's files alike.
func TestGpunetMessagesHaveProtobufGoTypes(t *testing.T) {
	files := 0
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(fd.Path(), "gpunet/") {
			return true
		}
		files++
		gogo, err := gogoproto.GogoResolver.FindFileByPath(fd.Path())
		if err != nil {
			t.Errorf("%s: %v", fd.Path(), err)
			return true
		}
		// protoc-gen-gocosmos adds its own file options (marshaler_all and
		// the like) to the descriptor it embeds; everything else must match.
		if d := cmp.Diff(protodesc.ToFileDescriptorProto(fd), protodesc.ToFileDescriptorProto(gogo),
			protocmp.Transform(), protocmp.IgnoreFields(&descriptorpb.FileDescriptorProto{}, "options")); d != "" {
			t.Errorf("gogoproto and protobuf-go describe %s differently: %s", fd.Path(), d)
		}
		return true
	})
	if files < 20 {
		t.Fatalf("only %d gpunet files in the protobuf-go registry", files)
	}
	c := apptest.New(t, 1)
	var urls []string
	for _, url := range c.App.InterfaceRegistry().ListImplementations(sdk.MsgInterfaceProtoName) {
		if strings.HasPrefix(url, "/gpunet.") {
			urls = append(urls, url)
		}
	}
	if len(urls) < 20 {
		t.Fatalf("only %d gpunet messages registered: %v", len(urls), urls)
	}
	for _, url := range urls {
		if _, err := protoregistry.GlobalTypes.FindMessageByURL(url); err != nil {
			t.Errorf("%s has no protobuf-go type: %v", url, err)
		}
	}

	msg := benchDeployment(c.Accounts[0])
	packed, err := codectypes.NewAnyWithValue(msg)
	if err != nil {
		t.Fatal(err)
	}
	signers, decoded, err := c.App.AppCodec().(*codec.ProtoCodec).GetMsgAnySigners(packed)
	if err != nil {
		t.Fatal(err)
	}
	if _, dynamic := decoded.(*dynamicpb.Message); dynamic {
		t.Fatal("a create-deployment was decoded into a dynamicpb message")
	}
	got, ok := decoded.(*marketv1.MsgCreateDeployment)
	if !ok {
		t.Fatalf("a create-deployment was decoded as %T", decoded)
	}
	if len(signers) != 1 || !bytes.Equal(signers[0], c.Accounts[0]) {
		t.Fatalf("signers %x, want the owner %x", signers, c.Accounts[0].Bytes())
	}
	if got.Owner != msg.Owner || len(got.Groups) != 1 || got.Groups[0].Name != msg.Groups[0].Name || got.BidWindow != msg.BidWindow {
		t.Fatalf("decoded %v from %v", got, msg)
	}
}

// TestSignerIsTheOwnerTheHandlerSees: a create-deployment whose owner field
// appears twice on the wire (a victim's address, then the signer's) is
// decoded alike by the gogoproto type the handler runs on and the
// protobuf-go type its signer comes from (the last value wins in both), so
// a stranger cannot sign for one account while the handler spends
// another's deposit.
func TestSignerIsTheOwnerTheHandlerSees(t *testing.T) {
	c := apptest.New(t, 2)
	victim, signer := c.Accounts[0], c.Accounts[1]
	bz, err := benchDeployment(victim).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Field 1 (owner), wire type 2, once more with the signer's address.
	owner := signer.String()
	bz = append(bz, 0x0a, byte(len(owner)))
	bz = append(bz, owner...)

	var handled markettypes.MsgCreateDeployment
	if err := handled.Unmarshal(bz); err != nil {
		t.Fatal(err)
	}
	signers, _, err := c.App.AppCodec().(*codec.ProtoCodec).GetMsgAnySigners(&codectypes.Any{TypeUrl: "/" + gogoproto.MessageName(&handled), Value: bz})
	if err != nil {
		t.Fatal(err)
	}
	if handled.Owner != owner || len(signers) != 1 || !bytes.Equal(signers[0], signer) {
		t.Fatalf("the handler sees owner %s, the signer check %x; want both %s", handled.Owner, signers, owner)
	}
}
