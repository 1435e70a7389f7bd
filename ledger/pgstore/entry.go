package pgstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/scope"
)

// ErrInvalidEntry is wrapped by every error that says an event or entry can
// never be a ledger row. Retrying cannot help: the consumer dead-letters it.
var ErrInvalidEntry = errors.New("pgstore: invalid entry")

// Entry is one row of ledger_entries, field for field.
type Entry struct {
	// EventID is the event's UUID in canonical lowercase form; the table's
	// primary key, so a redelivered event is the same row.
	EventID string
	// CorrectsEventID is empty for an original entry. For a correction it
	// names the corrected entry, and the amounts below are the difference.
	CorrectsEventID string
	// OccurredAt is the admission time, in UTC, truncated to the microsecond
	// that Postgres stores. It decides the budget window.
	OccurredAt time.Time
	// RecordedAt is set by the database when the row is inserted; ignored on
	// insert.
	RecordedAt time.Time

	KeyID     string
	TeamID    string
	UserID    string
	OrgID     string
	EndUserID string
	// Tags are sorted and deduplicated, without empty tags.
	Tags []string

	ModelGroup   string
	DeploymentID string
	Provider     string
	BackendModel string

	InputTokens           int64
	OutputTokens          int64
	CacheReadTokens       int64
	CacheCreationTokens   int64
	CacheCreation1hTokens int64
	ReasoningTokens       int64

	// TotalNanos is the cost in nano-USD; for an unpriced entry it covers the
	// known components only. Negative only in a correction.
	TotalNanos int64
	// Components is the per-component breakdown; their CostNanos sum exactly
	// to TotalNanos.
	Components []Component
	// Priced is false when some component had no price anywhere; those
	// components are named in UnknownComponents (never read as free).
	Priced            bool
	UnknownComponents []string
	CatalogVersion    string
	ReservationID     string
	// RequestID is the client-facing request id of the call (UsageRecorded.request_id).
	RequestID string

	// StreamSeq is the event's sequence in the COSTS stream (0 for an entry
	// that did not come from it).
	StreamSeq uint64
	// TxID is the xid8 of the transaction that inserted the row; set by the
	// database, ignored on insert.
	TxID uint64
	// CounterKeys are the budget counters the cost lands on, as admission
	// computed them (UsageRecorded.counter_keys); re-projection after a Redis
	// outage applies the entry to exactly these.
	CounterKeys []string
}

// Component is the cost of one kind of token, as stored in the components
// json column. Prices and exact costs stay decimal strings: they are exact
// and never parsed as floats.
type Component struct {
	Name         string `json:"name"`
	Tokens       int64  `json:"tokens"`
	UnitPrice    string `json:"unit_price,omitempty"`
	Source       string `json:"source,omitempty"` // deployment_override, catalog or unknown
	SourceDetail string `json:"source_detail,omitempty"`
	ExactCost    string `json:"exact_cost,omitempty"`
	CostNanos    int64  `json:"cost_nanos"`
}

// Component sources as stored.
const (
	SourceDeploymentOverride = "deployment_override"
	SourceCatalog            = "catalog"
	SourceUnknown            = "unknown"
)

// Identity is the entry's identity for scope derivation: Identity().Scopes()
// are the scopes this entry is charged to, the same function admission uses.
func (e *Entry) Identity() scope.Identity {
	return scope.Identity{
		KeyID:        e.KeyID,
		TeamID:       e.TeamID,
		UserID:       e.UserID,
		OrgID:        e.OrgID,
		EndUserID:    e.EndUserID,
		Tags:         e.Tags,
		ModelGroup:   e.ModelGroup,
		DeploymentID: e.DeploymentID,
		Provider:     e.Provider,
		BackendModel: e.BackendModel,
	}
}

// EntryFromCost converts a CostComputed event delivered at COSTS stream
// sequence streamSeq into an entry, and validates it (see Entry.Validate).
// Errors wrap ErrInvalidEntry and name the offending field by its proto path.
func EntryFromCost(c *eventsv1.CostComputed, streamSeq uint64) (Entry, error) {
	e, err := ConvertCost(c, streamSeq)
	if err != nil {
		return Entry{}, err
	}
	if _, err := e.validate(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// ConvertCost is EntryFromCost without the final Entry.Validate: it rejects
// what the event itself gets wrong (status, missing usage or time, ids that
// disagree) but not what Validate checks on the entry. For a caller that
// hands the entry straight to Insert, which validates every entry anyway:
// the ingest path then validates once, not twice (~1 µs an entry).
func ConvertCost(c *eventsv1.CostComputed, streamSeq uint64) (Entry, error) {
	if c == nil {
		return Entry{}, fmt.Errorf("%w: CostComputed is nil", ErrInvalidEntry)
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: event %q: %s: %s", ErrInvalidEntry, c.GetEventId(), field, fmt.Sprintf(format, args...))
	}
	u := c.GetUsage()
	if u == nil {
		return Entry{}, bad("usage", "missing")
	}
	// The ledger keys the row by the cost event's id; a usage event under
	// another id would make the row unfindable from the usage side. A
	// correction carries the corrected event's usage whole (same identity,
	// window and counters), so there the usage names the corrected event.
	usageOf, usageField := c.GetEventId(), "event_id"
	if c.GetCorrectsEventId() != "" {
		usageOf, usageField = c.GetCorrectsEventId(), "corrects_event_id"
	}
	if u.GetEventId() != "" && u.GetEventId() != usageOf {
		return Entry{}, bad("usage.event_id", "%q differs from %s", u.GetEventId(), usageField)
	}
	var priced bool
	switch c.GetStatus() {
	case eventsv1.PricingStatus_PRICING_STATUS_PRICED:
		priced = true
		if len(c.GetUnknownComponents()) > 0 {
			return Entry{}, bad("status", "PRICED but unknown_components lists %q", c.GetUnknownComponents())
		}
	case eventsv1.PricingStatus_PRICING_STATUS_UNPRICED:
		if len(c.GetUnknownComponents()) == 0 {
			return Entry{}, bad("status", "UNPRICED but unknown_components is empty")
		}
	default:
		return Entry{}, bad("status", "%v is neither PRICED nor UNPRICED", c.GetStatus())
	}
	if u.GetOccurredAt() == nil {
		return Entry{}, bad("usage.occurred_at", "not set")
	}
	if err := u.GetOccurredAt().CheckValid(); err != nil {
		return Entry{}, bad("usage.occurred_at", "%v", err)
	}

	id, route, tok := u.GetIdentity(), u.GetRoute(), u.GetTokens()
	e := Entry{
		EventID:         strings.ToLower(c.GetEventId()),
		CorrectsEventID: strings.ToLower(c.GetCorrectsEventId()),
		OccurredAt:      u.GetOccurredAt().AsTime().UTC().Truncate(time.Microsecond),

		KeyID:     id.GetKeyId(),
		TeamID:    id.GetTeamId(),
		UserID:    id.GetUserId(),
		OrgID:     id.GetOrgId(),
		EndUserID: id.GetEndUserId(),
		Tags:      normalizeTags(id.GetTags()),

		ModelGroup:   route.GetModelGroup(),
		DeploymentID: route.GetDeploymentId(),
		Provider:     route.GetProvider(),
		BackendModel: route.GetBackendModel(),

		InputTokens:           tok.GetInput(),
		OutputTokens:          tok.GetOutput(),
		CacheReadTokens:       tok.GetCacheRead(),
		CacheCreationTokens:   tok.GetCacheCreation(),
		CacheCreation1hTokens: tok.GetCacheCreation_1H(),
		ReasoningTokens:       tok.GetReasoning(),

		TotalNanos:        c.GetTotalNanos(),
		Priced:            priced,
		UnknownComponents: slices.Clone(c.GetUnknownComponents()),
		CounterKeys:       slices.Clone(u.GetCounterKeys()),
		CatalogVersion:    c.GetCatalogVersion(),
		ReservationID:     u.GetReservationId(),
		RequestID:         u.GetRequestId(),
		StreamSeq:         streamSeq,
	}
	e.Components = make([]Component, 0, len(c.GetComponents()))
	for _, cc := range c.GetComponents() {
		e.Components = append(e.Components, Component{
			Name:         cc.GetName(),
			Tokens:       cc.GetTokens(),
			UnitPrice:    cc.GetUnitPrice(),
			Source:       sourceName(cc.GetSource()),
			SourceDetail: cc.GetSourceDetail(),
			ExactCost:    cc.GetExactCost(),
			CostNanos:    cc.GetCostNanos(),
		})
	}
	return e, nil
}

func sourceName(s eventsv1.PriceSource) string {
	switch s {
	case eventsv1.PriceSource_PRICE_SOURCE_DEPLOYMENT_OVERRIDE:
		return SourceDeploymentOverride
	case eventsv1.PriceSource_PRICE_SOURCE_CATALOG:
		return SourceCatalog
	case eventsv1.PriceSource_PRICE_SOURCE_UNKNOWN:
		return SourceUnknown
	}
	return ""
}

// normalizeTags makes tags a set: which tag counters an entry is charged to,
// and which tag queries find it, must not depend on order or repeats.
func normalizeTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Validate reports whether e can be inserted. Insert validates every entry
// before it sends anything, because one bad row would fail the whole batch's
// statement and the database could not say which event it was. Errors wrap
// ErrInvalidEntry and name the column.
//
// The rules: event_id (and corrects_event_id when set, which must differ) is
// a UUID; occurred_at is set; key_id, model_group and deployment_id are
// non-empty; every scope of Identity() is valid (scope.Scope.Validate: no
// empty tags, no control characters or surrounding white space, at most 256
// bytes); token counts are non-negative; an original entry's total and
// component costs are non-negative; the components' cost_nanos sum exactly to
// total_nanos; Priced is true exactly when UnknownComponents is empty; text is
// UTF-8 without NUL bytes (Postgres rejects those); stream_seq fits a bigint.
func (e *Entry) Validate() error {
	_, err := e.validate()
	return err
}

// validate returns the parsed event id, so Insert does not parse twice.
func (e *Entry) validate() ([16]byte, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: event %q: %s: %s", ErrInvalidEntry, e.EventID, field, fmt.Sprintf(format, args...))
	}
	id, err := parseUUID(e.EventID)
	if err != nil {
		return id, bad("event_id", "%v", err)
	}
	for _, k := range e.CounterKeys {
		// Projection writes to these keys: a malformed one would be a counter
		// nothing else can find.
		if err := checkCounterKey(k); err != nil {
			return id, bad("counter_keys", "%v", err)
		}
	}
	correction := e.CorrectsEventID != ""
	if correction {
		cid, err := parseUUID(e.CorrectsEventID)
		if err != nil {
			return id, bad("corrects_event_id", "%v", err)
		}
		if cid == id {
			return id, bad("corrects_event_id", "an entry cannot correct itself")
		}
	}
	if e.OccurredAt.IsZero() {
		return id, bad("occurred_at", "not set")
	}
	for _, f := range []struct{ name, v string }{
		{"key_id", e.KeyID}, {"model_group", e.ModelGroup}, {"deployment_id", e.DeploymentID},
	} {
		if f.v == "" {
			return id, bad(f.name, "empty")
		}
	}
	for _, t := range e.Tags {
		if t == "" {
			return id, bad("tags", "empty tag")
		}
	}
	// The ids become counter keys: an id that is not a valid scope name
	// could be recorded but never projected or queried consistently.
	for _, s := range e.Identity().Scopes() {
		if err := s.Validate(); err != nil {
			return id, bad(s.Kind.String(), "%v", err)
		}
	}
	for _, f := range []struct {
		name string
		v    string
	}{
		{"team_id", e.TeamID}, {"user_id", e.UserID}, {"org_id", e.OrgID}, {"end_user_id", e.EndUserID},
		{"provider", e.Provider}, {"backend_model", e.BackendModel},
		{"catalog_version", e.CatalogVersion}, {"reservation_id", e.ReservationID}, {"request_id", e.RequestID},
	} {
		if err := checkText(f.v); err != nil {
			return id, bad(f.name, "%v", err)
		}
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"input_tokens", e.InputTokens}, {"output_tokens", e.OutputTokens},
		{"cache_read_tokens", e.CacheReadTokens}, {"cache_creation_tokens", e.CacheCreationTokens},
		{"cache_creation_1h_tokens", e.CacheCreation1hTokens}, {"reasoning_tokens", e.ReasoningTokens},
	} {
		if f.v < 0 {
			return id, bad(f.name, "negative (%d)", f.v)
		}
	}
	if !correction && e.TotalNanos < 0 {
		return id, bad("total_nanos", "negative (%d) in an entry that is not a correction", e.TotalNanos)
	}
	var sum int64
	for i, c := range e.Components {
		field := func() string { return fmt.Sprintf("components[%d]", i) } // only on error: this runs per row, twice
		switch {
		case c.Name == "":
			return id, bad(field()+".name", "empty")
		case c.Tokens < 0:
			return id, bad(field()+".tokens", "negative (%d)", c.Tokens)
		case !correction && c.CostNanos < 0:
			return id, bad(field()+".cost_nanos", "negative (%d)", c.CostNanos)
		}
		for _, s := range []string{c.Name, c.UnitPrice, c.Source, c.SourceDetail, c.ExactCost} {
			if err := checkText(s); err != nil {
				return id, bad(field(), "%v", err)
			}
		}
		if (c.CostNanos > 0 && sum > math.MaxInt64-c.CostNanos) || (c.CostNanos < 0 && sum < math.MinInt64-c.CostNanos) {
			return id, bad("components", "cost_nanos overflow int64")
		}
		sum += c.CostNanos
	}
	// The breakdown is the audit trail of the total; a row whose parts do
	// not add up is a pricing bug that must surface, not be stored.
	if sum != e.TotalNanos {
		return id, bad("total_nanos", "%d but components sum to %d", e.TotalNanos, sum)
	}
	if e.Priced != (len(e.UnknownComponents) == 0) {
		if e.Priced {
			return id, bad("unknown_components", "priced entry lists unknown components %q", e.UnknownComponents)
		}
		return id, bad("unknown_components", "unpriced entry names no unknown component")
	}
	for _, u := range e.UnknownComponents {
		if u == "" {
			return id, bad("unknown_components", "empty name")
		}
		if err := checkText(u); err != nil {
			return id, bad("unknown_components", "%v", err)
		}
	}
	if e.StreamSeq > math.MaxInt64 {
		return id, bad("stream_seq", "%d does not fit a bigint", e.StreamSeq)
	}
	return id, nil
}

// checkText rejects what a UTF8 Postgres database refuses in text and jsonb.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%q contains a NUL byte", s)
	}
	return nil
}

// parseUUID accepts the canonical 8-4-4-4-12 hex form in either case. Any
// version is accepted: the gateway mints UUIDv7, but the ledger only needs
// uniqueness.
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%q is not a UUID (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s)
	}
	// Decoded in place: it runs a few times per ingested row.
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return u, fmt.Errorf("%q is not a UUID: invalid hex digit near byte %d", s, i)
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
