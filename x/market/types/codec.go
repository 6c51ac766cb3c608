package types

import (
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/msgservice"
)

// RegisterInterfaces registers the module's messages.
func RegisterInterfaces(registry codectypes.InterfaceRegistry) {
	registry.RegisterImplementations((*sdk.Msg)(nil),
		&MsgCreateDeployment{}, &MsgUpdateDeployment{}, &MsgCloseDeployment{},
		&MsgCreateBid{}, &MsgCloseBid{}, &MsgAcceptBid{},
		&MsgStartLease{}, &MsgCloseLease{}, &MsgWithdrawLease{}, &MsgUpdateParams{},
	)
	msgservice.RegisterMsgServiceDesc(registry, &_Msg_serviceDesc)
}

// DefaultGenesis has no deployments and default params.
func DefaultGenesis() *GenesisState {
	return &GenesisState{Params: DefaultParams(), NextDseq: 1, NextBidSeq: 1}
}

// ReasonString is the escrow/event spelling of a close reason.
func (r CloseReason) ReasonString() string {
	switch r {
	case CLOSE_REASON_TENANT:
		return "tenant"
	case CLOSE_REASON_PROVIDER:
		return "provider"
	case CLOSE_REASON_INSUFFICIENT_FUNDS:
		return "insufficient_funds"
	case CLOSE_REASON_PROVIDER_START_TIMEOUT:
		return "provider_start_timeout"
	case CLOSE_REASON_WORKLOAD_COMPLETED:
		return "workload_completed"
	case CLOSE_REASON_WORKLOAD_FAILED:
		return "workload_failed"
	case CLOSE_REASON_IMAGE_UNAVAILABLE:
		return "image_unavailable"
	default:
		return "unspecified"
	}
}

// ProviderOnly reports reasons only the provider may give.
func (r CloseReason) ProviderOnly() bool {
	return r == CLOSE_REASON_PROVIDER || r == CLOSE_REASON_WORKLOAD_COMPLETED ||
		r == CLOSE_REASON_WORKLOAD_FAILED || r == CLOSE_REASON_IMAGE_UNAVAILABLE
}
