// Package coin holds gpunet's one denomination, so the chain's params, the
// SDL parser, the provider daemon and the tenant client cannot disagree on
// it. It imports nothing.
package coin

// Denom is the base denomination of GPN: 1 GPN = 10^6 ugpn. Prices,
// deposits, bonds and fees are all in it.
const Denom = "ugpn"
