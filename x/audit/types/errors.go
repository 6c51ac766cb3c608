package types

import errorsmod "cosmossdk.io/errors"

var (
	ErrInvalidAddress    = errorsmod.Register(ModuleName, 2, "invalid address")
	ErrInvalidAttributes = errorsmod.Register(ModuleName, 3, "invalid attributes")
	ErrNotFound          = errorsmod.Register(ModuleName, 4, "no attributes signed")
	ErrSelfAudit         = errorsmod.Register(ModuleName, 5, "a provider cannot audit itself")
)
