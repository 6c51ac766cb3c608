package tenant

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/client"
	"google.golang.org/grpc"

	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// openAuction is a market whose deployment stays open with no bid.
type openAuction struct {
	markettypes.QueryClient // other queries are not used
}

func (openAuction) Deployment(_ context.Context, req *markettypes.QueryDeploymentRequest, _ ...grpc.CallOption) (*markettypes.QueryDeploymentResponse, error) {
	return &markettypes.QueryDeploymentResponse{Deployment: markettypes.Deployment{Owner: req.Owner, Dseq: req.Dseq, State: markettypes.DEPLOYMENT_STATE_ACTIVE}}, nil
}

func TestInterruptDuringAuctionSaysHowToClose(t *testing.T) {
	c := &Client{Ctx: client.Context{}.WithFromName("tenant"), Market: openAuction{}}
	d, err := sdl.Load("../sdl/testdata/gpu-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Owner: "gpunet1tenant", DSeq: 7}
	p := &progress{w: io.Discard, began: time.Now(), last: time.Now(), res: res}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel) // Ctrl-C while waiting for bids

	_, err = c.afterCreate(ctx, d, res, p, Options{Wait: time.Minute}, NewStore(t.TempDir()))
	var stopped *Interrupted
	if !errors.As(err, &stopped) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want an *Interrupted", err)
	}
	for _, want := range []string{
		"interrupted during the auction: deployment 7 keeps running on chain",
		"gpunetd tx market close-deployment 7 --from tenant",
		"gpunetd lease send-manifest 7 --from tenant",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%s", want, err)
		}
	}
}
