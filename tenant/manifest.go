package tenant

import (
	"context"

	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// ManifestFor is the manifest to send provider, as canonical JSON: the
// groups it holds a live lease of (pending or active) among leases whole,
// every other group withheld behind its digest. A provider so reads only
// what it runs (another group's images, env and registry logins stay with
// the providers that run them) and still checks the deployment's hash.
func ManifestFor(m sdl.Manifest, leases []markettypes.Lease, provider string) ([]byte, error) {
	runs := map[uint32]bool{}
	for _, l := range leases {
		if l.Id.Provider == provider && (l.State == markettypes.LEASE_STATE_PENDING || l.State == markettypes.LEASE_STATE_ACTIVE) {
			runs[l.Id.Order.Gseq] = true
		}
	}
	r, err := m.For(func(i int) bool { return runs[uint32(i+1)] })
	if err != nil {
		return nil, err
	}
	return r.CanonicalJSON()
}

// liveLeases is leases with the deployment's leases on chain now added (a
// provider may hold other groups of it than those just leased); when the
// chain cannot be asked, leases alone.
func (c *Client) liveLeases(ctx context.Context, owner string, dseq uint64, leases []markettypes.Lease) []markettypes.Lease {
	res, err := c.Market.Deployment(ctx, &markettypes.QueryDeploymentRequest{Owner: owner, Dseq: dseq})
	if err != nil {
		return leases
	}
	return append(append([]markettypes.Lease(nil), leases...), res.Leases...)
}
