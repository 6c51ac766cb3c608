package cmd

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/tenant"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// leaseCommand is `gpunetd lease`: talk to the providers running a deployment.
func leaseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Short: "Status, logs and manifests of your leases (talks to the providers' APIs)"}
	cmd.AddCommand(leaseStatusCmd(), leaseLogsCmd(), leaseSendManifestCmd(), leaseDisputeCmd())
	return cmd
}

func leasesOf(cmd *cobra.Command, dseqArg string) (*tenant.Client, []markettypes.Lease, uint64, error) {
	dseq, err := strconv.ParseUint(dseqArg, 10, 64)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("dseq %q is not a number", dseqArg)
	}
	c, _, err := tenantClient(cmd)
	if err != nil {
		return nil, nil, 0, err
	}
	res, err := c.Market.Deployment(cmd.Context(), &markettypes.QueryDeploymentRequest{Owner: c.Owner.String(), Dseq: dseq})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("deployment %d of %s: %w", dseq, c.Owner, err)
	}
	if len(res.Leases) == 0 {
		return nil, nil, 0, fmt.Errorf("deployment %d has no lease yet (orders: %d)", dseq, len(res.Orders))
	}
	return c, res.Leases, dseq, nil
}

func leaseStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "status [dseq]",
		Short:   "Show each lease of a deployment: state on chain and its containers on the provider",
		Example: "gpunetd lease status 12 --from tenant",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, leases, _, err := leasesOf(cmd, args[0])
			if err != nil {
				return err
			}
			var all []api.LeaseStatus
			for _, l := range leases {
				cl, _, err := c.ProviderAPI(cmd.Context(), l.Id.Provider)
				if err != nil {
					return err
				}
				st, err := cl.Status(cmd.Context(), l.Id.Order.Owner, l.Id.Order.Dseq, l.Id.Order.Gseq, l.Id.Order.Oseq)
				if err != nil {
					return fmt.Errorf("lease %d/%d on %s: %w", l.Id.Order.Gseq, l.Id.Order.Oseq, l.Id.Provider, err)
				}
				all = append(all, st)
			}
			if jsonOutput(cmd) {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(all)
			}
			out := cmd.OutOrStdout()
			for _, st := range all {
				fmt.Fprintf(out, "lease %s\n  provider %s  state %s  phase %s  price %s/h\n", st.Lease, st.Provider, st.State, st.Phase, st.Price)
				if st.Version != "" {
					fmt.Fprintf(out, "  version %s\n", st.Version[:min(12, len(st.Version))])
				}
				if st.UpdateError != "" {
					fmt.Fprintf(out, "  update to %s failed (the version above runs on): %s\n", st.UpdateFor[:min(12, len(st.UpdateFor))], st.UpdateError)
				}
				for _, u := range st.URIs {
					fmt.Fprintf(out, "  uri %s\n", u)
				}
				tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  SERVICE\tREPLICA\tSTATE\tEXIT\tIMAGE\tPORTS")
				for _, r := range st.Replicas {
					var ports []string
					for _, p := range r.Ports {
						ports = append(ports, fmt.Sprintf("%d/%s->%s:%d", p.Port, p.Proto, p.HostIP, p.HostPort))
					}
					fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%s\n", r.Service, r.Replica, r.State, r.ExitCode, r.Image, strings.Join(ports, " "))
				}
				tw.Flush()
				// Why a replica stopped (out of memory, over its storage, an
				// engine error) is said under the table, in full.
				for _, r := range st.Replicas {
					if r.OOMKilled {
						fmt.Fprintf(out, "  %s-%d: killed: out of memory\n", r.Service, r.Replica)
					}
					if r.Error != "" {
						fmt.Fprintf(out, "  %s-%d: %s\n", r.Service, r.Replica, r.Error)
					}
				}
			}
			return nil
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

func leaseLogsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "logs [dseq]",
		Short:   "Print (or follow) the logs of a deployment's containers",
		Example: "gpunetd lease logs 12 --from tenant --follow",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, leases, _, err := leasesOf(cmd, args[0])
			if err != nil {
				return err
			}
			follow, _ := cmd.Flags().GetBool(flagFollow)
			tail, _ := cmd.Flags().GetInt("tail")
			service, _ := cmd.Flags().GetString("service")
			for _, l := range leases {
				cl, _, err := c.ProviderAPI(cmd.Context(), l.Id.Provider)
				if err != nil {
					return err
				}
				if err := cl.Logs(cmd.Context(), l.Id.Order.Owner, l.Id.Order.Dseq, l.Id.Order.Gseq, l.Id.Order.Oseq, service, follow, tail, cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().Bool(flagFollow, false, "keep streaming until the containers exit")
	cmd.Flags().Int("tail", 0, "only the last N lines of each container (0: all)")
	cmd.Flags().String("service", "", "only this service")
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

func leaseSendManifestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "send-manifest [dseq]",
		Short:   "Send the locally kept manifest of a deployment to its providers again",
		Example: "gpunetd lease send-manifest 12 --from tenant",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, leases, dseq, err := leasesOf(cmd, args[0])
			if err != nil {
				return err
			}
			store := tenant.NewStore(c.Ctx.HomeDir)
			saved, err := store.Load(c.Owner.String(), dseq)
			if err != nil {
				return err
			}
			raw, err := saved.Manifest.CanonicalJSON()
			if err != nil {
				return err
			}
			done := map[string]bool{}
			for _, l := range leases {
				if done[l.Id.Provider] {
					continue
				}
				cl, pv, err := c.ProviderAPI(cmd.Context(), l.Id.Provider)
				if err != nil {
					return err
				}
				acc, err := cl.SendManifest(cmd.Context(), c.Owner.String(), dseq, raw)
				if err != nil {
					return fmt.Errorf("%s: %w", pv.Provider.HostUri, err)
				}
				done[l.Id.Provider] = true
				if err := store.SaveReceipts(c.Owner.String(), dseq, acc.Receipts); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: cannot keep the manifest receipts: %v\n", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "manifest %s… accepted by %s for %s\n", acc.Hash[:16], pv.Provider.HostUri, strings.Join(acc.Leases, ", "))
			}
			return nil
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

func leaseDisputeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dispute [dseq]",
		Short: "Disprove a manifest_missing close with the provider's own manifest receipt",
		Long: `A provider that closes your pending lease as manifest_missing charges you the
reservation fee. If it had in fact accepted your manifest, its signed receipt
(kept under <home>/deployments when the manifest was sent) proves it: within
the chain's dispute_window the provider is slashed and the fee returned. Each
kept receipt of the deployment is tried; receipts of leases not closed as
manifest_missing are reported and skipped.`,
		Example: "gpunetd lease dispute 12 --from tenant",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dseq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("dseq %q is not a number", args[0])
			}
			c, _, err := tenantClient(cmd)
			if err != nil {
				return err
			}
			receipts, err := tenant.NewStore(c.Ctx.HomeDir).LoadReceipts(c.Owner.String(), dseq)
			if err != nil {
				return err
			}
			if len(receipts) == 0 {
				return fmt.Errorf("no manifest receipt kept for deployment %d of %s: was its manifest sent from this machine and home?", dseq, c.Owner)
			}
			won := 0
			for _, r := range receipts {
				rc, err := tenant.ReceiptMsg(r)
				if err != nil {
					return err
				}
				name := fmt.Sprintf("%d/%d on %s", r.GSeq, r.OSeq, r.Provider)
				res, err := c.SendTx(cmd.Context(), &markettypes.MsgDisputeLease{Owner: c.Owner.String(), Receipt: rc})
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "lease %s: not disputed: %v\n", name, err)
					continue
				}
				won++
				fmt.Fprintf(cmd.OutOrStdout(), "lease %s: disputed in block %d (tx %s): provider slashed, reservation fee returned\n", name, res.Height, res.TxHash)
			}
			if won == 0 {
				return fmt.Errorf("no lease of deployment %d could be disputed", dseq)
			}
			return nil
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}
