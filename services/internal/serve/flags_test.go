package serve

import (
	"io"
	"runtime/debug"
	"testing"

	"github.com/spendledger/spendledger/services/internal/envflag"
)

// -gc-percent sets the GC target, unless GOGC (the runtime's own) is set.
func TestGCPercentFlag(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tc := range []struct {
		gogc string
		want int
	}{{"", 250}, {"50", 100}} {
		fs := envflag.New("test", io.Discard)
		apply := GCPercentFlag(fs, "TEST_GC_PERCENT")
		getenv := func(k string) string {
			if k == "GOGC" {
				return tc.gogc
			}
			return ""
		}
		if err := fs.Parse([]string{"-gc-percent", "250"}, getenv); err != nil {
			t.Fatal(err)
		}
		debug.SetGCPercent(100)
		apply(getenv)
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("GOGC=%q: GC target %d, want %d", tc.gogc, got, tc.want)
		}
	}
}
