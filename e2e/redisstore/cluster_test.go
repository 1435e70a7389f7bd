package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/ledger/scope"
)

// startCluster runs a one-node Redis Cluster owning all 16384 slots. One node
// is enough: Redis Cluster refuses a script whose keys span slots (CROSSSLOT)
// on any number of nodes, so this exercises the slot grouping for real. The
// harness has no cluster mode, hence this local helper.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not in PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the process this test started, by its pid
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Logf("redis cluster log:\n%s", b)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	node := redis.NewClient(&redis.Options{Addr: addr})
	defer node.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for node.Ping(ctx).Err() != nil {
		if ctx.Err() != nil {
			t.Fatal("cluster node did not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(node.ClusterInfo(ctx).Val(), "cluster_state:ok") {
		if ctx.Err() != nil {
			t.Fatal("cluster not ok")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, PoolSize: 128})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestRedisStoreCluster runs the whole suite on Redis Cluster, plus the
// cross-slot cases: reservations across slots roll back when a later slot
// denies or misses.
func TestRedisStoreCluster(t *testing.T) {
	cc := startCluster(t)
	runSuite(t, cc)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := &env{t: t, ctx: ctx, rdb: cc, st: redisstore.New(cc), id: "cross"}
	keys := []string{e.key(scope.KindKey, "a"), e.key(scope.KindTeam, "b"), e.key(scope.KindOrg, "c")}
	slots := map[int64]bool{}
	for _, k := range keys {
		slots[cc.ClusterKeySlot(ctx, k).Val()] = true
	}
	if len(slots) != len(keys) {
		t.Fatalf("test keys share slots (%v); pick other names", slots)
	}
	for _, k := range keys[:2] {
		e.seed(k, 0)
	}
	cs := []redisstore.Counter{{Key: keys[0], Limit: usd}, {Key: keys[1], Limit: usd}, {Key: keys[2], Limit: 100}}

	// The last slot is missing: the first two are rolled back.
	r := e.reserve("x", 200, time.Minute, cs...)
	if r.Admitted || fmt.Sprint(r.Missing) != "[2]" {
		t.Fatalf("missing in the last slot: %+v", r)
	}
	e.want(keys[0], 0, 0)
	e.want(keys[1], 0, 0)

	// The last slot denies: rolled back as well.
	e.seed(keys[2], 0)
	r = e.reserve("x", 200, time.Minute, cs...)
	if r.Admitted || r.Denied != 2 || r.States[0] != (redisstore.State{}) || r.States[2].Exists != true {
		t.Fatalf("denied in the last slot: %+v", r)
	}
	for _, k := range keys {
		e.want(k, 0, 0)
	}

	// Admitted across three slots, then settled across them.
	r = e.reserve("y", 100, time.Minute, cs...)
	if !r.Admitted || r.ExpiresAt.IsZero() {
		t.Fatalf("admitted across slots: %+v", r)
	}
	for _, k := range keys {
		e.want(k, 0, 100)
	}
	got := e.apply(redisstore.Application{EventID: "ev", StreamSeq: 1, TxID: 9, Cost: 77, ReservationID: "y", Keys: keys})
	if outcomes(got...) != outcomes(redisstore.Settled, redisstore.Settled, redisstore.Settled) {
		t.Fatalf("apply across slots: %v", got)
	}
	for _, k := range keys {
		e.want(k, 77, 0)
	}
}
