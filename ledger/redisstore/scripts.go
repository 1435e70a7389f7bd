package redisstore

import (
	"embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFS embed.FS

// The scripts. Each is its first line "-- spendledger:<name>" (so it can be
// told apart in SLOWLOG, SCRIPT debugging and fault-injection tests), then
// the shared helpers it uses, then its own body. Only the helpers a script
// uses are included: Redis runs the whole chunk on every call, and on the
// admission path even defining unused functions shows. redis.Script runs
// them with EVALSHA and falls back to EVAL when Redis lost its script cache.
var (
	reserveScript     = newScript("reserve", "num")
	releaseScript     = newScript("release", "num", "lease")
	applyScript       = newScript("apply", "num", "snapshot", "lease")
	applyDirectScript = newScript("apply_direct", "num", "snapshot")
	// The batch scripts (ApplyBatch, ApplyDirectBatch).
	applyBatchScript       = newScript("apply_batch", "num", "snapshot", "lease")
	applyDirectBatchScript = newScript("apply_direct_batch", "num", "snapshot")
	seedScript             = newScript("seed", "num")
	readScript             = newScript("read", "num")
)

func newScript(name string, helpers ...string) *redis.Script {
	src := ScriptHeader(name)
	for _, f := range append(append([]string{"common"}, helpers...), name) {
		b, err := luaFS.ReadFile("lua/" + f + ".lua")
		if err != nil {
			panic(fmt.Sprintf("redisstore: %v", err))
		}
		src += string(b) + "\n"
	}
	return redis.NewScript(src)
}

// ScriptHeader is the first line of the named script's source ("reserve",
// "release", "apply", "apply_direct", "apply_batch", "apply_direct_batch",
// "seed", "read"): what a go-redis hook
// sees at the start of an EVAL's script argument.
func ScriptHeader(name string) string { return "-- spendledger:" + name + "\n" }

// ---- reply decoding.

func replySlice(v any, what string) ([]any, error) {
	s, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: reply %T, want array", what, v)
	}
	return s, nil
}

func replyInt(v any, what string) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%s: reply %T, want integer", what, v)
	}
	return n, nil
}

// replyDecimal reads an amount: an integer reply below 2^53, a decimal
// string reply (exact) at or above it.
func replyDecimal(v any, what string) (int64, error) {
	if n, ok := v.(int64); ok {
		return n, nil
	}
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%s: reply %T, want integer or decimal string", what, v)
	}
	n, err := parseInt64(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}
