package tenant

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	markettypes "github.com/gpunet/gpunet/x/market/types"
)

type deploymentQuery struct {
	markettypes.QueryClient
	res *markettypes.QueryDeploymentResponse
}

func (q deploymentQuery) Deployment(context.Context, *markettypes.QueryDeploymentRequest, ...grpc.CallOption) (*markettypes.QueryDeploymentResponse, error) {
	return q.res, nil
}

// A lease that vanished because its provider failed it names the order that
// replaced it; one that simply ended names none.
func TestReauctionedNamesTheNextOrder(t *testing.T) {
	l := markettypes.Lease{Id: markettypes.BidID{Order: markettypes.OrderID{Owner: "gpunet1t", Dseq: 4, Gseq: 1, Oseq: 1}, Provider: "gpunet1p"}}
	next := markettypes.Order{Id: markettypes.OrderID{Owner: "gpunet1t", Dseq: 4, Gseq: 1, Oseq: 2}}
	other := markettypes.Order{Id: markettypes.OrderID{Owner: "gpunet1t", Dseq: 4, Gseq: 2, Oseq: 1}}
	c := &Client{Market: deploymentQuery{res: &markettypes.QueryDeploymentResponse{Orders: []markettypes.Order{other, next}}}}
	if got := c.reauctioned(context.Background(), l); got != "order gpunet1t/4/1/2" {
		t.Errorf("reauctioned = %q", got)
	}
	c.Market = deploymentQuery{res: &markettypes.QueryDeploymentResponse{Orders: []markettypes.Order{other}}}
	if got := c.reauctioned(context.Background(), l); got != "" {
		t.Errorf("no re-auction, yet %q", got)
	}
}
