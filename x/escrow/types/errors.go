package types

import (
	errorsmod "cosmossdk.io/errors"
	"google.golang.org/grpc/codes"
)

// Registered errors of x/escrow. Codes are fixed forever; append only.
var (
	ErrAccountNotFound = errorsmod.RegisterWithGRPCCode(ModuleName, 2, codes.NotFound, "escrow account not found")
	ErrAccountExists   = errorsmod.Register(ModuleName, 3, "escrow account already exists")
	ErrPaymentNotFound = errorsmod.RegisterWithGRPCCode(ModuleName, 4, codes.NotFound, "payment not found")
	ErrPaymentExists   = errorsmod.Register(ModuleName, 5, "payment already exists")
	ErrInvalidDenom    = errorsmod.Register(ModuleName, 6, "invalid denom")
	ErrInvalidAmount   = errorsmod.Register(ModuleName, 7, "invalid amount")
	ErrInvalidRate     = errorsmod.Register(ModuleName, 8, "invalid rate")
	ErrInvalidAddress  = errorsmod.Register(ModuleName, 9, "invalid address")
	ErrUnauthorized    = errorsmod.Register(ModuleName, 10, "unauthorized")
	ErrInvalidParams   = errorsmod.Register(ModuleName, 11, "invalid params")
	ErrInvalidGenesis  = errorsmod.Register(ModuleName, 12, "invalid genesis")
)
