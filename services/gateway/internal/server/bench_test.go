package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkChatOverhead measures the gateway's own cost per request over HTTP:
// auth (cached in the fake), parse, admission (in-memory fake), routing, an
// OpenAI-compatible upstream on loopback answering at once, the response and
// the usage event. Compare with BenchmarkUpstreamDirect for the overhead.
func BenchmarkChatOverhead(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`)
	}))
	defer up.Close()
	r := newRig(b, upstreamConfig(up.URL))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hello there, how are you?"}],"max_tokens":100}`
	do := func(url string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+userKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	for _, c := range []struct {
		name string
		url  string
	}{{"gateway", r.url + "/v1/chat/completions"}, {"direct", up.URL + "/chat/completions"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				do(c.url)
			}
		})
		b.Run(c.name+"-parallel50", func(b *testing.B) {
			b.SetParallelism(50)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do(c.url)
				}
			})
		})
	}
}
