package api

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/spendledger/spendledger/gen/spendledger/budget/v1"
	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/budget/internal/store"
	"github.com/spendledger/spendledger/services/internal/protoconv"
)

// Bounds on what one request may store. They are generous for real use and
// keep one call from writing unbounded rows or cache entries.
const (
	maxAliasLen       = 256
	maxMetadata       = 64
	maxMetadataKeyLen = 128
	maxMetadataValLen = 4096
	maxModels         = 256
	maxTags           = 64
	maxThresholds     = 10
	maxBudgetsPerCall = 64
	minClearKeyLen    = 16
	maxClearKeyLen    = 256
	defaultPageSize   = 100
	maxPageSize       = 1000
)

// checkID validates an id that becomes (part of) a scope of kind k: every id
// here ends up in counter keys, so it obeys scope.Validate's naming rules.
func checkID(field string, k scope.Kind, id string) error {
	s := scope.Scope{Kind: k, ID: id}
	if k.PerModel() {
		s.ModelGroup = "m"
	}
	if id == "" {
		return invalid(field, "is required")
	}
	if err := s.Validate(); err != nil {
		return invalid(field, "%q is not a valid id: %v", id, err)
	}
	return nil
}

// checkOptionalID is checkID where "" means "none".
func checkOptionalID(field string, k scope.Kind, id string) error {
	if id == "" {
		return nil
	}
	return checkID(field, k, id)
}

func checkModelGroup(field, m string) error {
	if err := (scope.Scope{Kind: scope.KindKeyModel, ID: "k", ModelGroup: m}).Validate(); err != nil {
		return invalid(field, "%q is not a valid model group: %v", m, err)
	}
	return nil
}

// checkLine: free text (aliases, ids the service minted), but one line of it.
func checkLine(field, a string) error {
	if len(a) > maxAliasLen {
		return invalid(field, "longer than %d bytes", maxAliasLen)
	}
	if !utf8.ValidString(a) || strings.IndexFunc(a, unicode.IsControl) >= 0 {
		return invalid(field, "must be valid UTF-8 without control characters")
	}
	return nil
}

func checkMetadata(field string, m map[string]string) error {
	if len(m) > maxMetadata {
		return invalid(field, "has %d entries; at most %d", len(m), maxMetadata)
	}
	for k, v := range m {
		switch {
		case k == "" || len(k) > maxMetadataKeyLen:
			return invalid(field, "key %q must be 1 to %d bytes", k, maxMetadataKeyLen)
		case len(v) > maxMetadataValLen:
			return invalid(field+"["+k+"]", "longer than %d bytes", maxMetadataValLen)
		}
	}
	return nil
}

// normModels validates model groups and drops repeats, keeping the caller's
// order (it is how the operator wrote the allow-list).
func normModels(field string, models []string) ([]string, error) {
	if len(models) > maxModels {
		return nil, invalid(field, "has %d entries; at most %d", len(models), maxModels)
	}
	out := make([]string, 0, len(models))
	for i, m := range models {
		if err := checkModelGroup(fmt.Sprintf("%s[%d]", field, i), m); err != nil {
			return nil, err
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// normTags validates tags and returns them as a set: sorted, deduplicated,
// as scope.Identity treats them.
func normTags(field string, tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, invalid(field, "has %d entries; at most %d", len(tags), maxTags)
	}
	for i, t := range tags {
		if err := checkID(fmt.Sprintf("%s[%d]", field, i), scope.KindTag, t); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkTimestamp converts an optional timestamp; nil is the zero time.
func checkTimestamp(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, invalid(field, "%v", err)
	}
	return ts.AsTime(), nil
}

// checkKeyHash accepts hex SHA-256 in either case and returns it lower case,
// as stored.
func checkKeyHash(h string) (string, error) {
	h = strings.ToLower(h)
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", invalid("key_hash", "want the hex SHA-256 of the clear key (64 hex digits)")
	}
	return h, nil
}

// checkClearKey: a caller-chosen key must look like a LiteLLM key ("sk-")
// and be long enough not to be guessed; it is printable ASCII so the hash the
// gateway computes from the Authorization header is the hash stored.
func checkClearKey(k string) error {
	switch {
	case !strings.HasPrefix(k, "sk-"):
		return invalid("clear_key", `must start with "sk-"`)
	case len(k) < minClearKeyLen || len(k) > maxClearKeyLen:
		return invalid("clear_key", "must be %d to %d characters", minClearKeyLen, maxClearKeyLen)
	case strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		return invalid("clear_key", "must be printable ASCII without spaces")
	}
	return nil
}

// pageSize applies the default and the cap.
func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, invalid("page_size", "must not be negative")
	case n == 0:
		return defaultPageSize, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return int(n), nil
}

// scopeFixer resolves the scope of a budget given inside CreateKey or
// CreatePrincipal, where the owner may not have an id the caller knows yet.
type scopeFixer func(field string, s *eventsv1.Scope) (scope.Scope, error)

// parseBudgetSpec validates one budget spec. fix, when not nil, resolves its
// scope instead of protoconv.Scope.
func parseBudgetSpec(field string, spec *budgetv1.BudgetSpec, fix scopeFixer) (store.BudgetInput, error) {
	if spec == nil {
		return store.BudgetInput{}, invalid(field, "is required")
	}
	var in store.BudgetInput
	var err error
	if fix != nil {
		in.Scope, err = fix(field+".scope", spec.GetScope())
	} else if in.Scope, err = protoconv.Scope(spec.GetScope()); err != nil {
		err = invalid(field+".scope", "%v", err)
	}
	if err != nil {
		return store.BudgetInput{}, err
	}
	if in.ID = spec.GetBudgetId(); in.ID != "" {
		if err := checkLine(field+".budget_id", in.ID); err != nil {
			return store.BudgetInput{}, err
		}
	}
	if spec.GetLimitUsd() == "" {
		return store.BudgetInput{}, invalid(field+".limit_usd", `is required (decimal dollars, e.g. "50" or "0.25")`)
	}
	if in.Limit, err = money.ParseLimit(spec.GetLimitUsd()); err != nil {
		return store.BudgetInput{}, invalid(field+".limit_usd", "%v", err)
	}
	in.Duration = window.Lifetime
	if d := spec.GetDuration(); d != "" {
		if in.Duration, err = window.Parse(d); err != nil {
			return store.BudgetInput{}, invalid(field+".duration", "%v", err)
		}
	}
	// Lifetime windows have no alignment; one spelling for one budget.
	in.Calendar = spec.GetCalendarAligned() && !in.Duration.IsLifetime()
	if in.SoftThresholds, err = parseThresholds(field+".soft_thresholds", spec.GetSoftThresholds()); err != nil {
		return store.BudgetInput{}, err
	}
	return in, nil
}

// parseThresholds validates fractions in (0, 1] exactly and returns them in
// canonical text ("0.80" -> "0.8"), ascending, without repeats.
func parseThresholds(field string, ts []string) ([]string, error) {
	if len(ts) > maxThresholds {
		return nil, invalid(field, "has %d entries; at most %d", len(ts), maxThresholds)
	}
	one := big.NewRat(1, 1)
	rats := make([]*big.Rat, 0, len(ts))
	for i, t := range ts {
		r, err := money.ParseDecimal(t)
		if err != nil {
			return nil, invalid(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
		if r.Sign() <= 0 || r.Cmp(one) > 0 {
			return nil, invalid(fmt.Sprintf("%s[%d]", field, i), "%q is not a fraction in (0, 1]", t)
		}
		rats = append(rats, r)
	}
	slices.SortFunc(rats, func(a, b *big.Rat) int { return a.Cmp(b) })
	rats = slices.CompactFunc(rats, func(a, b *big.Rat) bool { return a.Cmp(b) == 0 })
	out := make([]string, len(rats))
	for i, r := range rats {
		s, err := money.FormatDecimal(r)
		if err != nil {
			return nil, invalid(field, "%v", err)
		}
		out[i] = s
	}
	return out, nil
}

// parseOwnedBudgets validates the budgets given with a new key or principal
// and rejects two on the same scope and duration, which would silently
// collapse into one.
func parseOwnedBudgets(specs []*budgetv1.BudgetSpec, fix scopeFixer) ([]store.BudgetInput, error) {
	if len(specs) > maxBudgetsPerCall {
		return nil, invalid("budgets", "has %d entries; at most %d", len(specs), maxBudgetsPerCall)
	}
	type slot struct {
		s scope.Scope
		d window.Duration
	}
	seen := map[slot]int{}
	out := make([]store.BudgetInput, 0, len(specs))
	for i, spec := range specs {
		field := fmt.Sprintf("budgets[%d]", i)
		in, err := parseBudgetSpec(field, spec, fix)
		if err != nil {
			return nil, err
		}
		if in.ID != "" {
			return nil, invalid(field+".budget_id", "must be empty: the service assigns ids to new budgets")
		}
		if j, dup := seen[slot{in.Scope, in.Duration}]; dup {
			return nil, invalid(field, "same scope and duration as budgets[%d]", j)
		}
		seen[slot{in.Scope, in.Duration}] = i
		out = append(out, in)
	}
	return out, nil
}

// ownedScopeFixer accepts, for a new owner with id, a scope that is absent
// (the owner's own), or of one of the allowed kinds with the owner's id or
// none. allowed[0] is the owner's own kind.
func ownedScopeFixer(id string, allowed ...scope.Kind) scopeFixer {
	return func(field string, p *eventsv1.Scope) (scope.Scope, error) {
		if p == nil {
			return scope.Scope{Kind: allowed[0], ID: id}, nil
		}
		fixed := &eventsv1.Scope{Kind: p.GetKind(), Id: cmp.Or(p.GetId(), id), ModelGroup: p.GetModelGroup()}
		s, err := protoconv.Scope(fixed)
		if err != nil {
			return scope.Scope{}, invalid(field, "%v", err)
		}
		if !slices.Contains(allowed, s.Kind) || s.ID != id {
			names := make([]string, len(allowed))
			for i, k := range allowed {
				names[i] = k.String()
			}
			return scope.Scope{}, invalid(field, "a budget created here must be on %s %q (got %v)",
				strings.Join(names, " or "), id, s)
		}
		return s, nil
	}
}
