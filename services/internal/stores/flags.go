package stores

import "github.com/spendledger/spendledger/services/internal/envflag"

// The flags below are shared by every service that uses the store, so a store
// is configured the same way everywhere.

// NATSURLFlag defines -nats-url (NATS_URL).
func NATSURLFlag(fs *envflag.Set) *string {
	return fs.String("nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL (JetStream enabled)")
}

// DatabaseURLFlag defines -database-url (DATABASE_URL).
func DatabaseURLFlag(fs *envflag.Set) *string {
	return fs.String("database-url", "DATABASE_URL",
		"postgres://spendledger@127.0.0.1:5432/spendledger?sslmode=disable", "Postgres connection URL")
}

// RedisURLFlag defines -redis-url (REDIS_URL).
func RedisURLFlag(fs *envflag.Set) *string {
	return fs.String("redis-url", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL")
}
