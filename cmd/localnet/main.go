// Command localnet brings a gpunet network up from config.yml on loopback and
// takes it down again. `make localnet` and `make localnet-down` call it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gpunet/gpunet/testutil/localnet"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "localnet:", err)
		os.Exit(1)
	}
}

func defaultDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".gpunet-localnet"
	}
	return filepath.Join(home, ".gpunet-localnet")
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: localnet up|down|status [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	configPath := fs.String("config", "config.yml", "network description")
	dir := fs.String("dir", defaultDir(), "directory holding one sub-directory per node")
	binary := fs.String("binary", "build/gpunetd", "gpunetd executable")
	validators := fs.Int("validators", 0, "number of validators (default: as in the config)")
	foreground := fs.Bool("foreground", false, "stay attached and stop the network on Ctrl-C")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "up":
		return up(ctx, *configPath, *dir, *binary, *validators, *foreground)
	case "down":
		return down(*dir)
	case "status":
		return status(ctx, *dir)
	default:
		return fmt.Errorf("unknown command %q: want up, down or status", args[0])
	}
}

func up(ctx context.Context, configPath, dir, binary string, validators int, foreground bool) error {
	cfg, err := localnet.LoadConfig(configPath)
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("gpunetd binary not found at %s: run `make build` first", bin)
	}
	// A network already running from this directory would hold the ports.
	if err := down(dir); err != nil {
		return err
	}
	net, err := localnet.Create(ctx, cfg, localnet.Options{Binary: bin, Dir: dir, Validators: validators, Log: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Printf("starting %d validator(s) of %s...\n", len(net.Nodes), cfg.ChainID)
	if err := net.Start(ctx, !foreground); err != nil {
		_ = net.Stop()
		return err
	}
	printSummary(net)
	if !foreground {
		fmt.Printf("\nstop it with: make localnet-down   (or: %s down --dir %s)\n", os.Args[0], dir)
		return nil
	}
	fmt.Println("\nrunning in the foreground; Ctrl-C stops every node")
	<-ctx.Done()
	return net.Stop()
}

func printSummary(net *localnet.Network) {
	fmt.Printf("\nchain %s is producing blocks\n\n", net.Config.ChainID)
	for _, n := range net.Nodes {
		fmt.Printf("%s  rpc %s  grpc %s  rest %s  p2p 127.0.0.1:%d\n      home %s  log %s\n",
			n.Moniker, n.RPCAddr(), n.GRPCAddr(), n.APIURL(), n.P2P, n.Home, filepath.Join(n.Home, "node.log"))
	}
	fmt.Printf("\nkeys (test keyring in %s):\n", net.KeyringHome())
	for _, a := range net.Config.Accounts {
		fmt.Printf("  %-12s %s\n", a.Name, net.Keys[a.Name])
	}
	if tenant, provider := net.Keys["tenant"], net.Keys["provider"]; tenant != "" && provider != "" {
		fmt.Printf("\ntry:\n  export GPUNETD_HOME=%s\n  build/gpunetd query bank balances %s\n  build/gpunetd tx bank send tenant %s 1000000ugpn --fees 5000ugpn --yes -o json\n",
			net.KeyringHome(), tenant, provider)
	}
}

func down(dir string) error {
	homes, err := filepath.Glob(filepath.Join(dir, "node*"))
	if err != nil {
		return err
	}
	stopped := 0
	for _, h := range homes {
		was, err := localnet.StopHome(h, 20*time.Second)
		if err != nil {
			return err
		}
		if was {
			stopped++
		}
	}
	if stopped > 0 {
		fmt.Printf("stopped %d node(s) in %s\n", stopped, dir)
	}
	return nil
}

func status(ctx context.Context, dir string) error {
	homes, err := filepath.Glob(filepath.Join(dir, "node*"))
	if err != nil {
		return err
	}
	if len(homes) == 0 {
		return fmt.Errorf("no network in %s", dir)
	}
	for _, h := range homes {
		fmt.Printf("%s: %s\n", filepath.Base(h), localnet.HomeStatus(ctx, h))
	}
	return nil
}
