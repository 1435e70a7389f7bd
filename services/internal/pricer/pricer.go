// Package pricer turns a UsageRecorded event into its CostComputed event.
//
// Pricing is a pure function of the event and the catalog: everything it needs
// (token counts, the deployment's price overrides as they were at request time)
// travels in the event, so pricing the same event again, now or in a replay,
// gives the same cost. An event that cannot be priced deterministically (bad id,
// negative tokens, unreadable override) is rejected with a reason for the
// dead-letter stream; an event whose price is unknown is not rejected: it is
// priced UNPRICED and flagged, never billed as zero.
//
// It lives in services/internal, not in the pricing service, because two
// services price: pricing (every event, live) and the ledger's `reprice`
// command (past events, through a new catalog, to write corrections). One
// function means a correction is exactly the difference between what the
// pricing service would charge under each catalog.
package pricer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pricing"
)

// Pricer prices events against one catalog. It is safe for concurrent use.
type Pricer struct {
	catalog  *pricing.Catalog
	resolver *pricing.Resolver
}

// New returns a Pricer for catalog.
func New(catalog *pricing.Catalog) *Pricer {
	return &Pricer{catalog: catalog, resolver: pricing.NewResolver(catalog)}
}

// CatalogVersion is the version every CostComputed of this Pricer carries.
func (p *Pricer) CatalogVersion() string { return p.catalog.Version() }

// InvalidEventError says why an event cannot be priced. Such events go to the
// dead-letter stream; retrying them cannot help.
type InvalidEventError struct{ Reason string }

func (e *InvalidEventError) Error() string { return "invalid UsageRecorded: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidEventError{Reason: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err means the event itself is bad.
func IsInvalid(err error) bool {
	var ie *InvalidEventError
	return errors.As(err, &ie)
}

// Price prices one event. pricedAt stamps the result.
func (p *Pricer) Price(u *eventsv1.UsageRecorded, pricedAt time.Time) (*eventsv1.CostComputed, error) {
	if err := Validate(u); err != nil {
		return nil, err
	}
	res, err := p.resolve(u)
	if err != nil {
		return nil, err
	}
	t := u.GetTokens()
	cost, err := res.Cost(pricing.Usage{
		Input:           t.GetInput(),
		CacheRead:       t.GetCacheRead(),
		CacheCreation:   t.GetCacheCreation(),
		CacheCreation1h: t.GetCacheCreation_1H(),
		Output:          t.GetOutput(),
		Reasoning:       t.GetReasoning(),
	})
	if err != nil {
		return nil, invalid("%v", err)
	}
	out := &eventsv1.CostComputed{
		EventId:           u.GetEventId(),
		Usage:             u,
		TotalNanos:        int64(cost.Total),
		Status:            eventsv1.PricingStatus_PRICING_STATUS_PRICED,
		UnknownComponents: cost.Unknown,
		CatalogVersion:    p.catalog.Version(),
		ResolvedEntry:     res.Entry,
		PricedAt:          timestamppb.New(pricedAt),
	}
	if cost.Status == pricing.StatusUnpriced {
		out.Status = eventsv1.PricingStatus_PRICING_STATUS_UNPRICED
	}
	for _, c := range cost.Components {
		if c.Tokens == 0 {
			continue
		}
		out.Components = append(out.Components, component(c))
	}
	return out, nil
}

func component(c pricing.Component) *eventsv1.CostComponent {
	out := &eventsv1.CostComponent{
		Name:         c.Name,
		Tokens:       c.Tokens,
		UnitPrice:    c.UnitPrice,
		ExactCost:    c.Exact(),
		CostNanos:    int64(c.Nanos),
		SourceDetail: c.Field,
	}
	switch {
	case !c.Known:
		out.Source = eventsv1.PriceSource_PRICE_SOURCE_UNKNOWN
	case c.Rule == pricing.RuleOverride:
		out.Source = eventsv1.PriceSource_PRICE_SOURCE_DEPLOYMENT_OVERRIDE
	case strings.HasPrefix(c.Rule, pricing.RuleCatalogPrefix):
		out.Source = eventsv1.PriceSource_PRICE_SOURCE_CATALOG
		out.SourceDetail = strings.TrimPrefix(c.Rule, pricing.RuleCatalogPrefix) + " " + c.Field
	}
	return out
}

// resolve returns the event's deployment resolved against the catalog.
func (p *Pricer) resolve(u *eventsv1.UsageRecorded) (pricing.Resolution, error) {
	r := u.GetRoute()
	res, err := p.resolver.Resolve(r.GetProvider(), r.GetBackendModel(), r.GetBaseModel(), u.GetPriceOverrides())
	if err != nil {
		return pricing.Resolution{}, invalid("%v", err)
	}
	return res, nil
}

// Validate checks what pricing and the ledger rely on.
func Validate(u *eventsv1.UsageRecorded) error {
	if u == nil {
		return invalid("empty event")
	}
	if _, err := uuid.Parse(u.GetEventId()); err != nil {
		return invalid("event_id %q is not a UUID", u.GetEventId())
	}
	if u.GetIdentity().GetKeyId() == "" {
		return invalid("identity.key_id is empty")
	}
	r := u.GetRoute()
	for _, f := range []struct{ name, value string }{
		{"route.model_group", r.GetModelGroup()},
		{"route.deployment_id", r.GetDeploymentId()},
		{"route.provider", r.GetProvider()},
		{"route.backend_model", r.GetBackendModel()},
	} {
		if f.value == "" {
			return invalid("%s is empty", f.name)
		}
	}
	if u.GetTokens() == nil {
		return invalid("tokens are missing")
	}
	if !u.GetOccurredAt().IsValid() {
		return invalid("occurred_at is missing or invalid")
	}
	if u.GetReservedNanos() < 0 {
		return invalid("reserved_nanos is negative")
	}
	return nil
}
