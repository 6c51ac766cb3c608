package e2e

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shmSDL is a deployment written as Akash users write them: a ram volume
// mounted at /dev/shm, a service that starts after another, lowercase
// size units and an env entry without "=".
const shmSDL = `version: "2.0"
services:
  db:
    image: ` + workloadImage + `
    args: ["-listen", ":5432"]
    env: [DEBUG]
  llm:
    image: ` + workloadImage + `
    args: ["-sleep", "1h"]
    depends_on: [db]
    params:
      storage:
        shm:
          mount: /dev/shm
profiles:
  compute:
    small:
      resources:
        cpu: {units: 0.5}
        memory: {size: 128mi}
        storage: {size: 1gi}
    shm:
      resources:
        cpu: {units: 0.5}
        memory: {size: 256mi}
        storage:
          - size: 1gi
          - name: shm
            size: 192mi
            attributes: {class: ram, persistent: false}
  placement:
    local:
      pricing:
        small: {denom: ugpn, amount: 5000000000}
        shm: {denom: ugpn, amount: 5000000000}
deployment:
  db:
    local: {profile: small, count: 1}
  llm:
    local: {profile: shm, count: 1}
`

// TestShmVolumeAndDependencies: a ram volume at /dev/shm is a shared-memory
// mount of the requested size inside the container, counted in its
// memory limit, and a service listed in another's depends_on is started
// first.
func TestShmVolumeAndDependencies(t *testing.T) {
	ensureWorkloadImage(t)
	nw := startNetwork(t, 1)
	startProvider(t, nw, "2000000000")
	owner := nw.Keys["tenant"]
	res, out, err := deploy(t, nw, writeSDL(t, shmSDL), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	llm := serviceContainer(t, owner, res.DSeq, "llm")
	db := serviceContainer(t, owner, res.DSeq, "db")
	said, _ := exec.Command("docker", "exec", llm.ID, "/app", "-statfs", "/dev/shm").CombinedOutput()
	if want := "statfs /dev/shm: size=" + strconv.Itoa(192<<20); !strings.Contains(string(said), want) {
		t.Fatalf("/dev/shm in the container: %q, want %q", said, want)
	}
	if llm.HostConfig.Memory != (256+192)<<20 {
		t.Fatalf("memory limit %d, want 256Mi + the 192Mi ram volume", llm.HostConfig.Memory)
	}
	if !slices.Contains(db.Config.Env, "DEBUG=") {
		t.Fatalf("db env %v, want DEBUG= for the entry without =", db.Config.Env)
	}
	dbStart, err1 := time.Parse(time.RFC3339Nano, db.State.StartedAt)
	llmStart, err2 := time.Parse(time.RFC3339Nano, llm.State.StartedAt)
	if err1 != nil || err2 != nil || llmStart.Before(dbStart) {
		t.Fatalf("db started %s, llm (depends on db) %s", db.State.StartedAt, llm.State.StartedAt)
	}
}
