package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/services/internal/envflag"
	"github.com/spendledger/spendledger/services/internal/stores"
	"github.com/spendledger/spendledger/services/ledger/internal/verify"
)

// commands are the ledger binary's subcommands; with none it runs the service.
var commands = map[string]func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error{
	"verify": runVerify,
}

const usage = `usage: ledger [flags]            run the ledger service (see -help)
       ledger verify [flags]     check every live Redis counter against the ledger

verify exits 0 when every counter equals the ledger's sum for its scope and
window (and its reserved total equals the reservations it holds), and 1 after
printing every counter that does not. Run it at quiescence: an event in flight
between its Postgres commit and its projection shows up as a difference.
`

func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := envflag.New("ledger verify", stderr)
	dbURL := stores.DatabaseURLFlag(fs)
	redisURL := stores.RedisURLFlag(fs)
	if err := fs.Parse(args, getenv); err != nil {
		return err
	}
	pool, err := stores.Postgres(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	rdb, err := stores.Redis(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()

	bar := newProgress(stderr, "verify")
	report, err := verify.Run(ctx, pool, redisstore.New(rdb), bar.set)
	bar.done()
	if err != nil {
		return err
	}
	for _, d := range report.Differences {
		fmt.Fprintln(stdout, d.String())
	}
	fmt.Fprintf(stdout, "%d counters checked, %d differ from the ledger\n", report.Checked, len(report.Differences))
	if len(report.Differences) > 0 {
		return errDiffer
	}
	return nil
}

// errDiffer makes the process exit 1 without a second message.
var errDiffer = fmt.Errorf("counters differ from the ledger")

// progress prints a one-line counter on a terminal-ish writer, at most every
// 1000 items, so long runs show they are alive.
type progress struct {
	w     io.Writer
	label string
	n     int
}

func newProgress(w io.Writer, label string) *progress { return &progress{w: w, label: label} }

func (p *progress) set(n int) {
	p.n = n
	if n%1000 == 0 {
		fmt.Fprintf(p.w, "\r%s: %d", p.label, n)
	}
}

func (p *progress) done() {
	if p.n >= 1000 {
		fmt.Fprintf(p.w, "\r%s: %d\n", p.label, p.n)
	}
}
