package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors. Store methods wrap them with a message naming the thing
// (e.g. `team "t1" does not exist`), so the API can answer with the right code
// and a sentence the operator can act on.
var (
	// ErrNotFound: the key, principal or budget addressed does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a unique id, hash, alias or (scope, duration) is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition: a referenced team, org or key does not exist, or
	// a principal to delete is still referenced.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrInvalid: input the API should have rejected reached the store (a
	// check constraint fired); it is a caller error, not a store fault.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable: Postgres could not be reached or is shutting down.
	ErrUnavailable = errors.New("store unavailable")
)

// Postgres error codes the store maps.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgCheckViolation      = "23514"
	pgNotNullViolation    = "23502"
)

// constraintMessages name what a unique or foreign key constraint protects, so
// an error says "key alias is taken" instead of quoting an index name.
var constraintMessages = map[string]string{
	"virtual_keys_pkey":            "key_id is taken",
	"virtual_keys_key_hash_key":    "a key with this clear key already exists",
	"virtual_keys_alias_key":       "key_alias is taken",
	"principals_pkey":              "principal already exists",
	"budgets_pkey":                 "budget_id is taken",
	"budgets_scope_duration_key":   "a budget with this scope and duration already exists",
	"virtual_keys_team_fkey":       "team does not exist",
	"virtual_keys_user_fkey":       "user does not exist",
	"virtual_keys_org_fkey":        "org does not exist",
	"principals_org_fkey":          "org does not exist",
	"budgets_owner_key_fkey":       "the budget's key does not exist",
	"budgets_owner_principal_fkey": "the budget's principal does not exist",
}

// classify wraps err with the sentinel that says what kind of failure it is,
// keeping err in the chain for logs. what names the operation.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if isSentinel(err) {
		// Classified where it happened, with a better message than ours.
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := constraintMessages[pe.ConstraintName]
		if msg == "" {
			msg = pe.Message
		}
		switch {
		case pe.Code == pgUniqueViolation:
			return fmt.Errorf("%s: %s: %w", what, msg, ErrAlreadyExists)
		case pe.Code == pgForeignKeyViolation:
			if v := missingRef(pe.Detail); v != "" {
				msg = fmt.Sprintf("%s (%s)", msg, v)
			}
			return fmt.Errorf("%s: %s: %w", what, msg, ErrFailedPrecondition)
		case pe.Code == pgCheckViolation || pe.Code == pgNotNullViolation:
			return fmt.Errorf("%s: %s (%s): %w", what, pe.Message, pe.ConstraintName, ErrInvalid)
		case len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code[:2] == "53" || pe.Code[:2] == "57"):
			// Connection exceptions, insufficient resources, operator
			// intervention (shutdown, too many connections).
			return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if unreachable(err) {
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// refDetail matches Postgres' foreign key detail, e.g.
// `Key (team_ref_kind, team_ref)=(team, t-typo) is not present in table "principals".`
var refDetail = regexp.MustCompile(`^Key \(.*\)=\((.*)\) is not present in table`)

// missingRef returns the missing id from a foreign key violation's detail
// ("t-typo"), so the message names what the caller mistyped.
func missingRef(detail string) string {
	m := refDetail.FindStringSubmatch(detail)
	if m == nil {
		return ""
	}
	v := m[1]
	// Composite references are (kind, id); kinds never contain ", ".
	if _, id, ok := strings.Cut(v, ", "); ok {
		v = id
	}
	return strconv.Quote(v)
}

// unreachable reports errors that mean Postgres could not be talked to, as
// opposed to a bug in a query.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
