package types

import (
	errorsmod "cosmossdk.io/errors"
	"google.golang.org/grpc/codes"
)

// Registered errors of x/provider. Codes are fixed forever; append only.
var (
	ErrProviderNotFound  = errorsmod.RegisterWithGRPCCode(ModuleName, 2, codes.NotFound, "provider not found")
	ErrProviderExists    = errorsmod.Register(ModuleName, 3, "provider already registered")
	ErrInvalidHostURI    = errorsmod.Register(ModuleName, 4, "invalid host uri")
	ErrInvalidCertHash   = errorsmod.Register(ModuleName, 5, "invalid tls certificate hash")
	ErrInvalidAttributes = errorsmod.Register(ModuleName, 6, "invalid attributes")
	ErrInvalidGPU        = errorsmod.Register(ModuleName, 7, "invalid gpu inventory")
	ErrInvalidCapacity   = errorsmod.Register(ModuleName, 8, "invalid capacity")
	ErrInvalidInfo       = errorsmod.Register(ModuleName, 9, "invalid contact info")
	ErrInvalidDenom      = errorsmod.Register(ModuleName, 10, "invalid bond denom")
	ErrBondBelowMinimum  = errorsmod.Register(ModuleName, 11, "bond below minimum")
	ErrInsufficientBond  = errorsmod.Register(ModuleName, 12, "insufficient bond")
	ErrProviderBusy      = errorsmod.Register(ModuleName, 13, "provider has open bids or active leases")
	ErrUnauthorized      = errorsmod.Register(ModuleName, 14, "unauthorized")
	ErrInvalidParams     = errorsmod.Register(ModuleName, 15, "invalid params")
	ErrInvalidAddress    = errorsmod.Register(ModuleName, 16, "invalid address")
	ErrInvalidAmount     = errorsmod.Register(ModuleName, 17, "invalid amount")
	ErrInvalidSlash      = errorsmod.Register(ModuleName, 18, "invalid slash")
	ErrInvalidGenesis    = errorsmod.Register(ModuleName, 19, "invalid genesis")
	ErrTooManyUnbondings = errorsmod.Register(ModuleName, 20, "too many unbonding entries")
)
