// Package clientcodec builds the codecs a client of the chain needs to
// build, sign and read transactions with the SDK's own machinery (crypto
// keys, transactions, accounts, bank and gpunet's messages) without wiring
// the whole app. Tools and tests use it; the provider daemon does not: it
// builds its transactions in provider/chain without the SDK's client and
// auth packages, and stays smaller for it.
package clientcodec

import (
	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/codec"
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	"github.com/cosmos/cosmos-sdk/std"
	authtx "github.com/cosmos/cosmos-sdk/x/auth/tx"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
	"github.com/cosmos/gogoproto/proto"

	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Encoding is the app's codecs, as a client needs them.
type Encoding struct {
	TxConfig client.TxConfig
	Codec    codec.Codec
	Registry codectypes.InterfaceRegistry
}

// New builds the codecs.
func New() (Encoding, error) {
	signing, err := authtx.NewDefaultSigningOptions()
	if err != nil {
		return Encoding{}, err
	}
	ir, err := codectypes.NewInterfaceRegistryWithOptions(codectypes.InterfaceRegistryOptions{ProtoFiles: proto.HybridResolver, SigningOptions: *signing})
	if err != nil {
		return Encoding{}, err
	}
	std.RegisterInterfaces(ir)
	authtypes.RegisterInterfaces(ir)
	banktypes.RegisterInterfaces(ir)
	markettypes.RegisterInterfaces(ir)
	providertypes.RegisterInterfaces(ir)
	escrowtypes.RegisterInterfaces(ir)
	cdc := codec.NewProtoCodec(ir)
	return Encoding{TxConfig: authtx.NewTxConfig(cdc, authtx.DefaultSignModes), Codec: cdc, Registry: ir}, nil
}
