package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const okCompletion = `{"id":"x","object":"chat.completion","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`

// A call goes straight to the transport, but a redirect is still followed as
// http.Client follows it: a 307 replays the POST, body and all.
func TestEndpointFollowsRedirectsAsHTTPClientDoes(t *testing.T) {
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/chat/completions" {
			http.Redirect(w, r, "/v2/chat/completions", http.StatusTemporaryRedirect)
			return
		}
		gotBody = string(b)
		_, _ = io.WriteString(w, okCompletion)
	}))
	defer srv.Close()
	tr := NewOpenAI(NewHTTPClient(), srv.URL+"/v1", "k", "backend")
	if tr.tmpl == nil {
		t.Fatal("an http:// endpoint on the shared client should take the direct path")
	}
	res, err := tr.Complete(context.Background(), parse(t, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage.Input != 3 || !strings.Contains(gotBody, `"model":"backend"`) {
		t.Fatalf("usage %+v, redirected body %q", res.Usage, gotBody)
	}
}

// Transport failures read exactly as http.Client's: the router and the
// client's error message see the same *url.Error text.
func TestEndpointErrorsReadAsHTTPClientErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/chat/completions"
	_ = ln.Close() // nothing listens: the dial is refused
	e := newEndpoint(NewHTTPClient(), url, http.Header{})
	_, fast := e.post(context.Background(), []byte(`{}`))
	_, slow := postJSON(context.Background(), e.client, url, e.header, []byte(`{}`))
	var fe, se *Error
	if !errors.As(fast, &fe) || !errors.As(slow, &se) || fe.Error() != se.Error() || fe.Timeout != se.Timeout {
		t.Fatalf("direct path: %v; http.Client: %v", fast, slow)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.post(ctx, []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled call: %v, want context.Canceled passed through", err)
	}
}

// A client that needs http.Client's own handling (here a client timeout)
// keeps going through it.
func TestEndpointUsesHTTPClientWhenItMustHandleTheCall(t *testing.T) {
	c := NewHTTPClient()
	c.Timeout = 1
	if e := newEndpoint(c, "http://127.0.0.1:1/x", nil); e.tmpl != nil {
		t.Fatal("a client with a timeout must go through http.Client")
	}
	if e := newEndpoint(NewHTTPClient(), "http://user:pw@127.0.0.1:1/x", nil); e.tmpl != nil {
		t.Fatal("credentials in the URL must go through http.Client (basic auth)")
	}
}
