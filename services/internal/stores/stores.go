// Package stores connects a service to NATS, Postgres and Redis the same way in
// every service, and gives each connection a readiness check.
//
// Connections are made to survive their store: NATS reconnects forever, the
// Postgres pool redials on demand, and go-redis retries; a store that is down at
// start delays readiness, it does not crash the service.
package stores

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/spendledger/spendledger/migrations"
)

// NATS connects to url, retrying in the background when the server is not up
// yet, and logs every disconnect and reconnect.
func NATS(url, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrl())
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("stores: connect nats %s: %w", url, err)
	}
	// A bounded async-publish timeout: a future must resolve even when the
	// server vanishes mid-flight, so consumers can nak instead of hanging.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("stores: jetstream: %w", err)
	}
	return nc, js, nil
}

// NATSCheck is ready while the connection is up.
func NATSCheck(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		return nil
	}
}

// Postgres returns a pool for url. The pool dials lazily; Wait blocks until the
// server answers.
func Postgres(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("stores: postgres url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("stores: postgres pool: %w", err)
	}
	return pool, nil
}

// PostgresCheck is ready while the server answers a ping.
func PostgresCheck(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		return nil
	}
}

// Redis returns a client for url (redis://host:port/db).
func Redis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("stores: redis url: %w", err)
	}
	return redis.NewClient(opt), nil
}

// RedisCheck is ready while the server answers PING.
func RedisCheck(rdb *redis.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
}

// Migrate applies a migration set and logs what it applied.
func Migrate(ctx context.Context, log *slog.Logger, pool *pgxpool.Pool, set migrations.Set) error {
	applied, err := migrations.Apply(ctx, pool, set)
	if len(applied) > 0 {
		log.Info("migrations applied", "set", set, "versions", applied)
	}
	return err
}
