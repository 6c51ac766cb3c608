package daemon

import (
	"testing"
	"time"

	"github.com/gpunet/gpunet/provider/api"
)

// A lease's events outlive a daemon restart (the file), keep only the
// newest maxLeaseEvents, reach followers, and go an hour after the lease.
func TestLeaseLogKeepsAndForgets(t *testing.T) {
	dir := t.TempDir()
	g := newLeaseLog(dir)
	past, next, stop := g.subscribe("a/1/1/1")
	if len(past) != 0 {
		t.Fatalf("past %v", past)
	}
	for i := range maxLeaseEvents + 10 {
		g.add("a/1/1/1", api.LeaseEvent{Kind: "started", Message: string(rune('a' + i%26))})
	}
	if ev := <-next; ev.Kind != "started" {
		t.Fatalf("follower got %+v", ev)
	}
	stop()
	again := newLeaseLog(dir) // a restarted daemon
	evs := again.events("a/1/1/1")
	if len(evs) != maxLeaseEvents || evs[len(evs)-1].Message != string(rune('a'+(maxLeaseEvents+9)%26)) {
		t.Fatalf("after a restart: %d events, last %+v", len(evs), evs[len(evs)-1])
	}
	if again.recentOwner("a") {
		t.Fatal("an owner whose lease runs counts as one whose lease ended")
	}
	again.finish("a/1/1/1")
	if ended, kept := again.ended("a/1/1/1"); !ended || !kept || len(again.events("a/1/1/1")) != maxLeaseEvents {
		t.Fatal("a finished lease's events went at once")
	}
	if !again.recentOwner("a") || again.recentOwner("b") || again.recentOwner("a/1") {
		t.Fatal("the owner whose lease just ended is not told apart")
	}
	again.finished["a/1/1/1"] = time.Now().Add(-2 * keepFinished)
	again.owners["a"] = time.Now().Add(-2 * keepFinished)
	again.finish("b/1/1/1") // sweeps
	if _, kept := again.ended("a/1/1/1"); kept || len(newLeaseLog(dir).events("a/1/1/1")) != 0 {
		t.Fatal("a lease finished two hours ago still has events")
	}
	if again.recentOwner("a") || !again.recentOwner("b") {
		t.Fatal("an owner whose lease ended two hours ago is still served")
	}
}
