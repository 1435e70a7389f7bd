package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
)

// endpoint is one upstream URL and the headers every call to it carries,
// with the request prepared once: a call copies the parsed URL and hands the
// request straight to the client's transport instead of going through
// http.Client, which would parse the URL and clone the headers (for
// redirects) on every call. What http.Client adds is kept: a redirect is
// followed by the client (the call is replayed through it), and transport
// errors are wrapped in the same *url.Error.
type endpoint struct {
	client *http.Client
	url    string
	header http.Header
	// tmpl is the request template (nil when url does not parse, or the
	// client needs http.Client's own handling: each call then goes through
	// client.Do, which reports or handles it).
	tmpl *http.Request
	// errURL is the URL as http.Client writes it in its errors.
	errURL string
}

func newEndpoint(client *http.Client, rawURL string, header http.Header) endpoint {
	e := endpoint{client: client, url: rawURL, header: header}
	tmpl, err := http.NewRequest(http.MethodPost, rawURL, nil)
	// A cookie jar, a client timeout or credentials in the URL need
	// http.Client's handling.
	if err == nil && client.Jar == nil && client.Timeout == 0 && tmpl.URL.User == nil {
		e.tmpl, e.errURL = tmpl, tmpl.URL.String()
	}
	return e
}

// post posts body with the endpoint's headers and returns a 2xx response for
// the caller to read; any other status becomes an *Error built from the
// provider's body, so every transport classifies failures the same way.
func (e *endpoint) post(ctx context.Context, body []byte) (*http.Response, error) {
	if e.tmpl == nil {
		return postJSON(ctx, e.client, e.url, e.header, body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", nil)
	if err != nil {
		return postJSON(ctx, e.client, e.url, e.header, body)
	}
	*req.URL = *e.tmpl.URL
	req.Host = e.tmpl.Host
	// Shared, not cloned per call: neither the client nor the transports write
	// to a request's header map (they copy it before adding anything).
	req.Header = e.header
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	// The transport replays the body when a kept-alive connection turns out
	// to be dead.
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	rt := e.client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		// As http.Client reports it.
		if tlsErr, ok := err.(tls.RecordHeaderError); ok && string(tlsErr.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch
		}
		return nil, wrapErr(ctx, &url.Error{Op: "Post", URL: e.errURL, Err: err})
	}
	if isRedirect(resp) {
		// Rare: let http.Client follow it, as it did every call before.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
		return postJSON(ctx, e.client, e.url, e.header, body)
	}
	return checkStatus(resp)
}

// isRedirect reports whether http.Client would follow resp.
func isRedirect(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return resp.Header.Get("Location") != ""
	}
	return false
}

// readBody reads a non-streamed response body of at most limit bytes, sized
// by its Content-Length when it has one.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}
