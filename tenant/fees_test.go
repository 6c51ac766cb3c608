package tenant

import (
	"strings"
	"testing"

	"github.com/cosmos/cosmos-sdk/client/flags"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/spf13/cobra"
)

func TestFeeChoice(t *testing.T) {
	cases := []struct {
		name     string
		flags    []string
		simGas   uint64
		wantGas  uint64
		wantFees string
		wantErr  string
	}{
		{"no flags: simulated gas × 1.4 at 0.025ugpn", nil, 100_000, 140_000, "3500ugpn", ""},
		{"fees paid as given", []string{"--fees", "5000ugpn"}, 100_000, 140_000, "5000ugpn", ""},
		{"gas prices", []string{"--gas-prices", "0.1ugpn"}, 100_000, 140_000, "14000ugpn", ""},
		{"fixed gas", []string{"--gas", "250000"}, 100_000, 250_000, "6250ugpn", ""},
		{"gas auto simulates", []string{"--gas", "auto"}, 100_000, 140_000, "3500ugpn", ""},
		{"gas adjustment", []string{"--gas-adjustment", "2"}, 100_000, 200_000, "5000ugpn", ""},
		{"fixed gas ignores adjustment", []string{"--gas", "1000", "--gas-adjustment", "3", "--gas-prices", "1ugpn"}, 100_000, 1000, "1000ugpn", ""},
		{"fractional fee rounds up", []string{"--gas", "3", "--gas-prices", "0.5ugpn"}, 0, 3, "2ugpn", ""},
		{"both fees and prices", []string{"--fees", "1ugpn", "--gas-prices", "1ugpn"}, 0, 0, "", "give --fees or --gas-prices, not both"},
		{"bad gas", []string{"--gas", "lots"}, 0, 0, "", `--gas "lots" must be a positive whole number or auto`},
		{"bad fees", []string{"--fees", "five"}, 0, 0, "", `--fees "five"`},
		{"bad adjustment", []string{"--gas-adjustment", "-1"}, 0, 0, "", "--gas-adjustment must be a positive number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := &cobra.Command{Use: "x"}
			flags.AddTxFlagsToCmd(cmd)
			if err := cmd.ParseFlags(c.flags); err != nil {
				t.Fatal(err)
			}
			s, err := FeeSettingsFromFlags(cmd.Flags())
			var gas uint64
			var fees sdk.Coins
			if err == nil {
				gas, fees, err = s.Choose(c.simGas)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gas != c.wantGas || fees.String() != c.wantFees {
				t.Errorf("gas %d fees %s, want gas %d fees %s", gas, fees, c.wantGas, c.wantFees)
			}
		})
	}
}

// A small transaction's simulation leaves out the fee's transfer (about
// 16k gas for MsgUpdateDeployment) by more than the adjustment adds: the
// limit is at least FeeTransferGas above what it simulated.
func TestSmallTransactionsGetRoomForTheFee(t *testing.T) {
	gas, _, err := FeeSettings{}.Choose(37_967)
	if err != nil {
		t.Fatal(err)
	}
	if gas < 37_967+FeeTransferGas || gas < 54_270 {
		t.Fatalf("gas %d: the update that used 54270 would run out", gas)
	}
}
