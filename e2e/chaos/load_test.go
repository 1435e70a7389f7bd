package chaos_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spendledger/spendledger/e2e/harness"
	"github.com/spendledger/spendledger/ledger/money"
)

// outcome is how one request ended, as the client saw it.
type outcome int

const (
	ok     outcome = iota // 200 with a call id and a cost: the client was told it spent money
	denied                // 429 budget_exceeded: admission refused it
	failed                // anything else: a fault got in the way (503, reset, timeout, cut stream...)
)

func (o outcome) String() string { return [...]string{"ok", "denied", "failed"}[o] }

// request is one call a client made, and what came back.
type request struct {
	client    int
	key       *key
	model     string
	maxTokens int // 0: not set
	stream    bool
	padding   int           // words added to the prompt, so costs differ between requests
	at        time.Duration // sent, since the load started
	end       time.Duration // answered (or failed)

	outcome outcome
	status  int    // HTTP status; 0 when no response arrived
	why     string // failed: a short reason, for the report's tally
	callID  string // x-litellm-call-id: the request id the ledger entry carries
	cost    money.Nanos
}

// load is the clients calling the gateway until stopped.
type load struct {
	started  time.Time
	stopping atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	done     []*request
}

// startLoad starts cfg.clients clients, each drawing its choices from its
// own generator seeded from the run's seed.
func startLoad(st *harness.Stack, keys *keyring, cfg config) *load {
	l := &load{started: time.Now()}
	httpc := &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.clients, IdleConnTimeout: 30 * time.Second},
	}
	for i := range cfg.clients {
		rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)+1))
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stopping.Load() {
				r := l.next(rng, keys, i)
				call(httpc, st.GatewayURL, r)
				r.end = l.elapsed()
				l.mu.Lock()
				l.done = append(l.done, r)
				l.mu.Unlock()
				time.Sleep(time.Duration(5+rng.IntN(35)) * time.Millisecond)
			}
		}()
	}
	return l
}

// next draws a client's next request. Bounded keys always set max_tokens;
// mixed keys half the time.
//
// max_tokens is mostly 16..32, just above the mocks' 7..14 completion
// tokens: admission's estimate is then close to the actual cost, so keys end
// close to their limits, where a budget overrun shows rather than hiding in
// the slack a generous max_tokens leaves.
func (l *load) next(rng *rand.Rand, keys *keyring, client int) *request {
	r := &request{client: client, key: keys.pick(rng), model: modelGroups[rng.IntN(len(modelGroups))],
		maxTokens: 16 + rng.IntN(17), stream: rng.IntN(5) == 0, padding: rng.IntN(17), at: l.elapsed()}
	switch {
	case r.key.mixed && rng.IntN(2) == 0:
		r.maxTokens = 0
	case rng.IntN(5) == 0:
		r.maxTokens = 16 + rng.IntN(241)
	}
	return r
}

func (l *load) elapsed() time.Duration { return time.Since(l.started) }

// stop lets every client finish its request in flight and returns them all.
func (l *load) stop() []*request {
	l.stopping.Store(true)
	l.wg.Wait()
	return l.done
}

// call sends r to the gateway and records what came back.
func call(httpc *http.Client, gatewayURL string, r *request) {
	body := map[string]any{
		"model":    r.model,
		"stream":   r.stream,
		"messages": []map[string]string{{"role": "user", "content": prompt(r)}},
	}
	if r.maxTokens > 0 {
		body["max_tokens"] = r.maxTokens
	}
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, gatewayURL+"/v1/chat/completions", bytes.NewReader(raw))
	if err != nil {
		r.outcome, r.why = failed, err.Error()
		return
	}
	req.Header.Set("Authorization", "Bearer "+r.key.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		r.outcome, r.why = failed, "no response: "+transportReason(err)
		return
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	b, readErr := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests && errorCode(b) == "budget_exceeded":
		r.outcome = denied
		return
	case resp.StatusCode != http.StatusOK:
		r.outcome, r.why = failed, fmt.Sprintf("%d %s", resp.StatusCode, errorCode(b))
		return
	case readErr != nil:
		r.outcome, r.why = failed, "200, body cut: "+transportReason(readErr)
		return
	case r.stream && !bytes.Contains(b, []byte("data: [DONE]")):
		r.outcome, r.why = failed, "200, stream without [DONE]"
		return
	}
	// A stream's cost arrives as a trailer, after the body.
	costText := resp.Header.Get("X-Litellm-Response-Cost")
	if r.stream {
		costText = resp.Trailer.Get("X-Litellm-Response-Cost")
	}
	r.callID = resp.Header.Get("X-Litellm-Call-Id")
	cost, err := money.ParseDollars(costText)
	if err != nil || r.callID == "" {
		r.outcome, r.why = failed, fmt.Sprintf("200 without a call id or cost (call id %q, cost %q)", r.callID, costText)
		return
	}
	r.outcome, r.cost = ok, cost
}

func prompt(r *request) string {
	return "Chaos request from client " + fmt.Sprint(r.client) + strings.Repeat(" and more", r.padding)
}

// errorCode is error.code (or error.type) of an OpenAI error body.
func errorCode(body []byte) string {
	var e struct {
		Error struct{ Code, Type string } `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "(no OpenAI error body)"
	}
	if e.Error.Code != "" {
		return e.Error.Code
	}
	return e.Error.Type
}

// transportReason shortens a transport error to its kind, so the report
// tallies "connection refused" once rather than once per port and address.
func transportReason(err error) string {
	s := err.Error()
	for _, kind := range []string{"connection refused", "connection reset", "EOF", "timeout", "broken pipe"} {
		if strings.Contains(s, kind) {
			return kind
		}
	}
	return s
}
