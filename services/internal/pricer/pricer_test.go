package pricer

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pricing"
)

func newPricer(t testing.TB) *Pricer {
	t.Helper()
	cat, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return New(cat)
}

func usage(backend string, tokens *eventsv1.TokenCounts, overrides map[string]string) *eventsv1.UsageRecorded {
	return &eventsv1.UsageRecorded{
		EventId:        "01935f6e-7a2b-7c3d-8e4f-5a6b7c8d9e0f",
		Identity:       &eventsv1.Identity{KeyId: "key-1"},
		Route:          &eventsv1.Route{ModelGroup: "sonnet", DeploymentId: "d1", Provider: "anthropic", BackendModel: backend},
		Tokens:         tokens,
		PriceOverrides: overrides,
		OccurredAt:     timestamppb.New(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)),
	}
}

// claude-sonnet-4-5: input 3e-06, output 1.5e-05, cache read 3e-07, cache write 3.75e-06.
// 1000 input = 0.003; 200 output = 0.003; 10000 cache read = 0.003; 2000 cache write = 0.0075.
// Total 0.0165 USD = 16_500_000 nano-USD.
func TestPriceAnthropicWithCacheFromTheEvent(t *testing.T) {
	p := newPricer(t)
	out, err := p.Price(usage("anthropic/claude-sonnet-4-5",
		&eventsv1.TokenCounts{Input: 1000, Output: 200, CacheRead: 10000, CacheCreation: 2000}, nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if out.GetTotalNanos() != 16_500_000 {
		t.Fatalf("total %d; want 16500000", out.GetTotalNanos())
	}
	if out.GetStatus() != eventsv1.PricingStatus_PRICING_STATUS_PRICED || out.GetResolvedEntry() != "claude-sonnet-4-5" {
		t.Fatalf("status %v entry %q", out.GetStatus(), out.GetResolvedEntry())
	}
	var sum int64
	for _, c := range out.GetComponents() {
		sum += c.GetCostNanos()
		if c.GetSource() != eventsv1.PriceSource_PRICE_SOURCE_CATALOG {
			t.Fatalf("component %s source %v; want catalog", c.GetName(), c.GetSource())
		}
	}
	if sum != out.GetTotalNanos() || len(out.GetComponents()) != 4 {
		t.Fatalf("components sum %d over %d components; want %d over 4", sum, len(out.GetComponents()), out.GetTotalNanos())
	}
	if out.GetEventId() != out.GetUsage().GetEventId() || out.GetCatalogVersion() != p.CatalogVersion() {
		t.Fatal("cost must carry the usage event's id and the catalog version")
	}
}

// The 000 scenario through the service path: an override of input/output only
// still bills cache reads at the catalog's price, and the component says so.
func TestPartialOverrideInheritsCachePrice(t *testing.T) {
	p := newPricer(t)
	out, err := p.Price(usage("bedrock/bedrock/us.anthropic.claude-sonnet-4-5",
		&eventsv1.TokenCounts{Input: 1000, CacheRead: 10000},
		map[string]string{"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// 1000 × 1e-6 + 10000 × 3e-7 = 0.001 + 0.003 = 0.004 USD.
	if out.GetTotalNanos() != 4_000_000 {
		t.Fatalf("total %d; want 4000000 (cache reads billed at the inherited price)", out.GetTotalNanos())
	}
	sources := map[string]eventsv1.PriceSource{}
	for _, c := range out.GetComponents() {
		sources[c.GetName()] = c.GetSource()
	}
	if sources["input"] != eventsv1.PriceSource_PRICE_SOURCE_DEPLOYMENT_OVERRIDE || sources["cache_read"] != eventsv1.PriceSource_PRICE_SOURCE_CATALOG {
		t.Fatalf("sources %v; want input from override, cache_read from catalog", sources)
	}
}

func TestUnknownPriceIsUnpricedNeverZero(t *testing.T) {
	p := newPricer(t)
	out, err := p.Price(usage("openai/my-private-model", &eventsv1.TokenCounts{Input: 10, Output: 5}, nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if out.GetStatus() != eventsv1.PricingStatus_PRICING_STATUS_UNPRICED {
		t.Fatalf("status %v; want UNPRICED", out.GetStatus())
	}
	if len(out.GetUnknownComponents()) != 2 {
		t.Fatalf("unknown %v; want input and output named", out.GetUnknownComponents())
	}
	for _, c := range out.GetComponents() {
		if c.GetSource() != eventsv1.PriceSource_PRICE_SOURCE_UNKNOWN || c.GetUnitPrice() != "" {
			t.Fatalf("component %s reported a price %q from %v", c.GetName(), c.GetUnitPrice(), c.GetSource())
		}
	}
}

func TestExplicitZeroOverrideIsFreeAndPriced(t *testing.T) {
	p := newPricer(t)
	out, err := p.Price(usage("openai/my-private-model", &eventsv1.TokenCounts{Input: 10, Output: 5},
		map[string]string{"input_cost_per_token": "0", "output_cost_per_token": "0"}), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if out.GetStatus() != eventsv1.PricingStatus_PRICING_STATUS_PRICED || out.GetTotalNanos() != 0 {
		t.Fatalf("status %v total %d; want PRICED 0", out.GetStatus(), out.GetTotalNanos())
	}
}

func TestInvalidEventsAreRejectedWithAReason(t *testing.T) {
	p := newPricer(t)
	good := func() *eventsv1.UsageRecorded {
		return usage("gpt-4o", &eventsv1.TokenCounts{Input: 1}, nil)
	}
	cases := map[string]func(*eventsv1.UsageRecorded){
		"event_id":    func(u *eventsv1.UsageRecorded) { u.EventId = "not-a-uuid" },
		"key_id":      func(u *eventsv1.UsageRecorded) { u.Identity.KeyId = "" },
		"model_group": func(u *eventsv1.UsageRecorded) { u.Route.ModelGroup = "" },
		"tokens":      func(u *eventsv1.UsageRecorded) { u.Tokens = nil },
		"negative":    func(u *eventsv1.UsageRecorded) { u.Tokens.Output = -1 },
		"occurred_at": func(u *eventsv1.UsageRecorded) { u.OccurredAt = nil },
		"price_overrides": func(u *eventsv1.UsageRecorded) {
			u.PriceOverrides = map[string]string{"input_cost_per_token": "cheap"}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			u := good()
			mutate(u)
			_, err := p.Price(u, time.Now())
			if !IsInvalid(err) {
				t.Fatalf("err = %v; want an invalid-event error", err)
			}
		})
	}
	if _, err := p.Price(good(), time.Now()); err != nil {
		t.Fatalf("the unmutated event must price: %v", err)
	}
}

func BenchmarkPriceEvent(b *testing.B) {
	cat, err := pricing.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	p := New(cat)
	u := usage("anthropic/claude-sonnet-4-5", &eventsv1.TokenCounts{Input: 1000, Output: 200, CacheRead: 10000}, nil)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Price(u, now); err != nil {
			b.Fatal(err)
		}
	}
}
