package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
	"github.com/spendledger/spendledger/ledger/pgstore"
	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/internal/pricer"
)

func TestFormatUSD(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "$0.000000000",
		1:             "+$0.000000001",
		-1:            "-$0.000000001",
		1_250_000_000: "+$1.250000000",
		-999_999_999:  "-$0.999999999",
		math.MaxInt64: "+$9223372036.854775807",
		math.MinInt64: "-$9223372036.854775808",
	} {
		if got := formatUSD(n); got != want {
			t.Errorf("formatUSD(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCorrectionIDIsDeterministic(t *testing.T) {
	orig := "0190a0b0-c0d0-7000-8000-000000000001"
	a := correctionID(orig, "v2", 100)
	if a != correctionID(strings.ToUpper(orig), "v2", 100) {
		t.Error("the id must not depend on the case of the original id")
	}
	if _, err := uuid.Parse(a); err != nil || a == orig {
		t.Errorf("correction id %q: not a fresh UUID (%v)", a, err)
	}
	for _, other := range []string{correctionID(orig, "v3", 100), correctionID(orig, "v2", 90)} {
		if other == a {
			t.Errorf("another catalog version or current cost must give another id")
		}
	}
}

// gpt4oUsage is a gpt-4o call with cached input, as the gateway records it.
func gpt4oUsage() *eventsv1.UsageRecorded {
	id := "0190a0b0-c0d0-7000-8000-00000000000a"
	return &eventsv1.UsageRecorded{
		EventId:       id,
		Identity:      &eventsv1.Identity{KeyId: "k1", TeamId: "t1"},
		Route:         &eventsv1.Route{ModelGroup: "gpt-4o", DeploymentId: "d1", Provider: "openai", BackendModel: "gpt-4o"},
		Tokens:        &eventsv1.TokenCounts{Input: 1000, CacheRead: 3000, Output: 100},
		OccurredAt:    timestamppb.New(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)),
		ReservationId: "r1",
		ReservedNanos: 5_000_000,
		CounterKeys:   []string{scope.CounterKey(scope.Scope{Kind: scope.KindKey, ID: "k1"}, window.LifetimeSpec(), 0)},
	}
}

func price(t *testing.T, catalogJSON string, u *eventsv1.UsageRecorded) (*eventsv1.CostComputed, string) {
	t.Helper()
	cat, err := pricing.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if catalogJSON != "" {
		o, err := pricing.ParseCatalog([]byte(catalogJSON))
		if err != nil {
			t.Fatal(err)
		}
		cat = cat.Merge(o)
	}
	c, err := pricer.New(cat).Price(u, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c, cat.Version()
}

func components(c *eventsv1.CostComputed) map[string]int64 {
	m := map[string]int64{}
	for _, x := range c.GetComponents() {
		m[x.GetName()] += x.GetCostNanos()
	}
	return m
}

// A cheaper cache price gives a negative correction on the cache_read
// component only, carrying the original's usage without its reservation, and
// the ledger accepts it as a correction of the original.
func TestBuildCorrection(t *testing.T) {
	u := gpt4oUsage()
	orig, _ := price(t, "", u)
	// gpt-4o: input 2.5e-6, cache read 1.25e-6, output 1e-5 per token.
	if orig.GetTotalNanos() != 1000*2500+3000*1250+100*10000 {
		t.Fatalf("original total %d: the built-in gpt-4o prices changed; update the test", orig.GetTotalNanos())
	}
	newer, version := price(t, `{"gpt-4o": {"litellm_provider": "openai", "mode": "chat",
		"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 2.5e-07}}`, u)

	corr, delta, err := buildCorrection(u, newer, orig.GetTotalNanos(), components(orig), version, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := int64(3000 * (250 - 1250))
	if delta != want || corr.GetTotalNanos() != want {
		t.Fatalf("delta %d, total %d; want %d", delta, corr.GetTotalNanos(), want)
	}
	if len(corr.GetComponents()) != 1 || corr.GetComponents()[0].GetName() != "cache_read" ||
		corr.GetComponents()[0].GetCostNanos() != want || corr.GetComponents()[0].GetTokens() != 3000 {
		t.Fatalf("components %v: want one cache_read component of %d", corr.GetComponents(), want)
	}
	if corr.GetCorrectsEventId() != u.GetEventId() || corr.GetEventId() != correctionID(u.GetEventId(), version, orig.GetTotalNanos()) {
		t.Fatalf("ids: event %s corrects %s", corr.GetEventId(), corr.GetCorrectsEventId())
	}
	if corr.GetUsage().GetReservationId() != "" || corr.GetUsage().GetReservedNanos() != 0 {
		t.Error("a correction must settle no reservation")
	}
	if u.GetReservationId() != "r1" {
		t.Error("buildCorrection changed the usage it was given")
	}

	e, err := pgstore.EntryFromCost(corr, 7)
	if err != nil {
		t.Fatalf("the ledger rejects the correction: %v", err)
	}
	if e.CorrectsEventID != u.GetEventId() || e.TotalNanos != want || e.ReservationID != "" ||
		len(e.CounterKeys) != 1 || !e.OccurredAt.Equal(u.GetOccurredAt().AsTime()) {
		t.Fatalf("entry %+v", e)
	}

	// Against the corrected ledger the same new price changes nothing.
	after := components(orig)
	after["cache_read"] += want
	again, d, err := buildCorrection(u, newer, orig.GetTotalNanos()+want, after, version, time.Now())
	if err != nil || again != nil || d != 0 {
		t.Fatalf("second correction %v, %d, %v: want none", again, d, err)
	}
	// Back to the original price: a positive correction with another id.
	back, d, err := buildCorrection(u, orig, orig.GetTotalNanos()+want, after, orig.GetCatalogVersion(), time.Now())
	if err != nil || d != -want || back.GetEventId() == corr.GetEventId() {
		t.Fatalf("correction back: %v, %d, %v", back, d, err)
	}
}

func TestBuildCorrectionRefusesInconsistentLedger(t *testing.T) {
	u := gpt4oUsage()
	orig, _ := price(t, "", u)
	c := components(orig)
	c["input"]++
	if _, _, err := buildCorrection(u, orig, orig.GetTotalNanos()-1, c, "v", time.Now()); err == nil {
		t.Fatal("want an error when the ledger's components do not sum to its total")
	}
}

func TestEntryFromCostChecksCorrectionUsage(t *testing.T) {
	u := gpt4oUsage()
	orig, version := price(t, "", u)
	corr, _, err := buildCorrection(u, orig, 1, map[string]int64{"input": 1}, version, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	corr.CorrectsEventId = "0190a0b0-c0d0-7000-8000-0000000000ff" // not the usage's event
	if _, err := pgstore.EntryFromCost(corr, 1); err == nil {
		t.Fatal("a correction whose usage is another event's must be rejected")
	}
}

func TestWriteRepriceReport(t *testing.T) {
	r := repriceReport{
		Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), CatalogVersion: "abc", CatalogFile: "prices.json",
		Read: 5, Unchanged: 1, NotInLedger: 1,
	}
	for _, c := range []struct {
		group string
		delta int64
	}{{"gpt-4o", -3_000_000}, {"gpt-4o", -1}, {"claude", 2_500_000_000}} {
		if err := r.addCorrection(c.group, c.delta); err != nil {
			t.Fatal(err)
		}
	}
	r.group("gpt-4o").Read++ // the unchanged one
	var buf bytes.Buffer
	writeRepriceReport(&buf, &r)
	want := `reprice of USAGE since 2026-11-01T00:00:00Z with catalog abc (prices.json)
events read                         5
  unchanged                         1
  corrected                         3
  not in the ledger                 1   (not priced or ingested yet, or dead-lettered: run again later)
total difference                     +$2.496999999   (2496999999 nano-USD)

model group     compared    corrected                difference
claude                 1            1             +$2.500000000
gpt-4o                 3            2             -$0.003000001
`
	if buf.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", buf.String(), want)
	}
	if err := r.addCorrection("x", math.MaxInt64); err == nil {
		t.Error("want an overflow error, not a wrapped total")
	}
}

func TestWantsHelp(t *testing.T) {
	for args, want := range map[string]bool{
		"-help": true, "-since x -h": true, "--help": true, "-since x": false, "-- -help": false, "": false,
	} {
		if got := wantsHelp(strings.Fields(args)); got != want {
			t.Errorf("wantsHelp(%q) = %v, want %v", args, got, want)
		}
	}
}

// Every command teaches: -help and "help <command>" print its text and
// flags to stdout and succeed.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"help"}, {"help", "verify"}, {"help", "replay"}, {"help", "replay", "projections"},
		{"replay", "ledger", "-help"}, {"reprice", "-h"},
	} {
		var out, errOut bytes.Buffer
		if err := commands[args[0]](t.Context(), args[1:], func(string) string { return "" }, &out, &errOut); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if !strings.HasPrefix(out.String(), "usage: ledger") || errOut.Len() != 0 {
			t.Errorf("%v: stdout %q, stderr %q", args, out.String(), errOut.String())
		}
	}
	var out bytes.Buffer
	if err := commands["reprice"](t.Context(), []string{"-help"}, func(string) string { return "" }, &out, &out); err != nil ||
		!strings.Contains(out.String(), "-catalog-file") || !strings.Contains(out.String(), "-since") {
		t.Errorf("reprice -help lists no flags: %q", out.String())
	}
}
