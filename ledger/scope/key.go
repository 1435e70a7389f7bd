package scope

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spendledger/spendledger/ledger/window"
)

// CounterPrefix starts every counter key, so `SCAN MATCH sl:c:*` finds them
// all and nothing else.
const CounterPrefix = "sl:c:"

// ErrInvalidKey is wrapped by every ParseCounterKey error.
var ErrInvalidKey = errors.New("scope: invalid counter key")

// calendarAnchor stands in the anchor position for calendar-aligned windows,
// whose anchor is implied.
const calendarAnchor = "cal"

// CounterKey is the only place a counter key is spelled. Admission reads and
// reserves on it; projection increments it; verify and reseed map it back
// with ParseCounterKey. Its format is
//
//	sl:c:{<kind>:<id>[:<model group>]}:<duration>:<anchor>:<index>
//
//	sl:c:{key_model:sk-1:claude-opus-4-6}:1d:cal:20522
//	sl:c:{team:t%3Aeu}:1mo:1769853600:3
//
// Why it looks like this:
//
//   - The braces are a Redis Cluster hash tag: the slot is computed from the
//     scope alone, so every window of every budget on one scope lives in one
//     slot, and an admission can check and reserve all of a scope's budgets
//     in a single script. (One request's different scopes may still land in
//     different slots; admission handles that slot by slot, see DESIGN.md.)
//   - The model group segment is present for the per-model kinds, and for any
//     other scope that (invalidly) carries one, so even unvalidated scopes
//     cannot share a key.
//   - The window part is the canonical duration ("24h" and "1d" are the same
//     window and the same key), the anchor in Unix seconds or "cal", and the
//     index. Two budgets on one scope share a counter only if their windows
//     are identical, which is exactly when sharing is right.
//   - ID and model group are percent-encoded (uppercase hex) for every byte
//     outside printable ASCII and for % : { } * ? [ ] \. That makes the key
//     injective — a segment cannot contain its separator or close the hash
//     tag — and keeps glob characters out, so a key prefix can be used in
//     SCAN MATCH as is. Ordinary IDs and model names stay readable.
//
// CounterKey does not validate (validate scopes and specs where they enter);
// for any input it is deterministic and distinct inputs give distinct keys.
// It makes one allocation for keys up to 192 bytes. Changing the format
// orphans every live counter.
func CounterKey(s Scope, w window.Spec, index int64) string {
	// Built on the stack and copied once into the result string: typical keys
	// are under 100 bytes, so the conversion is the only allocation. Longer
	// keys (long, heavily escaped IDs) spill to the heap and still work.
	var buf [192]byte
	b := append(buf[:0], CounterPrefix...)
	b = append(b, '{')
	b = append(b, s.Kind.String()...)
	b = append(b, ':')
	b = appendEscaped(b, s.ID)
	if s.Kind.PerModel() || s.ModelGroup != "" {
		b = append(b, ':')
		b = appendEscaped(b, s.ModelGroup)
	}
	b = append(b, "}:"...)
	b, _ = w.Duration.AppendText(b)
	b = append(b, ':')
	if w.Calendar {
		b = append(b, calendarAnchor...)
	} else {
		b = strconv.AppendInt(b, w.Anchor.Unix(), 10)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, index, 10)
	return string(b)
}

// ParseCounterKey inverts CounterKey for valid scopes and specs, so verify
// can map a live Redis key to the ledger sum it must equal. It accepts only
// the exact bytes CounterKey would produce (canonical escapes, durations and
// numbers); anything else — including a key for an invalid scope — is an
// error wrapping ErrInvalidKey. A rolling spec's Anchor comes back in UTC; a
// calendar spec's Anchor is zero.
func ParseCounterKey(key string) (Scope, window.Spec, int64, error) {
	s, w, idx, err := parseCounterKey(key)
	if err != nil {
		return Scope{}, window.Spec{}, 0, fmt.Errorf("%w %q: %v", ErrInvalidKey, key, err)
	}
	return s, w, idx, nil
}

func parseCounterKey(key string) (Scope, window.Spec, int64, error) {
	var s Scope
	var w window.Spec
	rest, ok := strings.CutPrefix(key, CounterPrefix+"{")
	if !ok {
		return s, w, 0, fmt.Errorf("missing %q prefix", CounterPrefix+"{")
	}
	inner, tail, ok := strings.Cut(rest, "}:")
	if !ok {
		return s, w, 0, errors.New("unterminated scope")
	}

	parts := strings.Split(inner, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return s, w, 0, errors.New("scope must be kind:id or kind:id:model_group")
	}
	var err error
	if s.Kind, err = ParseKind(parts[0]); err != nil {
		return s, w, 0, err
	}
	if s.ID, err = unescape(parts[1]); err != nil {
		return s, w, 0, err
	}
	if len(parts) == 3 {
		if s.ModelGroup, err = unescape(parts[2]); err != nil {
			return s, w, 0, err
		}
	}
	if err := s.Validate(); err != nil {
		return s, w, 0, err
	}

	win := strings.Split(tail, ":")
	if len(win) != 3 {
		return s, w, 0, errors.New("window must be duration:anchor:index")
	}
	if w.Duration, err = window.Parse(win[0]); err != nil {
		return s, w, 0, err
	}
	if win[1] == calendarAnchor {
		w.Calendar = true
	} else {
		sec, err := strconv.ParseInt(win[1], 10, 64)
		if err != nil {
			return s, w, 0, fmt.Errorf("anchor: %w", err)
		}
		w.Anchor = time.Unix(sec, 0).UTC()
	}
	if err := w.Validate(); err != nil {
		return s, w, 0, err
	}
	idx, err := strconv.ParseInt(win[2], 10, 64)
	if err != nil {
		return s, w, 0, fmt.Errorf("index: %w", err)
	}

	// Equal keys must mean equal counters, so a key that decodes but is not
	// what CounterKey writes ("24h", "%3a", "+5", "007") is not ours.
	if CounterKey(s, w, idx) != key {
		return s, w, 0, errors.New("not in canonical form")
	}
	return s, w, idx, nil
}
