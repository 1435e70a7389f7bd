// Package pgstore_test tests ledger/pgstore against a real Postgres started
// by the e2e harness. Each test gets its own Postgres, so tests run in
// parallel and never see each other's rows.
package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spendledger/spendledger/e2e/harness"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/migrations"
)

// TestMain removes the service binaries the harness may build.
func TestMain(m *testing.M) { harness.Main(m) }

// newDB starts Postgres for tb, applies the ledger migrations and returns a
// pool closed at cleanup. Extra runtime parameters (e.g. timezone) apply to
// every connection.
func newDB(tb testing.TB, params ...string) *pgxpool.Pool {
	tb.Helper()
	in := harness.StartInfra(tb)
	pool := connect(tb, in.PostgresURL, params...)
	if _, err := migrations.Apply(context.Background(), pool, migrations.Ledger); err != nil {
		tb.Fatalf("migrations: %v", err)
	}
	return pool
}

func connect(tb testing.TB, url string, params ...string) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(params); i += 2 {
		cfg.ConnConfig.RuntimeParams[params[i]] = params[i+1]
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// newID returns a random UUIDv7, as the gateway mints them.
func newID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(u[:6], ms[2:])
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// who is the identity and route of a fixture event.
type who struct {
	key, team, user, org, endUser string
	tags                          []string
	group, deployment, provider   string
}

func (w who) orDefaults() who {
	if w.key == "" {
		w.key = "key-1"
	}
	if w.group == "" {
		w.group = "claude-opus-4-6"
	}
	if w.deployment == "" {
		w.deployment = "dep-1"
	}
	if w.provider == "" {
		w.provider = "vertex_ai"
	}
	return w
}

// costEvent is a valid PRICED CostComputed whose two components sum to
// nanos.
func costEvent(id string, at time.Time, w who, nanos int64) *eventsv1.CostComputed {
	w = w.orDefaults()
	in := nanos / 3
	return &eventsv1.CostComputed{
		EventId: id,
		Usage: &eventsv1.UsageRecorded{
			EventId: id,
			Identity: &eventsv1.Identity{
				KeyId: w.key, TeamId: w.team, UserId: w.user, OrgId: w.org, EndUserId: w.endUser,
				Tags: slices.Clone(w.tags),
			},
			Route: &eventsv1.Route{
				ModelGroup: w.group, DeploymentId: w.deployment, Provider: w.provider,
				BackendModel: w.provider + "/" + w.group + "@default",
			},
			Tokens:        &eventsv1.TokenCounts{Input: 1200, Output: 340, CacheRead: 7},
			ReservationId: "res-" + id[:8],
			RequestId:     "call-" + id[:8],
			OccurredAt:    timestamppb.New(at),
		},
		Components: []*eventsv1.CostComponent{
			{Name: "input", Tokens: 1200, UnitPrice: "0.000015", Source: eventsv1.PriceSource_PRICE_SOURCE_CATALOG,
				SourceDetail: "claude-opus-4-6", ExactCost: "0.018", CostNanos: in},
			{Name: "output", Tokens: 340, UnitPrice: "0.000075", Source: eventsv1.PriceSource_PRICE_SOURCE_DEPLOYMENT_OVERRIDE,
				SourceDetail: "output_cost_per_token", ExactCost: "0.0255", CostNanos: nanos - in},
		},
		TotalNanos:     nanos,
		Status:         eventsv1.PricingStatus_PRICING_STATUS_PRICED,
		CatalogVersion: "catalog-test-1",
		PricedAt:       timestamppb.New(at.Add(time.Second)),
	}
}

// unpriced marks c UNPRICED with an unknown cache_read component.
func unpriced(c *eventsv1.CostComputed) *eventsv1.CostComputed {
	c.Status = eventsv1.PricingStatus_PRICING_STATUS_UNPRICED
	c.UnknownComponents = []string{"cache_read"}
	c.Components = append(c.Components, &eventsv1.CostComponent{
		Name: "cache_read", Tokens: 7, Source: eventsv1.PriceSource_PRICE_SOURCE_UNKNOWN,
	})
	return c
}

func mustEntry(tb testing.TB, c *eventsv1.CostComputed, seq uint64) pgstore.Entry {
	tb.Helper()
	e, err := pgstore.EntryFromCost(c, seq)
	if err != nil {
		tb.Fatalf("EntryFromCost: %v", err)
	}
	return e
}

func entry(tb testing.TB, at time.Time, w who, nanos int64) pgstore.Entry {
	tb.Helper()
	return mustEntry(tb, costEvent(newID(), at, w, nanos), 0)
}

func mustInsert(tb testing.TB, db pgstore.DB, entries ...pgstore.Entry) []pgstore.Inserted {
	tb.Helper()
	res, err := pgstore.Insert(context.Background(), db, entries)
	if err != nil {
		tb.Fatalf("Insert: %v", err)
	}
	return res
}

func countRows(tb testing.TB, pool *pgxpool.Pool) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM ledger_entries").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// comparable strips what the database sets and makes empty slices nil, so a
// stored entry can be compared with the one inserted.
func comparable(e pgstore.Entry) pgstore.Entry {
	e.RecordedAt, e.TxID = time.Time{}, 0
	if len(e.Tags) == 0 {
		e.Tags = nil
	}
	if len(e.Components) == 0 {
		e.Components = nil
	}
	if len(e.UnknownComponents) == 0 {
		e.UnknownComponents = nil
	}
	if len(e.CounterKeys) == 0 {
		e.CounterKeys = nil
	}
	return e
}
