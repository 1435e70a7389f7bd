package harness

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// TestInfraSurvivesStopAndStart checks the store controls chaos tests rely on:
// JetStream and Postgres keep their data across stop/kill and start on the same
// URL; Redis loses everything on restart; and nothing is left running afterwards.
func TestInfraSurvivesStopAndStart(t *testing.T) {
	var pids []int
	t.Cleanup(func() { // registered first: runs after the infra's own cleanup
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("process %d still exists after cleanup (kill -0: %v)", pid, err)
			}
		}
	})
	in := StartInfra(t)
	if in.Backend == "local" {
		for _, s := range []store{in.nats, in.redis, in.pg} {
			pids = append(pids, s.(*localStore).p.pid())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("nats", func(t *testing.T) {
		publish := func() {
			nc, err := nats.Connect(in.NATSURL)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, "t.x", []byte("hello")); err != nil {
				t.Fatal(err)
			}
		}
		count := func() uint64 {
			nc, err := nats.Connect(in.NATSURL)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			s, err := js.Stream(ctx, "T")
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return info.State.Msgs
		}
		publish()
		in.StopNATS()
		if nc, err := nats.Connect(in.NATSURL, nats.Timeout(500*time.Millisecond)); err == nil {
			nc.Close()
			t.Fatal("NATS still answers after StopNATS")
		}
		in.StartNATS()
		if n := count(); n != 1 {
			t.Fatalf("after stop/start: %d messages, want 1", n)
		}
		in.KillNATS()
		in.StartNATS()
		publish()
		if n := count(); n != 2 {
			t.Fatalf("after kill/start: %d messages, want 2", n)
		}
	})

	t.Run("redis", func(t *testing.T) {
		rdb := in.Redis()
		defer rdb.Close()
		rdb.Set(ctx, "k", "v", 0)
		in.RestartRedis()
		if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("after RestartRedis: GET k: %v, want redis.Nil", err)
		}
		rdb.Set(ctx, "k", "v", 0)
		in.FlushRedis()
		if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("after FlushRedis: GET k: %v, want redis.Nil", err)
		}
		in.KillRedis()
		if err := rdb.Ping(ctx).Err(); err == nil {
			t.Fatal("Redis still answers after KillRedis")
		}
		in.StartRedis()
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("after StartRedis: %v", err)
		}
	})

	t.Run("postgres", func(t *testing.T) {
		exec := func(sql string) int {
			conn, err := pgx.Connect(ctx, in.PostgresURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var n int
			if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			return n
		}
		exec("with c as (select 1) select 1 from c") // connects
		if conn, err := pgx.Connect(ctx, in.PostgresURL); err != nil {
			t.Fatal(err)
		} else {
			if _, err := conn.Exec(ctx, "create table t as select 1 as n"); err != nil {
				t.Fatal(err)
			}
			conn.Close(ctx)
		}
		in.StopPostgres()
		if _, err := pgx.Connect(ctx, in.PostgresURL); err == nil {
			t.Fatal("Postgres still answers after StopPostgres")
		}
		in.StartPostgres()
		if n := exec("select count(*) from t"); n != 1 {
			t.Fatalf("after stop/start: %d rows", n)
		}
		exec("with i as (insert into t values (2) returning 1) select count(*) from i")
		in.KillPostgres()
		in.StartPostgres()
		if n := exec("select count(*) from t"); n != 2 {
			t.Fatalf("after kill/start: %d rows, want 2", n)
		}
	})
}
