package types

import (
	"errors"
	"strings"
	"testing"
)

// A malformed attestation is refused before the mempool, saying what is
// wrong.
func TestMsgAttestValidateBasic(t *testing.T) {
	lease := OrderID{Owner: "gpunet1owner", Dseq: 7, Gseq: 1, Oseq: 1}
	many := make([]OrderID, MaxAttestedExceptions+1)
	for i := range many {
		many[i] = OrderID{Owner: "gpunet1owner", Dseq: uint64(i + 1), Gseq: 1, Oseq: 1}
	}
	for _, c := range []struct {
		name string
		msg  MsgAttest
		want string // "" accepts
	}{
		{"all running", MsgAttest{Leases: 3}, ""},
		{"one down", MsgAttest{Leases: 3, Down: []OrderID{lease}}, ""},
		{"more named than attested", MsgAttest{Leases: 1, Down: []OrderID{lease}, Degraded: []OrderID{lease}}, "attests only 1"},
		{"not a full id", MsgAttest{Leases: 1, Down: []OrderID{{Owner: "gpunet1owner", Dseq: 7}}}, "not a full order id"},
		{"too many down", MsgAttest{Leases: uint32(len(many)), Down: many}, "at most 1000 of each"},
	} {
		err := c.msg.ValidateBasic()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrInvalidAttestation) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want ErrInvalidAttestation saying %q", c.name, err, c.want)
		}
	}
}
