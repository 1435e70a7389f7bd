package openai

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The hot path reads a handful of fields of every request and of every
// upstream answer. encoding/json does that through reflection, a validation
// pass and a copy of every raw value; this file splits JSON objects in place
// instead, for the shapes clients and providers actually send.
//
// The rule that keeps behaviour identical: the fast path only ever answers
// for input it fully vouches for (valid JSON, plain keys, the expected types);
// anything else makes it report !ok and the caller decodes with
// encoding/json exactly as before, so errors and edge cases (escaped keys,
// case-insensitive field names, duplicate keys, invalid UTF-8) keep
// encoding/json's answers.

// maxScanDepth bounds nesting on the fast path; deeper documents go to
// encoding/json (which allows 10000).
const maxScanDepth = 512

// member is one "key": value of an object, both slices of the scanned input
// (key without its quotes; value without surrounding whitespace).
type member struct {
	key     []byte
	escaped bool // the key has backslash escapes: its text is not key
	val     []byte
}

// objectMembers validates b as exactly one JSON object (surrounding whitespace
// allowed) and appends its members to dst. ok is false for anything else,
// including valid JSON it does not vouch for (nesting deeper than
// maxScanDepth).
func objectMembers(b []byte, dst []member) ([]member, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return dst, false
	}
	end, dst, ok := scanObject(b, i, 0, dst, true)
	if !ok || skipWS(b, end) != len(b) {
		return dst, false
	}
	return dst, true
}

// arrayElements validates b as a JSON array value (no surrounding whitespace,
// as a member value is) and appends its elements to dst.
func arrayElements(b []byte, dst [][]byte) ([][]byte, bool) {
	if len(b) < 2 || b[0] != '[' {
		return dst, false
	}
	i := skipWS(b, 1)
	if i < len(b) && b[i] == ']' {
		return dst, i == len(b)-1
	}
	for {
		end, ok := scanValue(b, i, 1)
		if !ok {
			return dst, false
		}
		dst = append(dst, b[i:end])
		i = skipWS(b, end)
		if i >= len(b) {
			return dst, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return dst, i == len(b)-1
		default:
			return dst, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanValue validates the JSON value starting at b[i] and returns the index
// just past it.
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '{':
		end, _, ok := scanObject(b, i, depth, nil, false)
		return end, ok
	case c == '[':
		return scanArray(b, i, depth)
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	}
	return i, false
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// scanObject validates the object at b[i] == '{'; with collect, it appends
// the members to dst.
func scanObject(b []byte, i, depth int, dst []member, collect bool) (int, []member, bool) {
	if depth >= maxScanDepth {
		return i, dst, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, dst, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, dst, false
		}
		kend, escaped, ok := scanString(b, i)
		if !ok {
			return i, dst, false
		}
		key := b[i+1 : kend-1]
		i = skipWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return i, dst, false
		}
		i = skipWS(b, i+1)
		vend, ok := scanValue(b, i, depth+1)
		if !ok {
			return i, dst, false
		}
		if collect {
			dst = append(dst, member{key: key, escaped: escaped, val: b[i:vend]})
		}
		i = skipWS(b, vend)
		if i >= len(b) {
			return i, dst, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, dst, true
		default:
			return i, dst, false
		}
	}
}

func scanArray(b []byte, i, depth int) (int, bool) {
	if depth >= maxScanDepth {
		return i, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := scanValue(b, i, depth+1)
		if !ok {
			return i, false
		}
		i = skipWS(b, end)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// scanString validates the string at b[i] == '"' and returns the index just
// past its closing quote and whether it has escapes.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, escaped, false
				}
				i += 6
			default:
				return i, escaped, false
			}
		case c < 0x20:
			return i, escaped, false
		default:
			i++
		}
	}
	return i, escaped, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber validates a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// plainString returns the text of a JSON string value that has no escapes
// and is valid UTF-8 (so encoding/json would decode it to the same bytes).
func plainString(v []byte) (string, bool) {
	t, ok := plainStringBytes(v)
	if !ok {
		return "", false
	}
	return string(t), true
}

func plainStringBytes(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	t := v[1 : len(v)-1]
	for _, c := range t {
		if c == '\\' || c == '"' || c < 0x20 {
			return nil, false
		}
	}
	if !utf8.Valid(t) {
		return nil, false
	}
	return t, true
}

// plainInt returns an integer literal's value (as encoding/json decodes it
// into an int64: no fraction, no exponent).
func plainInt(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	for i, c := range v {
		if (c < '0' || c > '9') && (i != 0 || c != '-') {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// decodeString decodes a string-typed field: null leaves dst alone, as
// encoding/json does. Anything but a plain string goes to encoding/json.
func decodeString(v []byte, dst *string) error {
	if s, ok := plainString(v); ok {
		*dst = s
		return nil
	}
	if string(v) == "null" {
		return nil
	}
	return json.Unmarshal(v, dst)
}

// decodeInt64Ptr decodes a *int64 field (null: nil).
func decodeInt64Ptr(v []byte, dst **int64) error {
	if n, ok := plainInt(v); ok {
		*dst = &n
		return nil
	}
	return json.Unmarshal(v, dst)
}

// decodeBool decodes a bool field (null leaves dst alone).
func decodeBool(v []byte, dst *bool) error {
	switch string(v) {
	case "true":
		*dst = true
		return nil
	case "false":
		*dst = false
		return nil
	}
	return json.Unmarshal(v, dst)
}

// internKey returns the key as a string, without allocating for the request
// parameters clients commonly send.
func internKey(k []byte) string {
	switch string(k) {
	case "model":
		return "model"
	case "messages":
		return "messages"
	case "stream":
		return "stream"
	case "stream_options":
		return "stream_options"
	case "max_tokens":
		return "max_tokens"
	case "max_completion_tokens":
		return "max_completion_tokens"
	case "temperature":
		return "temperature"
	case "top_p":
		return "top_p"
	case "user":
		return "user"
	case "metadata":
		return "metadata"
	case "tags":
		return "tags"
	case "stop":
		return "stop"
	case "tools":
		return "tools"
	case "tool_choice":
		return "tool_choice"
	case "n":
		return "n"
	case "seed":
		return "seed"
	case "response_format":
		return "response_format"
	case "presence_penalty":
		return "presence_penalty"
	case "frequency_penalty":
		return "frequency_penalty"
	case "logprobs":
		return "logprobs"
	case "top_logprobs":
		return "top_logprobs"
	case "parallel_tool_calls":
		return "parallel_tool_calls"
	case "reasoning_effort":
		return "reasoning_effort"
	}
	return string(k)
}

// appendJSONString appends s as json.Marshal writes it (HTML-escaped).
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// decodeFloat64Ptr decodes a *float64 field (null: nil).
func decodeFloat64Ptr(v []byte, dst **float64) error {
	if end, ok := scanNumber(v, 0); ok && end == len(v) {
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			*dst = &f
			return nil
		}
	}
	return json.Unmarshal(v, dst)
}
