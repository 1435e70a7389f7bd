package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spendledger/spendledger/ledger/redisstore"
	"github.com/spendledger/spendledger/services/internal/envflag"
	"github.com/spendledger/spendledger/services/internal/stores"
	"github.com/spendledger/spendledger/services/ledger/internal/verify"
)

// cmdFunc is one subcommand: it parses its own flags from args.
type cmdFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// commands are the ledger binary's subcommands; with none it runs the service.
// "help" is added in init: it looks commands up, which a composite literal
// referring to it cannot do (initialization cycle).
var commands = map[string]cmdFunc{
	"verify":  runVerify,
	"replay":  runReplay,
	"reprice": runReprice,
}

func init() { commands["help"] = runHelp }

const usage = `usage: ledger [flags]                 run the ledger service (ledger -help lists its flags)
       ledger <command> [flags]       run one operator command and exit

commands:
  verify                check every live Redis counter against the ledger
  replay projections    rebuild every Redis counter from the ledger (Postgres)
  replay ledger         rebuild the ledger (Postgres) from the COSTS stream
  reprice               re-price USAGE since a time with a catalog; write corrections
  help [command]        this text, or a command's (same as ledger <command> -help)

The ledger (Postgres table ledger_entries) is the truth: append-only, one row
per priced event, corrections as new rows. The Redis counters that admission
reads are a projection of it, and the JetStream streams (USAGE, COSTS) are
the record both were built from. Each command rebuilds or checks one of
these from the one before it:

  USAGE --reprice--> COSTS --replay ledger--> Postgres --replay projections--> Redis
                                                     <------- verify -------->

Every command takes its stores from flags or the environment, like the
service: -database-url (DATABASE_URL), -redis-url (REDIS_URL), -nats-url
(NATS_URL). Results go to stdout; progress lines and warnings to stderr.
Exit status 0 means done and consistent; 1 means an error, or (verify)
differences, or (reprice) corrections not yet in the ledger.
`

// runHelp prints the overview, or one command's help.
func runHelp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("help: no command %q", args[0])
	}
	return cmd(ctx, append(args[1:len(args):len(args)], "-help"), getenv, stdout, stderr)
}

// flagSet is an envflag.Set whose -help prints a command's own text: what it
// does, when to run it and what it changes, then its flags.
type flagSet struct {
	*envflag.Set
	name, help string
	out        *switchWriter
	stdout     io.Writer
}

// switchWriter lets -help capture the flag defaults that envflag prints to
// the writer it was created with.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

func newFlagSet(name, help string, stdout, stderr io.Writer) *flagSet {
	out := &switchWriter{w: stderr}
	return &flagSet{Set: envflag.New(name, out), name: name, help: help, out: out, stdout: stdout}
}

// parse parses args. It returns helped=true after printing the help for
// -h/-help (the caller then returns nil: asking for help is not a failure).
func (f *flagSet) parse(args []string, getenv func(string) string) (helped bool, err error) {
	if !wantsHelp(args) {
		return false, f.Set.Parse(args, getenv)
	}
	var defaults bytes.Buffer
	f.out.w = &defaults
	err = f.Set.Parse([]string{"-help"}, getenv)
	f.out.w = f.stdout
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return true, err
	}
	// Drop flag's own "Usage of <name>:" line; the help text names the command.
	_, list, _ := strings.Cut(defaults.String(), "\n")
	fmt.Fprintf(f.stdout, "%s\nflags (each also read from the environment variable named):\n%s", f.help, list)
	return true, nil
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}

const verifyHelp = `usage: ledger verify [flags]

Checks every live Redis counter against the ledger: its spent must equal the
ledger's sum for its scope and window, and its reserved total the sum of the
reservations it holds. Prints every counter that differs.

Exits 0 when all agree, 1 after printing the differences. Run it at
quiescence: an event in flight between its Postgres commit and its projection
shows up as a difference. Writes nothing.
`

func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ledger verify", verifyHelp, stdout, stderr)
	dbURL := stores.DatabaseURLFlag(fs.Set)
	redisURL := stores.RedisURLFlag(fs.Set)
	if helped, err := fs.parse(args, getenv); helped || err != nil {
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

	bar := newProgress(stderr, "verify", 0)
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

// postgresPool opens a pool sized for conns concurrent queries: the shared
// stores.Postgres pool is sized for the service (pgxpool's default, 4 on
// this machine), which would serialize a command's workers.
func postgresPool(ctx context.Context, url string, conns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	cfg.MaxConns = int32(max(conns, 4))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	return pool, nil
}
