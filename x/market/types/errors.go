package types

import (
	errorsmod "cosmossdk.io/errors"
	"google.golang.org/grpc/codes"
)

// Registered errors of x/market. Codes are fixed forever; append only.
var (
	ErrDeploymentNotFound  = errorsmod.RegisterWithGRPCCode(ModuleName, 2, codes.NotFound, "deployment not found")
	ErrInvalidGroups       = errorsmod.Register(ModuleName, 3, "invalid deployment groups")
	ErrInvalidManifestHash = errorsmod.Register(ModuleName, 4, "invalid manifest hash")
	ErrInvalidDeposit      = errorsmod.Register(ModuleName, 5, "invalid deposit")
	ErrInvalidBidWindow    = errorsmod.Register(ModuleName, 6, "invalid bid window")
	ErrOrderNotFound       = errorsmod.RegisterWithGRPCCode(ModuleName, 7, codes.NotFound, "order not found")
	ErrOrderNotOpen        = errorsmod.Register(ModuleName, 8, "order not open")
	ErrProviderNotEligible = errorsmod.Register(ModuleName, 9, "provider not registered or bonded below minimum")
	ErrSpecNotMatched      = errorsmod.Register(ModuleName, 10, "provider does not satisfy the order's requirements")
	ErrPriceTooHigh        = errorsmod.Register(ModuleName, 11, "bid price above the order's max price")
	ErrBidDepositTooLow    = errorsmod.Register(ModuleName, 12, "bid deposit below minimum")
	ErrTooManyBids         = errorsmod.Register(ModuleName, 13, "order has the maximum number of bids")
	ErrBidExists           = errorsmod.Register(ModuleName, 14, "provider already bid on this order")
	ErrBidNotFound         = errorsmod.RegisterWithGRPCCode(ModuleName, 15, codes.NotFound, "bid not found")
	ErrLeaseNotFound       = errorsmod.RegisterWithGRPCCode(ModuleName, 16, codes.NotFound, "lease not found")
	ErrLeaseNotPending     = errorsmod.Register(ModuleName, 17, "lease is not waiting to start")
	ErrUnauthorized        = errorsmod.Register(ModuleName, 18, "unauthorized")
	ErrInvalidReason       = errorsmod.Register(ModuleName, 19, "invalid close reason")
	ErrInvalidPrice        = errorsmod.Register(ModuleName, 20, "invalid price")
	ErrInvalidParams       = errorsmod.Register(ModuleName, 21, "invalid params")
	ErrInvalidAddress      = errorsmod.Register(ModuleName, 22, "invalid address")
	ErrLeaseNotActive      = errorsmod.Register(ModuleName, 23, "lease is not active")
	ErrStartDeadlinePassed = errorsmod.Register(ModuleName, 24, "lease start deadline passed")
	ErrProviderExcluded    = errorsmod.Register(ModuleName, 25, "provider failed an earlier round of this group")
	ErrManifestTimeout     = errorsmod.Register(ModuleName, 26, "manifest timeout not reached")
	ErrNotDisputable       = errorsmod.RegisterWithGRPCCode(ModuleName, 27, codes.NotFound, "no disputable close for this lease")
	ErrInvalidReceipt      = errorsmod.Register(ModuleName, 28, "invalid manifest receipt")
	ErrResourcesTooLarge   = errorsmod.Register(ModuleName, 29, "resources out of bounds")
	ErrBlockFull           = errorsmod.Register(ModuleName, 30, "this block has handed out all its sequence numbers")
	ErrDepositNotCovered   = errorsmod.Register(ModuleName, 31, "the provider cannot cover its bid deposit")
	ErrInvalidAttestation  = errorsmod.Register(ModuleName, 32, "invalid attestation")
	ErrBelowReliability    = errorsmod.Register(ModuleName, 33, "provider reliability below the group's minimum")
)
