// Command gpunetd is the gpunet full node and the tenant's command line.
package main

import (
	"errors"
	"fmt"
	"os"

	svrcmd "github.com/cosmos/cosmos-sdk/server/cmd"

	"github.com/gpunet/gpunet/app"
	"github.com/gpunet/gpunet/cmd/gpunetd/cmd"
	"github.com/gpunet/gpunet/provider/api"
)

func main() {
	rootCmd := cmd.NewRootCmd()
	if err := svrcmd.Execute(rootCmd, "GPUNETD", app.DefaultNodeHome); err != nil {
		// A command run by 'lease shell' exited non-zero: so does gpunetd.
		var exit *api.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		fmt.Fprintln(rootCmd.ErrOrStderr(), "Error:", err)
		os.Exit(1)
	}
}
