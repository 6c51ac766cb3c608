package cmd

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/sdl"
	"github.com/gpunet/gpunet/tenant"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// leaseCommand is `gpunetd lease`: talk to the providers running a deployment.
func leaseCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Short: "Status, logs and manifests of your leases (talks to the providers' APIs)"}
	cmd.AddCommand(leaseStatusCmd(), leaseLogsCmd(), leaseSendManifestCmd(), leaseDisputeCmd(), leaseManifestCmd(), leaseEventsCmd(), leaseShellCmd(), leaseRevokeSessionsCmd())
	return cmd
}

// eachProvider calls fn once for each provider holding one of leases,
// with a client of its API (pinned to its certificate on chain) and its
// host, stopping at the first error.
func eachProvider(cmd *cobra.Command, c *tenant.Client, leases []markettypes.Lease, fn func(provider string, cl *api.Client, host string) error) error {
	done := map[string]bool{}
	for _, l := range leases {
		if done[l.Id.Provider] {
			continue
		}
		done[l.Id.Provider] = true
		cl, pv, err := c.ProviderAPI(cmd.Context(), l.Id.Provider)
		if err != nil {
			return err
		}
		if err := fn(l.Id.Provider, cl, pv.Provider.HostUri); err != nil {
			return err
		}
	}
	return nil
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
				st, err := cl.StatusWithUsage(cmd.Context(), l.Id.Order.Owner, l.Id.Order.Dseq, l.Id.Order.Gseq, l.Id.Order.Oseq)
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
				fmt.Fprintln(tw, "  SERVICE\tREPLICA\tSTATE\tEXIT\tCPU\tMEMORY\tIMAGE\tPORTS")
				for _, r := range st.Replicas {
					var ports []string
					for _, p := range r.Ports {
						ports = append(ports, fmt.Sprintf("%d/%s->%s:%d", p.Port, p.Proto, p.HostIP, p.HostPort))
					}
					cpu, mem := "-", "-"
					if u := r.Usage; u != nil {
						cpu = fmt.Sprintf("%.1f%%", u.CPUPercent)
						mem = fmt.Sprintf("%s/%s", mib(u.MemoryUsedBytes), mib(u.MemoryLimitBytes))
					}
					fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Service, r.Replica, r.State, r.ExitCode, cpu, mem, r.Image, strings.Join(ports, " "))
				}
				tw.Flush()
				// Each replica's GPUs: which device, and how busy it is.
				for _, r := range st.Replicas {
					for _, g := range r.GPUs {
						use := "utilization not readable (declared GPU or no NVML)"
						if g.UtilizationPercent != nil && g.MemoryUsedMiB != nil {
							use = fmt.Sprintf("%d%% busy, %d/%d MiB", *g.UtilizationPercent, *g.MemoryUsedMiB, g.MemoryTotalMiB)
						}
						fmt.Fprintf(out, "  %s-%d: gpu %s (%s): %s\n", r.Service, r.Replica, g.UUID, g.Model, use)
					}
				}
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

func leaseRevokeSessionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke-sessions [dseq]",
		Short: "Revoke every browser session (web console) of yours on the providers of a deployment",
		Long: `The web console reaches providers with a session key your wallet signed a grant for
(at most a day long). This revokes every grant you issued up to now on each provider
that holds a lease of the deployment: a stolen or forgotten browser session stops
working at once. Sessions opened afterwards work again.`,
		Example: "gpunetd lease revoke-sessions 12 --from tenant",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, leases, _, err := leasesOf(cmd, args[0])
			if err != nil {
				return err
			}
			return eachProvider(cmd, c, leases, func(provider string, cl *api.Client, host string) error {
				res, err := cl.RevokeGrants(cmd.Context(), c.Owner.String())
				if err != nil {
					return fmt.Errorf("%s: %w", host, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "sessions issued up to %s revoked on %s\n", time.Unix(res.RevokedBefore, 0).UTC().Format(time.RFC3339), provider)
				return nil
			})
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
			return eachProvider(cmd, c, leases, func(provider string, cl *api.Client, host string) error {
				raw, err := tenant.ManifestFor(saved.Manifest, leases, provider)
				if err != nil {
					return err
				}
				acc, err := cl.SendManifest(cmd.Context(), c.Owner.String(), dseq, raw)
				if err != nil {
					return fmt.Errorf("%s: %w", host, err)
				}
				if err := store.SaveReceipts(c.Owner.String(), dseq, acc.Receipts); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: cannot keep the manifest receipts: %v\n", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "manifest %s… accepted by %s for %s\n", acc.Hash[:16], host, strings.Join(acc.Leases, ", "))
				return nil
			})
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

// leaseManifestCmd is `gpunetd lease manifest DSEQ`: the manifest each
// provider of the deployment holds, and whether its hash is the chain's.
func leaseManifestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest [dseq]",
		Short: "Fetch the manifest each provider of a deployment holds and check its hash against the chain",
		Long: `Asks every provider holding a lease of the deployment for the manifest it keeps (registry
logins are never kept, so they are not in it), computes its hash here, and compares it with the
manifest hash the deployment has on chain. Exits non-zero when a provider holds another manifest:
send the right one with 'gpunetd lease send-manifest'.`,
		Example: "gpunetd lease manifest 12 --from tenant",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, leases, dseq, err := leasesOf(cmd, args[0])
			if err != nil {
				return err
			}
			dep, err := c.Market.Deployment(cmd.Context(), &markettypes.QueryDeploymentRequest{Owner: c.Owner.String(), Dseq: dseq})
			if err != nil {
				return err
			}
			onChain := hex.EncodeToString(dep.Deployment.ManifestHash)
			type held struct {
				Provider string          `json:"provider"`
				Hash     string          `json:"manifest_hash"`
				Matches  bool            `json:"matches_chain"`
				Manifest json.RawMessage `json:"manifest"`
			}
			var all []held
			seen := map[string]bool{}
			for _, l := range leases {
				if seen[l.Id.Provider] || (l.State != markettypes.LEASE_STATE_ACTIVE && l.State != markettypes.LEASE_STATE_PENDING) {
					continue
				}
				seen[l.Id.Provider] = true
				cl, _, err := c.ProviderAPI(cmd.Context(), l.Id.Provider)
				if err != nil {
					return err
				}
				hm, err := cl.Manifest(cmd.Context(), c.Owner.String(), dseq)
				if err != nil {
					return fmt.Errorf("manifest on %s: %w", l.Id.Provider, err)
				}
				// The hash is computed here: the provider's own word for it
				// is not what is checked.
				var m sdl.Manifest
				if err := json.Unmarshal(hm.Manifest, &m); err != nil {
					return fmt.Errorf("manifest on %s is not a manifest: %w", l.Id.Provider, err)
				}
				hash, err := m.HashHex()
				if err != nil {
					return err
				}
				// A legacy deployment names the whole manifest's hash.
				if m.MatchesHash(dep.Deployment.ManifestHash) {
					hash = onChain
				}
				all = append(all, held{Provider: l.Id.Provider, Hash: hash, Matches: hash == onChain, Manifest: hm.Manifest})
			}
			if jsonOutput(cmd) {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(all); err != nil {
					return err
				}
			} else {
				out := cmd.OutOrStdout()
				for _, h := range all {
					verdict := "matches the chain"
					if !h.Matches {
						verdict = "DOES NOT match the chain's " + onChain
					}
					fmt.Fprintf(out, "provider %s holds manifest %s: %s\n", h.Provider, h.Hash, verdict)
					var pretty bytes.Buffer
					if json.Indent(&pretty, h.Manifest, "  ", "  ") == nil {
						fmt.Fprintf(out, "  %s\n", pretty.String())
					}
				}
			}
			for _, h := range all {
				if !h.Matches {
					return fmt.Errorf("provider %s holds manifest %s, the chain names %s: send it again with 'gpunetd lease send-manifest %d'", h.Provider, h.Hash, onChain, dseq)
				}
			}
			return nil
		},
	}
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

// mib writes bytes in MiB.
func mib(b uint64) string { return fmt.Sprintf("%dMi", b>>20) }

// leaseEventsCmd is `gpunetd lease events DSEQ [--follow]`.
func leaseEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events [dseq]",
		Short: "What happened to a deployment's leases on their providers: deploys, container starts, exits, OOM kills, updates, closes",
		Long: `Prints each lease's events as its provider keeps them: the provider's steps (manifest,
deploying, running, updating, closing) and the container engine's (created, started, exited
with its code, oom, stopped, removed, health). A lease closed within the last hour still
answers, so a crash loop's exit code and last output can be read after the close. --follow
keeps printing new events until the leases end.`,
		Example: "gpunetd lease events 12 --from tenant --follow",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, leases, _, err := leasesOf(cmd, args[0])
			if err != nil {
				return err
			}
			follow, _ := cmd.Flags().GetBool(flagFollow)
			asJSON := jsonOutput(cmd)
			var mu sync.Mutex
			out := cmd.OutOrStdout()
			print := func(lease string, ev api.LeaseEvent) {
				mu.Lock()
				defer mu.Unlock()
				if asJSON {
					_ = json.NewEncoder(out).Encode(struct {
						Lease string `json:"lease"`
						api.LeaseEvent
					}{lease, ev})
					return
				}
				who := ""
				if ev.Service != "" && ev.Replica != nil {
					who = fmt.Sprintf(" %s-%d", ev.Service, *ev.Replica)
				}
				what := ev.Kind
				if ev.ExitCode != nil {
					what += fmt.Sprintf(" (exit code %d)", *ev.ExitCode)
				}
				if ev.Message != "" {
					what += ": " + ev.Message
				}
				fmt.Fprintf(out, "%s  lease %s%s  %s\n", ev.Time.Local().Format("2006-01-02 15:04:05"), lease, who, what)
			}
			errs := make(chan error, len(leases))
			for _, l := range leases {
				go func(l markettypes.Lease) {
					cl, _, err := c.ProviderAPI(cmd.Context(), l.Id.Provider)
					if err != nil {
						errs <- err
						return
					}
					name := fmt.Sprintf("%d/%d", l.Id.Order.Gseq, l.Id.Order.Oseq)
					err = cl.Events(cmd.Context(), l.Id.Order.Owner, l.Id.Order.Dseq, l.Id.Order.Gseq, l.Id.Order.Oseq, follow,
						func(ev api.LeaseEvent) { print(name, ev) })
					errs <- err
				}(l)
			}
			var all []error
			for range leases {
				if err := <-errs; err != nil {
					all = append(all, err)
				}
			}
			return errors.Join(all...)
		},
	}
	cmd.Flags().Bool(flagFollow, false, "keep printing new events until the leases end")
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}

// leaseShellCmd is `gpunetd lease shell DSEQ [flags] -- CMD...`.
func leaseShellCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shell [dseq] -- [command...]",
		Short: "Run a command in a running container of your deployment (an interactive shell with --tty --stdin)",
		Long: `Runs the command in a replica's container over the provider's signed, certificate-pinned API,
as the container's own user and within its limits. --stdin sends your input; --tty gives the
command a terminal (your terminal is put in raw mode and its size follows yours). The command's
exit code is this command's exit code. Only the deployment's owner may open a shell, and only
in a running lease.`,
		Example: `gpunetd lease shell 12 --from tenant -- nvidia-smi
gpunetd lease shell 12 --from tenant --service api --tty --stdin -- /bin/sh`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("give the dseq, then -- and the command: gpunetd lease shell 12 -- ls /")
			}
			c, leases, _, err := leasesOf(cmd, args[0])
			if err != nil {
				return err
			}
			service, _ := cmd.Flags().GetString("service")
			replica, _ := cmd.Flags().GetInt("replica")
			tty, _ := cmd.Flags().GetBool("tty")
			stdin, _ := cmd.Flags().GetBool("stdin")
			ctx := cmd.Context()
			// The lease that runs the service (the only lease when none is named).
			var lease *markettypes.Lease
			var cl *api.Client
			for i, l := range leases {
				lc, _, err := c.ProviderAPI(ctx, l.Id.Provider)
				if err != nil {
					return err
				}
				st, err := lc.Status(ctx, l.Id.Order.Owner, l.Id.Order.Dseq, l.Id.Order.Gseq, l.Id.Order.Oseq)
				if err != nil {
					return err
				}
				for _, r := range st.Replicas {
					if service == "" || r.Service == service {
						if lease != nil && service == "" && len(leases) > 1 {
							return errors.New("the deployment has several leases: name the service with --service")
						}
						lease, cl = &leases[i], lc
						break
					}
				}
			}
			if lease == nil {
				return fmt.Errorf("no lease of the deployment runs service %q", service)
			}
			req := api.ShellRequest{Service: service, Replica: replica, Cmd: args[1:], TTY: tty, Stdin: stdin}
			var resize chan [2]uint16
			in := cmd.InOrStdin()
			if tty {
				f, ok := in.(*os.File)
				if !ok || !term.IsTerminal(int(f.Fd())) {
					return errors.New("--tty needs a terminal on standard input")
				}
				cols, rows, err := term.GetSize(int(f.Fd()))
				if err == nil {
					req.Rows, req.Cols = uint16(rows), uint16(cols)
				}
				old, err := term.MakeRaw(int(f.Fd()))
				if err != nil {
					return err
				}
				defer func() { _ = term.Restore(int(f.Fd()), old) }() // the terminal as it was
				resize = make(chan [2]uint16, 1)
				winch := make(chan os.Signal, 1)
				signal.Notify(winch, syscall.SIGWINCH)
				defer signal.Stop(winch)
				go func() {
					for range winch {
						if cols, rows, err := term.GetSize(int(f.Fd())); err == nil {
							select {
							case resize <- [2]uint16{uint16(rows), uint16(cols)}:
							default:
							}
						}
					}
				}()
			}
			code, err := cl.Shell(ctx, lease.Id.Order.Owner, lease.Id.Order.Dseq, lease.Id.Order.Gseq, lease.Id.Order.Oseq, req, in, cmd.OutOrStdout(), cmd.ErrOrStderr(), resize)
			if err != nil {
				return err
			}
			if code != 0 {
				return &api.ExitError{Code: code}
			}
			return nil
		},
	}
	cmd.Flags().String("service", "", "the service to run in (default: the only one)")
	cmd.Flags().Int("replica", 0, "the replica of the service")
	cmd.Flags().Bool("tty", false, "give the command a terminal (interactive programs, shells)")
	cmd.Flags().Bool("stdin", false, "send standard input to the command")
	flags.AddTxFlagsToCmd(cmd)
	return cmd
}
