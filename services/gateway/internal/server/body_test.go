package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A body is read whole whether or not it declares its length, and one over
// the limit is a 413 either way.
func TestChatBodyWithAndWithoutContentLength(t *testing.T) {
	r := newRig(t, mockConfig)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`
	huge := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 32<<20) + `"}]}`
	for _, c := range []struct {
		name    string
		body    string
		chunked bool
		want    int
	}{
		{"sized", body, false, http.StatusOK},
		{"chunked", body, true, http.StatusOK},
		{"sized over the limit", huge, false, http.StatusRequestEntityTooLarge},
		{"chunked over the limit", huge, true, http.StatusRequestEntityTooLarge},
	} {
		var rd io.Reader = strings.NewReader(c.body)
		if c.chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		req, err := http.NewRequest(http.MethodPost, r.url+"/v1/chat/completions", rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+userKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.want || (c.chunked != (req.ContentLength <= 0)) {
			t.Fatalf("%s: %d %s (content length %d); want %d", c.name, resp.StatusCode, b, req.ContentLength, c.want)
		}
		if c.want != http.StatusOK {
			if msg, _, _ := openAIError(t, b); !strings.Contains(msg, "exceeds") {
				t.Fatalf("%s: %s", c.name, msg)
			}
		}
	}
}
