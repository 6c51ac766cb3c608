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
		&MsgStartLease{}, &MsgCloseLease{}, &MsgWithdrawLease{}, &MsgUpdateParams{}, &MsgDisputeLease{}, &MsgRetryParked{},
		&MsgAttest{},
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
	case CLOSE_REASON_MANIFEST_MISSING:
		return "manifest_missing"
	case CLOSE_REASON_WORKLOAD_INVALID:
		return "workload_invalid"
	case CLOSE_REASON_PROVIDER_UNRESPONSIVE:
		return "provider_unresponsive"
	default:
		return "unspecified"
	}
}

// ProviderOnly reports reasons only the provider may give.
func (r CloseReason) ProviderOnly() bool {
	return r == CLOSE_REASON_PROVIDER || r == CLOSE_REASON_WORKLOAD_COMPLETED ||
		r == CLOSE_REASON_WORKLOAD_FAILED || r.TenantFault()
}

// TenantFault reports the reasons a provider gives for closing a pending
// lease the tenant made impossible to start: no manifest in time, an image
// that cannot be pulled, a workload the engine refuses. Such a close is
// never slashed and costs the tenant the reservation fee.
func (r CloseReason) TenantFault() bool {
	return r == CLOSE_REASON_MANIFEST_MISSING || r == CLOSE_REASON_IMAGE_UNAVAILABLE || r == CLOSE_REASON_WORKLOAD_INVALID
}

// ProviderFault reports the reasons a pending lease ends for the provider's
// fault: it walked away or never started. The bid deposit is forfeited to
// the community pool and the group is auctioned again.
func (r CloseReason) ProviderFault() bool {
	return r == CLOSE_REASON_PROVIDER || r == CLOSE_REASON_PROVIDER_START_TIMEOUT
}

// ParseCloseReason reads the spelling ReasonString gives.
func ParseCloseReason(s string) (CloseReason, bool) {
	for v := range CloseReason_name {
		if r := CloseReason(v); r != CLOSE_REASON_UNSPECIFIED && r.ReasonString() == s {
			return r, true
		}
	}
	return CLOSE_REASON_UNSPECIFIED, false
}
