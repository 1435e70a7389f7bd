package pricer

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/spendledger/spendledger/gen/spendledger/events/v1"
)

// FuzzPriceDecodedEvent feeds arbitrary bytes through what the service does
// with a message: decode, validate, price. Nothing may panic; a priced event
// never has a negative cost, and its components always sum to its total.
func FuzzPriceDecodedEvent(f *testing.F) {
	seed := usage("anthropic/claude-sonnet-4-5", &eventsv1.TokenCounts{Input: 1000, Output: 200, CacheRead: 10000}, nil)
	b, err := proto.Marshal(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	over := usage("bedrock/bedrock/us.anthropic.claude-sonnet-4-5", &eventsv1.TokenCounts{Input: 300000, CacheCreation_1H: 7},
		map[string]string{"input_cost_per_token": "1e-6"})
	if b, err = proto.Marshal(over); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0xff, 0x01})

	cat := newPricer(f).catalog
	f.Fuzz(func(t *testing.T, data []byte) {
		var u eventsv1.UsageRecorded
		if proto.Unmarshal(data, &u) != nil {
			return
		}
		out, err := New(cat).Price(&u, time.Unix(0, 0))
		if err != nil {
			if !IsInvalid(err) {
				t.Fatalf("error that is not an invalid-event error: %v", err)
			}
			return
		}
		if out.GetTotalNanos() < 0 {
			t.Fatalf("negative total %d", out.GetTotalNanos())
		}
		var sum int64
		for _, c := range out.GetComponents() {
			if c.GetCostNanos() < 0 {
				t.Fatalf("negative component %s: %d", c.GetName(), c.GetCostNanos())
			}
			sum += c.GetCostNanos()
		}
		if sum != out.GetTotalNanos() {
			t.Fatalf("components sum to %d, total is %d", sum, out.GetTotalNanos())
		}
	})
}
