package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// A page token is opaque to clients: base64url JSON of the last row's sort key
// and a fingerprint of the list's filter. Reusing a token with another filter
// is an error instead of a page of some other list.
type pageToken struct {
	V      int      `json:"v"`
	Filter string   `json:"f"`
	After  []string `json:"a"`
}

const pageTokenVersion = 1

func fingerprint(filter ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(filter, "\x00")))
	return hex.EncodeToString(sum[:8])
}

func encodePageToken(after []string, filter ...string) string {
	b, _ := json.Marshal(pageToken{V: pageTokenVersion, Filter: fingerprint(filter...), After: after})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the sort key to continue after; "" starts at the
// beginning. want is the number of parts of the list's sort key.
func decodePageToken(tok string, want int, filter ...string) ([]string, error) {
	if tok == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	var pt pageToken
	if err == nil {
		err = json.Unmarshal(b, &pt)
	}
	if err != nil || pt.V != pageTokenVersion || len(pt.After) != want {
		return nil, invalid("page_token", "is not a token this list returned")
	}
	if pt.Filter != fingerprint(filter...) {
		return nil, invalid("page_token", "was returned for a list with other filters")
	}
	return pt.After, nil
}

// page cuts rows fetched with limit+1 to limit and returns the next token.
func page[T any](rows []T, limit int, key func(T) []string, filter ...string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, encodePageToken(key(rows[len(rows)-1]), filter...)
}
