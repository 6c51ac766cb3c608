package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/gpunet/gpunet/sdl"
)

// TestDeployRunsConfinedReplicas deploys a two-service group (web x2, probe
// x1) and checks what a tenant and a provider would notice: the containers
// run with the manifest's limits and the security settings, the workload
// sees those limits in its own cgroup, the published port answers on the
// host, replicas of the lease reach each other by service name while
// another lease cannot reach them, a second Deploy changes nothing, and
// Remove leaves nothing behind.
func TestDeployRunsConfinedReplicas(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Options{PidsLimit: 100})
	ctx := context.Background()
	lease := newLease(t, r)

	web := workloadService(t, "web", 2, "always", "-cat-cgroup", "-listen", ":8080")
	web.Resources = sdl.ManifestResource{CPUMillis: 250, MemoryBytes: 64 << 20, StorageBytes: 1 << 30}
	web.Env = []string{"GREETING=hi"}
	web.Expose = []sdl.ManifestExpose{{Port: 8080, As: 80, Proto: "tcp", Global: true}}
	probe := workloadService(t, "probe", 1, "always", "-dial", "web:8080", "-dial-retry-for", "15s", "-sleep", "1h")
	probe.Command = []string{"/app"}

	st := deploy(t, r, lease, web, probe)

	if !st.Found() || len(st.Services["web"]) != 2 || len(st.Services["probe"]) != 1 {
		t.Fatalf("status after deploy: %+v", st.Services)
	}
	for svc, replicas := range st.Services {
		for i, rep := range replicas {
			if rep.Replica != i || rep.State != "running" || rep.StartedAt.IsZero() {
				t.Errorf("%s replica %d: %+v, want replica %d running", svc, i, rep, i)
			}
		}
	}
	// Deploy reports what it made without listing the engine's containers;
	// Status, which lists them, must see the same containers and network.
	listed, err := r.Status(ctx, lease)
	if err != nil || listed.Network != st.Network || listed.Lease != st.Lease || len(listed.Services) != len(st.Services) {
		t.Fatalf("Status after Deploy: %+v (err %v); Deploy said %+v", listed, err, st)
	}
	for svc, replicas := range st.Services {
		for i, rep := range replicas {
			if got := listed.Services[svc]; len(got) != len(replicas) || got[i].ContainerID != rep.ContainerID || got[i].ContainerName != rep.ContainerName {
				t.Fatalf("%s: Status lists %+v, Deploy said %+v", svc, got, replicas)
			}
		}
	}

	t.Run("containers carry the manifest's limits and security settings", func(t *testing.T) {
		for svc, replicas := range st.Services {
			for _, rep := range replicas {
				c, err := r.cli.ContainerInspect(ctx, rep.ContainerID)
				if err != nil {
					t.Fatal(err)
				}
				checkInspect(t, c, r, lease, svc, rep.Replica, st.Network)
			}
		}
		web0, _ := r.cli.ContainerInspect(ctx, st.Services["web"][0].ContainerID)
		if web0.HostConfig.NanoCPUs != 250_000_000 || web0.HostConfig.Memory != 64<<20 {
			t.Errorf("web: NanoCPUs %d, Memory %d; want 0.25 CPU, 64MiB", web0.HostConfig.NanoCPUs, web0.HostConfig.Memory)
		}
		if !containsString(web0.Config.Env, "GREETING=hi") {
			t.Errorf("web env %v lacks GREETING=hi", web0.Config.Env)
		}
		probe0, _ := r.cli.ContainerInspect(ctx, st.Services["probe"][0].ContainerID)
		if !reflect.DeepEqual([]string(probe0.Config.Entrypoint), []string{"/app"}) || probe0.Config.Cmd[0] != "-dial" {
			t.Errorf("probe: Entrypoint %v, Cmd %v; want Command, Args", probe0.Config.Entrypoint, probe0.Config.Cmd)
		}
		if probe0.HostConfig.NanoCPUs != 100_000_000 || probe0.HostConfig.Memory != 32<<20 {
			t.Errorf("probe: NanoCPUs %d, Memory %d; want 0.1 CPU, 32MiB", probe0.HostConfig.NanoCPUs, probe0.HostConfig.Memory)
		}
	})

	t.Run("the workload sees its limits in its cgroup", func(t *testing.T) {
		var want []string
		for _, replica := range []string{"web-0", "web-1"} {
			want = append(want,
				"["+replica+"] memory.limit=67108864", // 64 MiB
				"["+replica+"] cpu.quota=25000",       // 250 millicores of a 100000µs period
				"["+replica+"] cpu.period=100000",
				"["+replica+"] pids.max=100")
		}
		waitForLogLines(t, r, lease, "web", want...)
	})

	t.Run("published port is reported and answers on the host", func(t *testing.T) {
		for _, rep := range st.Services["web"] {
			if len(rep.Ports) != 1 {
				t.Fatalf("%s ports %+v, want one", rep.ContainerName, rep.Ports)
			}
			p := rep.Ports[0]
			if p.ContainerPort != 8080 || p.Proto != "tcp" || p.HostIP != "127.0.0.1" || p.HostPort == 0 {
				t.Fatalf("%s port %+v, want 8080/tcp on 127.0.0.1 with a bound host port", rep.ContainerName, p)
			}
			got := dialLine(t, fmt.Sprintf("127.0.0.1:%d", p.HostPort))
			if want := fmt.Sprintf("hello from web-%d", rep.Replica); got != want {
				t.Errorf("host port %d answered %q, want %q", p.HostPort, got, want)
			}
		}
		if ports := st.Services["probe"][0].Ports; len(ports) != 0 {
			t.Errorf("probe exposes nothing but has ports %+v", ports)
		}
	})

	t.Run("replicas of the lease reach each other by service name", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		logs := logsOf(t, r, lease, "probe", 0)
		for !regexp.MustCompile(`\[probe-0\] dial web:8080: ok: hello from web-[01]\n`).MatchString(logs) {
			if time.Now().After(deadline) || strings.Contains(logs, "failed") {
				t.Fatalf("probe could not reach web in its own lease:\n%s", logs)
			}
			time.Sleep(200 * time.Millisecond)
			logs = logsOf(t, r, lease, "probe", 0)
		}
	})

	t.Run("another lease cannot reach this one", func(t *testing.T) {
		web0, err := r.cli.ContainerInspect(ctx, st.Services["web"][0].ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		ip := web0.NetworkSettings.Networks[st.Network].IPAddress
		if ip == "" {
			t.Fatalf("web-0 has no address on %s: %+v", st.Network, web0.NetworkSettings.Networks)
		}
		if ost := intrude(t, r, newLease(t, r), ip+":8080", "1s"); ost.Network == st.Network {
			t.Fatalf("two leases share network %s", st.Network)
		}
	})

	t.Run("single-container leases share a network but cannot reach each other", func(t *testing.T) {
		one, two := newLease(t, r), newLease(t, r)
		target := deploy(t, r, one, workloadService(t, "web", 1, "always", "-listen", ":8080"))
		if want := r.sharedNetwork(); target.Network != want {
			t.Fatalf("single-container lease on %s, want the shared network %s", target.Network, want)
		}
		n, err := r.cli.NetworkInspect(ctx, target.Network, network.InspectOptions{})
		if err != nil || n.Options[iccOption] != "false" || n.Labels[LabelShared] != "true" {
			t.Fatalf("shared network: options %v labels %v (err %v)", n.Options, n.Labels, err)
		}
		c, err := r.cli.ContainerInspect(ctx, target.Services["web"][0].ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		ip := c.NetworkSettings.Networks[target.Network].IPAddress
		if counts, err := r.RunningContainers(ctx); err != nil || counts[leaseName(one)] != 1 || counts[leaseName(lease)] != 3 {
			t.Fatalf("running containers by lease: %v (err %v); want 1 for the new lease, 3 for the first", counts, err)
		}
		if held, err := r.List(ctx); err != nil || held[leaseName(one)] != (Held{one, 1, true}) || held[leaseName(lease)] != (Held{lease, 3, true}) {
			t.Fatalf("List: %+v (err %v); want the new lease with 1 running, the first with 3", held, err)
		}
		// The listener answers the host, so the refusals below are the
		// network's, not a container that is not up yet.
		waitForLogLines(t, r, one, "web", "[web-0] listening on [::]:8080")
		conn, err := net.DialTimeout("tcp", ip+":8080", 2*time.Second)
		if err != nil {
			t.Fatalf("the host cannot reach the listener at %s: %v", ip, err)
		}
		conn.Close()
		for _, addr := range []string{ip + ":8080", "web:8080"} {
			if ist := intrude(t, r, two, addr, "2s"); ist.Network != target.Network {
				t.Fatalf("intruder on %s, want the shared %s", ist.Network, target.Network)
			}
			if err := r.Remove(ctx, two); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Remove(ctx, one); err != nil {
			t.Fatal(err)
		}
		if _, err := r.cli.NetworkInspect(ctx, target.Network, network.InspectOptions{}); err != nil {
			t.Fatalf("removing a lease took the shared network: %v", err)
		}
		leases, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := leases[leaseName(one)]; ok {
			t.Fatalf("List still has the removed lease: %v", leases)
		}
	})

	t.Run("a second Deploy adopts the running containers", func(t *testing.T) {
		again, err := r.Deploy(ctx, Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{web, probe}}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(containerIDs(again), containerIDs(st)) {
			t.Fatalf("second Deploy changed containers: %v, was %v", containerIDs(again), containerIDs(st))
		}
		all, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.leaseFilter(lease)})
		if err != nil || len(all) != 3 {
			t.Fatalf("lease has %d containers after a second Deploy (err %v), want 3", len(all), err)
		}
	})

	t.Run("following logs of a running service ends with the context", func(t *testing.T) {
		fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		var buf bytes.Buffer
		err := r.Logs(fctx, lease, "web", true, 0, &buf)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Logs(follow) of running containers = %v, want the context's deadline", err)
		}
		if !strings.Contains(buf.String(), "[web-1] listening on") {
			t.Errorf("followed logs lack web-1's output:\n%s", buf.String())
		}
	})

	t.Run("Remove leaves nothing and can be repeated", func(t *testing.T) {
		if err := r.Remove(ctx, lease); err != nil {
			t.Fatal(err)
		}
		all, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.leaseFilter(lease)})
		if err != nil || len(all) != 0 {
			t.Fatalf("%d containers left after Remove (err %v)", len(all), err)
		}
		if _, err := r.cli.NetworkInspect(ctx, st.Network, network.InspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Fatalf("network %s still there after Remove: %v", st.Network, err)
		}
		if err := r.Remove(ctx, lease); err != nil {
			t.Fatalf("second Remove: %v", err)
		}
		gone, err := r.Status(ctx, lease)
		if err != nil || gone.Found() {
			t.Fatalf("Status after Remove: found=%v err=%v", gone.Found(), err)
		}
	})
}

// checkInspect asserts one container's engine-side configuration.
func checkInspect(t *testing.T, c container.InspectResponse, r *Runtime, l LeaseRef, service string, replica int, netName string) {
	t.Helper()
	name := c.Name
	hc := c.HostConfig
	if hc.PidsLimit == nil || *hc.PidsLimit != 100 {
		t.Errorf("%s: PidsLimit %v, want 100", name, hc.PidsLimit)
	}
	if hc.MemorySwap != hc.Memory {
		t.Errorf("%s: MemorySwap %d != Memory %d: swap allowed", name, hc.MemorySwap, hc.Memory)
	}
	if hc.Privileged || !reflect.DeepEqual([]string(hc.CapDrop), []string{"ALL"}) || !reflect.DeepEqual(hc.SecurityOpt, []string{"no-new-privileges"}) {
		t.Errorf("%s: Privileged %v CapDrop %v SecurityOpt %v", name, hc.Privileged, hc.CapDrop, hc.SecurityOpt)
	}
	if hc.RestartPolicy.Name != "on-failure" || hc.RestartPolicy.MaximumRetryCount != 5 {
		t.Errorf("%s: RestartPolicy %+v, want on-failure x5", name, hc.RestartPolicy)
	}
	if string(hc.NetworkMode) != netName || len(c.NetworkSettings.Networks) != 1 || c.NetworkSettings.Networks[netName] == nil {
		t.Errorf("%s: NetworkMode %q networks %v, want only %s", name, hc.NetworkMode, c.NetworkSettings.Networks, netName)
	}
	if hc.LogConfig.Type != "json-file" || hc.LogConfig.Config["max-size"] != "10m" {
		t.Errorf("%s: LogConfig %+v", name, hc.LogConfig)
	}
	wantLabels := replicaLabels(r.opts.Provider, l, "dc", service, replica)
	for k, v := range wantLabels {
		if c.Config.Labels[k] != v {
			t.Errorf("%s: label %s=%q, want %q", name, k, c.Config.Labels[k], v)
		}
	}
	if want := "/" + containerName(r.opts.Provider, l, service, replica); name != want {
		t.Errorf("container name %s, want %s", name, want)
	}
}

// TestDeployMissingImageCreatesNothing: an image that is not on the engine
// and cannot be pulled fails the deploy with ErrImageUnavailable naming it,
// before anything is created, also for the lease's other services.
func TestDeployMissingImageCreatesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		pull  bool
		image string
	}{
		{"pulling off", false, "gpunet-test-missing:" + randomHex(t, 4)},
		// A registry on a closed local port: the pull fails at once.
		{"pull fails", true, "127.0.0.1:9/gpunet-test-missing:" + randomHex(t, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRuntime(t, Options{Pull: tc.pull})
			lease := newLease(t, r)
			good := workloadService(t, "good", 1, "always", "-sleep", "1h")
			missing := workloadService(t, "missing", 1, "always")
			missing.Image = tc.image

			w := Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{good, missing}}}
			// The daemon pulls before its deploy takes an engine slot: the
			// same refusal, and nothing created either.
			if err := r.PullImages(context.Background(), w); !errors.Is(err, ErrImageUnavailable) || !strings.Contains(err.Error(), tc.image) {
				t.Fatalf("PullImages = %v, want ErrImageUnavailable naming %s", err, tc.image)
			}
			_, err := r.Deploy(context.Background(), w)
			if !errors.Is(err, ErrImageUnavailable) || !strings.Contains(err.Error(), tc.image) || !strings.Contains(err.Error(), `"missing"`) {
				t.Fatalf("Deploy = %v, want ErrImageUnavailable naming %s and the service", err, tc.image)
			}
			// A workload Deploy would refuse is refused before its images
			// are looked for: a service that depends on one not in the group.
			missing.DependsOn = []string{"db"}
			w.Group.Services[1] = missing
			if err := r.PullImages(context.Background(), w); !errors.Is(err, ErrWorkloadInvalid) || !strings.Contains(err.Error(), `depends on "db"`) {
				t.Fatalf("PullImages of a workload that cannot be planned = %v, want ErrWorkloadInvalid naming the dependency", err)
			}
			assertNothingOnEngine(t, r, lease)
		})
	}
}

// TestDeployWithoutGPUDriverFailsCleanly: on an engine without the NVIDIA
// toolkit (this machine), a replica asking for a GPU cannot start; Deploy
// says so with ErrGPUUnavailable and removes what it had started.
func TestDeployWithoutGPUDriverFailsCleanly(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Options{})
	lease := newLease(t, r)
	api := workloadService(t, "api", 1, "always", "-sleep", "1h")
	train := workloadService(t, "train", 1, "never", "-exit", "0")
	train.Resources.GPUUnits = 1

	_, err := r.Deploy(context.Background(), Workload{
		Lease: lease,
		Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{api, train}},
		GPUs:  []string{"GPU-8a2d6f4e-0000-1111-2222-333344445555"},
	})
	if !errors.Is(err, ErrGPUUnavailable) || !strings.Contains(err.Error(), `service "train"`) || !strings.Contains(err.Error(), "NVIDIA container toolkit") {
		t.Fatalf("Deploy = %v, want ErrGPUUnavailable naming the service and the missing toolkit", err)
	}
	assertNothingOnEngine(t, r, lease)
}

func assertNothingOnEngine(t *testing.T, r *Runtime, l LeaseRef) {
	t.Helper()
	ctx := context.Background()
	mine := filters.NewArgs(filters.Arg("label", LabelProvider+"="+r.opts.Provider))
	cs, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: mine})
	if err != nil || len(cs) != 0 {
		t.Errorf("%d containers left on the engine (err %v)", len(cs), err)
	}
	ns, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: r.leaseFilter(l)})
	if err != nil || len(ns) != 0 {
		t.Errorf("%d lease networks left on the engine (err %v)", len(ns), err)
	}
	if st, err := r.Status(ctx, l); err != nil || st.Found() {
		t.Errorf("Status: found=%v err=%v, want not found", st.Found(), err)
	}
}

// TestLogsArePrefixedPerReplica runs a job of two services and reads its
// logs: following returns when the job ends, every line says which replica
// wrote it, stderr is included, and service and tail narrow the output.
func TestLogsArePrefixedPerReplica(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Options{})
	ctx := context.Background()
	lease := newLease(t, r)
	// talk is deployed last and sleeps after printing, so it is still
	// running when Logs starts following.
	st := deploy(t, r, lease,
		workloadService(t, "quiet", 1, "never", "-print", "shh"),
		workloadService(t, "talk", 2, "never", "-print", "hello", "-count", "3", "-interval", "100ms", "-print-stderr", "oops", "-sleep", "2s"),
	)
	if st.Services["talk"][1].State != "running" {
		t.Fatalf("talk-1 is not running right after Deploy: %+v", st.Services["talk"][1])
	}

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var buf bytes.Buffer
	if err := r.Logs(ctx, lease, "", true, 0, &buf); err != nil {
		t.Fatalf("Logs(follow): %v", err)
	}
	if st, err := r.Status(ctx, lease); err != nil || !st.Exited() {
		t.Errorf("Logs(follow) returned while the job was still running: %+v (err %v)", st.Services, err)
	}
	counts := lineCounts(buf.String())
	want := map[string]int{
		"[talk-0] hello": 3, "[talk-1] hello": 3,
		"[talk-0] oops": 1, "[talk-1] oops": 1,
		"[quiet-0] shh": 1,
	}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("followed logs:\n%s\nline counts %v, want %v", buf.String(), counts, want)
	}

	// The engine orders stdout and stderr lines only by when it read them,
	// so the tail is taken where one stream clearly ends last.
	if got, want := logsOf(t, r, lease, "talk", 1), "[talk-0] hello\n[talk-1] hello\n"; got != want {
		t.Errorf("Logs(talk, tail 1) = %q, want %q", got, want)
	}
	if got := logsOf(t, r, lease, "quiet", 0); got != "[quiet-0] shh\n" {
		t.Errorf("Logs(quiet) = %q", got)
	}
	if err := r.Logs(ctx, lease, "nope", false, 0, &buf); !errors.Is(err, ErrServiceNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Logs of an unknown service = %v, want ErrServiceNotFound naming it", err)
	}
	if err := r.Logs(ctx, newLease(t, r), "", false, 0, &buf); !errors.Is(err, ErrLeaseNotFound) {
		t.Errorf("Logs of an unknown lease = %v, want ErrLeaseNotFound", err)
	}
}

// TestRestartedDaemonFindsLeasesAndJobResults: a fresh Runtime (a restarted
// provider daemon) lists the leases the previous one deployed, adopts them
// on Deploy, and gets the result of a job that exited while it was away;
// JobState says a job still running has not ended, and gives its result
// once it has.
func TestRestartedDaemonFindsLeasesAndJobResults(t *testing.T) {
	t.Parallel()
	before := newTestRuntime(t, Options{})
	ctx := context.Background()
	failing, running := newLease(t, before), newLease(t, before)
	failingJob := workloadService(t, "work", 1, "never", "-exit", "3")
	deploy(t, before, failing, failingJob)
	runningSt := deploy(t, before, running, workloadService(t, "work", 1, "never", "-sleep", "1500ms", "-exit", "0"))
	exited := waitExited(t, before, failing)

	// The restarted daemon: a new Runtime for the same provider, knowing
	// nothing of what the first one did.
	after, err := New(ctx, Options{Provider: before.opts.Provider, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()

	leases, err := after.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]LeaseRef{}
	for key, h := range leases {
		refs[key] = h.Ref
	}
	want := map[string]LeaseRef{leaseName(failing): failing, leaseName(running): running}
	if !reflect.DeepEqual(refs, want) || leases[leaseName(failing)].Running != 0 {
		t.Fatalf("List after restart = %v, want %v", leases, want)
	}
	stranger := newTestRuntime(t, Options{})
	if theirs, err := stranger.List(ctx); err != nil || len(theirs) != 0 {
		t.Errorf("another provider lists %v (err %v), want nothing", theirs, err)
	}

	rep := exited.Services["work"][0]
	if rep.State != "exited" || rep.ExitCode != 3 || rep.FinishedAt.IsZero() {
		t.Errorf("status of the failed job: %+v", rep)
	}
	res, ended, err := after.JobState(ctx, failing)
	if err != nil {
		t.Fatal(err)
	}
	if !ended || res.Succeeded || !reflect.DeepEqual(res.ExitCodes, map[string]int{rep.ContainerName: 3}) {
		t.Errorf("JobState of the job that exited 3 = %+v, ended %v", res, ended)
	}

	adopted, err := after.Deploy(ctx, Workload{Lease: failing, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{failingJob}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := adopted.Services["work"]; len(got) != 1 || got[0].ContainerID != rep.ContainerID || got[0].State != "exited" {
		t.Errorf("Deploy after restart did not adopt the exited job: %+v", got)
	}

	if res, ended, err := after.JobState(ctx, running); err != nil || ended {
		t.Errorf("JobState of a job still running = %+v, ended %v, err %v", res, ended, err)
	}
	res = waitJob(t, after, running)
	name := runningSt.Services["work"][0].ContainerName
	if !res.Succeeded || !reflect.DeepEqual(res.ExitCodes, map[string]int{name: 0}) {
		t.Errorf("JobState of the job that exited 0 = %+v", res)
	}
	if st, _ := after.Status(ctx, running); !st.Exited() {
		t.Errorf("JobState said ended before the job exited: %+v", st.Services)
	}
	if _, _, err := after.JobState(ctx, newLease(t, after)); !errors.Is(err, ErrLeaseNotFound) {
		t.Errorf("JobState of an unknown lease = %v, want ErrLeaseNotFound", err)
	}
}

// TestNewNamesTheEngineItCannotReach: the error tells the operator where it
// looked and how to point it elsewhere.
func TestNewNamesTheEngineItCannotReach(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), Options{Provider: "gpunet1x", DockerHost: "unix:///nonexistent/docker.sock"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/docker.sock") || !strings.Contains(err.Error(), "DOCKER_HOST") {
		t.Fatalf("New with no engine = %v, want an error naming the socket and DOCKER_HOST", err)
	}
	if _, err := New(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "Provider") {
		t.Fatalf("New without a provider = %v", err)
	}
}

func dialLine(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(line)
}

func containerIDs(st LeaseStatus) map[string]string {
	ids := map[string]string{}
	for _, replicas := range st.Services {
		for _, rep := range replicas {
			ids[rep.ContainerName] = rep.ContainerID
		}
	}
	return ids
}

func lineCounts(s string) map[string]int {
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		counts[line]++
	}
	return counts
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestLeaseNetworksOutnumberDockerDefaultPools: Docker's default address
// pools run out after about 30 bridge networks, so a provider leaving the
// subnet to the engine could not run more leases than that. Each lease's
// network gets its own subnet from the provider's pool instead: 40 leases
// get 40 distinct subnets inside it, and Remove gives them back.
func TestLeaseNetworksOutnumberDockerDefaultPools(t *testing.T) {
	r := newTestRuntime(t, Options{LeaseSubnets: "10.250.0.0/16", LeaseSubnetBits: 26})
	ctx := context.Background()
	pool := netip.MustParsePrefix("10.250.0.0/16")
	seen := map[netip.Prefix]bool{}
	var leases []LeaseRef
	for i := range 40 {
		l := newLease(t, r)
		leases = append(leases, l)
		name := fmt.Sprintf("gpunet-test-%s-%d", randomHex(t, 4), i)
		if err := r.ensureNetwork(ctx, l, name); err != nil {
			t.Fatalf("network %d: %v", i, err)
		}
		n, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.IPAM.Config) != 1 {
			t.Fatalf("network %d: IPAM %+v, want one subnet", i, n.IPAM.Config)
		}
		sub := netip.MustParsePrefix(n.IPAM.Config[0].Subnet)
		if sub.Bits() != 26 || !pool.Overlaps(sub) || sub.Bits() < pool.Bits() || seen[sub] {
			t.Fatalf("network %d got subnet %s: want a fresh /26 inside %s (have %v)", i, sub, pool, seen)
		}
		seen[sub] = true
	}
	for _, l := range leases {
		if err := r.Remove(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	left, err := r.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelProvider+"="+r.opts.Provider))})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%d networks left after Remove", len(left))
	}
}

func TestNewRefusesABadLeaseSubnetPool(t *testing.T) {
	_, err := New(context.Background(), Options{Provider: "gpunet1test", LeaseSubnets: "10.240.0.1/12"})
	if err == nil || !strings.Contains(err.Error(), "lease subnet pool") {
		t.Fatalf("New with host bits in the pool = %v, want a refusal naming the pool", err)
	}
}

// TestDeployRefusesWhatTheTenantCannotRun: a command the OCI runtime cannot
// execute and an image over MaxImageBytes are the tenant's faults
// (ErrWorkloadInvalid, so the daemon closes as workload_invalid without a
// slash), and nothing is left on the engine.
//
// Not parallel: it creates and removes lease networks, and Docker's
// inter-bridge isolation rules are rewritten on every such change (see
// TestDeployRunsConfinedReplicas, which once saw another lease reach its
// container while the networks of parallel tests churned).
// TestSharedNetworkRemovedUnderTheDaemonIsMadeAgain: an operator's
// `docker network prune` while no single-container lease runs takes the
// shared network; the next such lease still deploys.
func TestSharedNetworkRemovedUnderTheDaemonIsMadeAgain(t *testing.T) {
	r := newTestRuntime(t, Options{})
	ctx := context.Background()
	first := newLease(t, r)
	deploy(t, r, first, workloadService(t, "web", 1, "always", "-sleep", "1h"))
	if err := r.Remove(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := r.cli.NetworkRemove(ctx, r.sharedNetwork()); err != nil {
		t.Fatal(err)
	}
	st := deploy(t, r, newLease(t, r), workloadService(t, "web", 1, "always", "-sleep", "1h"))
	if st.Network != r.sharedNetwork() || len(st.Services["web"]) != 1 {
		t.Fatalf("after the network was removed: %+v", st)
	}
}

// intrude runs, as lease l, a one-container job that dials addr, and fails
// the test if it got through; it returns the intruder lease's status.
func intrude(t *testing.T, r *Runtime, l LeaseRef, addr, timeout string) LeaseStatus {
	t.Helper()
	st := deploy(t, r, l, workloadService(t, "intruder", 1, "never", "-dial", addr, "-dial-timeout", timeout))
	res := waitJob(t, r, l)
	logs := logsOf(t, r, l, "", 0)
	if res.Succeeded || !strings.Contains(logs, "[intruder-0] dial "+addr+": failed") {
		t.Fatalf("lease %s reached %s on %s (result %+v):\n%s", leaseName(l), addr, st.Network, res, logs)
	}
	return st
}

// TestPlantedSharedNetworkIsRefused: a network under the shared network's
// name that lets containers talk, or lies outside the lease pool (where the
// egress filter does not reach), is not used; the deploy fails on the
// provider's side and says why.
func TestPlantedSharedNetworkIsRefused(t *testing.T) {
	for _, c := range []struct {
		name    string
		options map[string]string
		subnet  string
		want    string
	}{
		{"inter-container traffic on", nil, "", "lets its containers reach each other"},
		{"outside the pool", map[string]string{iccOption: "false"}, "10.199.77.0/24", "outside runtime.lease_subnets"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newTestRuntime(t, Options{})
			ctx := context.Background()
			opts := network.CreateOptions{Driver: "bridge", Options: c.options,
				Labels: map[string]string{LabelProvider: r.opts.Provider, LabelShared: "true"}}
			if c.subnet != "" {
				opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: c.subnet}}}
			}
			if _, err := r.cli.NetworkCreate(ctx, r.sharedNetwork(), opts); err != nil {
				t.Fatal(err)
			}
			lease := newLease(t, r)
			_, err := r.Deploy(ctx, Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{workloadService(t, "web", 1, "always", "-sleep", "1h")}}})
			if err == nil || errors.Is(err, ErrWorkloadInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Deploy on a planted shared network = %v, want a provider-side refusal saying %q", err, c.want)
			}
			assertNothingOnEngine(t, r, lease)
		})
	}
}

func TestDeployRefusesWhatTheTenantCannotRun(t *testing.T) {
	t.Run("command that does not exist", func(t *testing.T) {
		r := newTestRuntime(t, Options{})
		lease := newLease(t, r)
		svc := workloadService(t, "job", 1, "never")
		svc.Command = []string{"/nonexistent"}
		_, err := r.Deploy(context.Background(), Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{svc}}})
		if !errors.Is(err, ErrWorkloadInvalid) || !strings.Contains(err.Error(), "/nonexistent") {
			t.Fatalf("Deploy = %v, want ErrWorkloadInvalid naming the command", err)
		}
		assertNothingOnEngine(t, r, lease)
	})
	t.Run("limits the engine refuses", func(t *testing.T) {
		r := newTestRuntime(t, Options{})
		lease := newLease(t, r)
		svc := workloadService(t, "job", 1, "never")
		svc.Resources.MemoryBytes = 1 << 20 // below the engine's 6 MB floor
		_, err := r.Deploy(context.Background(), Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{svc}}})
		if !errors.Is(err, ErrWorkloadInvalid) {
			t.Fatalf("Deploy = %v, want ErrWorkloadInvalid", err)
		}
		assertNothingOnEngine(t, r, lease)
	})
	t.Run("image over the size limit", func(t *testing.T) {
		r := newTestRuntime(t, Options{MaxImageBytes: 1024})
		lease := newLease(t, r)
		_, err := r.Deploy(context.Background(), Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{workloadService(t, "job", 1, "never")}}})
		if !errors.Is(err, ErrWorkloadInvalid) || !strings.Contains(err.Error(), "accepts at most 1024") {
			t.Fatalf("Deploy = %v, want ErrWorkloadInvalid naming the limit", err)
		}
		assertNothingOnEngine(t, r, lease)
	})
}

func TestWorkloadCannotExec(t *testing.T) {
	for msg, want := range map[string]bool{
		`Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory: unknown`: true,
		`OCI runtime create failed: runc create failed: unable to start container process: exec: "run.sh": executable file not found in $PATH: unknown`:                                                                                                              true,
		`OCI runtime create failed: runc create failed: unable to start container process: exec: "/bin": is a directory: unknown`:                                                                                                                                    true,
		`failed to set up container networking: network gpunet-x not found`:                                                                                                                                                                                          false,
		`OCI runtime create failed: runc create failed: unable to apply cgroup configuration: no such file or directory`:                                                                                                                                             false,
	} {
		if got := workloadCannotExec(errors.New(msg)); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}

// waitJob asks JobState until the lease's job has ended (the daemon asks
// at each exit event instead) and returns its result.
func waitJob(t *testing.T, r *Runtime, l LeaseRef) JobResult {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res, ended, err := r.JobState(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		if ended {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("job of lease %s still running after a minute", leaseName(l))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
