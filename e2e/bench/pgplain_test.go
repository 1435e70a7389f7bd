package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spendledger/spendledger/e2e/bench/figures"
	"github.com/spendledger/spendledger/e2e/harness"
)

// plainRowsPerInsert is the statement size BenchmarkPostgresPlainInsert uses.
const plainRowsPerInsert = 100

// BenchmarkPostgresPlainInsert is the yardstick for BenchmarkLedgerIngest:
// how fast the harness's Postgres takes ledgerEvents() rows as plain 100-row
// multi-row INSERTs (one statement per transaction, autocommit, one
// connection) into a three-column table with only a primary key. Nothing
// the ledger needs is in it (no idempotency, no secondary indexes, no
// projection, no JetStream), so it bounds what any ledger design could reach
// on this machine; BENCHMARKS.md reports the ratio.
func BenchmarkPostgresPlainInsert(b *testing.B) {
	rows := int64(ledgerEvents())
	in := harness.StartInfra(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, in.PostgresURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE plain (id bigint PRIMARY KEY, amount bigint NOT NULL, note text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO plain (id, amount, note) VALUES ")
	for i := range plainRowsPerInsert {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
	}
	sql := sb.String()
	args := make([]any, 3*plainRowsPerInsert)
	b.ResetTimer()
	began := time.Now()
	for id := int64(0); id < rows; id += plainRowsPerInsert {
		for i := range plainRowsPerInsert {
			args[3*i], args[3*i+1], args[3*i+2] = id+int64(i), 1000+(id+int64(i))%5000, "key-7"
		}
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(began)
	b.StopTimer()
	rate := float64(rows) / elapsed.Seconds()
	record(b, figures.LimitPostgresInsert, rate, fmt.Sprintf("%d rows in %.2fs", rows, elapsed.Seconds()))
}
