package cmd

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/sdl"
)

// sdlCommand is `gpunetd sdl`: read SDL files without touching the chain.
func sdlCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "sdl", Short: "Read SDL (Akash SDL v2.0/2.1) deployment files"}
	check := &cobra.Command{
		Use:   "check [file]",
		Short: "Show how an SDL file is understood: groups, resources, GPUs, max price per hour, manifest hash",
		Long: `Parses the file as gpunetd deploy would and prints the deployment groups, their
resources, acceptable GPU models, the max price per hour (in ugpn) and the manifest hash
that goes on chain. Errors name the YAML line and field.`,
		Example: "gpunetd sdl check examples/gpu-job.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := sdl.Load(args[0])
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			hash, err := d.Manifest.HashHex()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, w := range d.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return json.NewEncoder(out).Encode(map[string]any{"groups": d.Groups, "manifest_hash": hash, "manifest": d.Manifest.Redacted(), "warnings": d.Warnings})
			}
			for i, g := range d.Groups {
				fmt.Fprintf(out, "group %d %q  max price %s per hour\n", i+1, g.Name, api.FormatDecCoin(g.MaxPrice.Amount.String(), g.MaxPrice.Denom))
				for _, r := range g.Requirements {
					fmt.Fprintf(out, "  requires %s=%s\n", r.Key, r.Value)
				}
				if sb := g.SignedBy; len(sb.AllOf)+len(sb.AnyOf) > 0 {
					fmt.Fprintf(out, "  signed by all of %v, any of %v\n", sb.AllOf, sb.AnyOf)
				}
				if r, ok := g.LeastReliability(); ok {
					fmt.Fprintf(out, "  providers with a reliability score of at least %s\n", r)
				}
				for j, r := range g.Resources {
					svc := d.Manifest.Groups[i].Services[j]
					fmt.Fprintf(out, "  %s ×%d  image %s  cpu %dm  memory %d MiB  storage %d MiB", svc.Name, r.Count, svc.Image, r.CpuMillis, r.MemoryBytes>>20, r.StorageBytes>>20)
					if r.Gpu.Units > 0 {
						fmt.Fprintf(out, "  gpu %d × %v (≥ %d MiB)", r.Gpu.Units, r.Gpu.Models, r.Gpu.MinMemoryMib)
						if r.Gpu.Interface != "" {
							fmt.Fprintf(out, " %s", r.Gpu.Interface)
						}
					}
					if svc.Restart == "never" {
						fmt.Fprint(out, "  job (runs to exit)")
					}
					fmt.Fprintln(out)
					for _, m := range svc.Mounts {
						kind := "persistent " + m.Class
						if !m.Persistent {
							kind = "shared memory (ram)"
						}
						fmt.Fprintf(out, "    volume %s %d MiB %s at %s\n", m.Volume, m.SizeBytes>>20, kind, m.Path)
					}
					if len(svc.DependsOn) > 0 {
						fmt.Fprintf(out, "    starts after %v\n", svc.DependsOn)
					}
					for _, e := range svc.Expose {
						if e.IsIngress() {
							fmt.Fprintf(out, "    http ingress for port %d, hostnames %v\n", e.Port, e.Hosts)
						}
					}
					if svc.Credentials != nil {
						fmt.Fprintf(out, "    image pulled with a login for %s\n", svc.Credentials.Host)
					}
				}
			}
			fmt.Fprintf(out, "manifest hash %s\n", hash)
			return nil
		},
	}
	check.Flags().Bool("json", false, "print groups and manifest as JSON")
	cmd.AddCommand(check)
	return cmd
}
