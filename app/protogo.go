package app

// The protobuf-go types of gpunet's messages (see api/doc.go), registered in
// the global protobuf-go registry by their packages' init. Without them the
// SDK finds a gpunet message's signers (codec.ProtoCodec.GetMsgAnySigners)
// by decoding it a second time into a dynamicpb message built from its
// descriptor; with them, into its generated type.
import (
	_ "github.com/gpunet/gpunet/api/gpunet/audit/v1"
	_ "github.com/gpunet/gpunet/api/gpunet/escrow/v1"
	_ "github.com/gpunet/gpunet/api/gpunet/market/v1"
	_ "github.com/gpunet/gpunet/api/gpunet/provider/v1"
	_ "github.com/gpunet/gpunet/api/gpunet/sweep/v1"
)
