package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// DefaultOpenAIBase is OpenAI's API base, used by openai/ deployments that set
// no api_base.
const DefaultOpenAIBase = "https://api.openai.com/v1"

// DefaultAzureAPIVersion is used by azure/ deployments that set no api_version.
const DefaultAzureAPIVersion = "2024-10-21"

// OpenAI is a transport to an OpenAI-compatible chat completions endpoint.
type OpenAI struct {
	endpoint
	model string
}

// NewOpenAI returns a transport posting to base + "/chat/completions" with a
// bearer key (none when apiKey is empty), asking for backend model model.
func NewOpenAI(client *http.Client, base, apiKey, model string) *OpenAI {
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if apiKey != "" {
		h.Set("Authorization", "Bearer "+apiKey)
	}
	return &OpenAI{endpoint: newEndpoint(client, strings.TrimRight(base, "/")+"/chat/completions", h), model: model}
}

// NewAzure returns a transport to an Azure OpenAI deployment: the deployment
// name is in the path, the key in the api-key header.
func NewAzure(client *http.Client, base, apiKey, apiVersion, deployment string) *OpenAI {
	if apiVersion == "" {
		apiVersion = DefaultAzureAPIVersion
	}
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	if apiKey != "" {
		h.Set("api-key", apiKey)
	}
	u := fmt.Sprintf("%s/openai/deployments/%s/chat/completions?api-version=%s", strings.TrimRight(base, "/"), deployment, apiVersion)
	return &OpenAI{endpoint: newEndpoint(client, u, h), model: deployment}
}

// URL is the endpoint the transport posts to.
func (t *OpenAI) URL() string { return t.url }

// Complete implements Transport.
func (t *OpenAI) Complete(ctx context.Context, req *openai.ChatRequest) (*Result, error) {
	resp, err := t.post(ctx, req.UpstreamBody(t.model, false))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp, maxResponseBytes)
	if err != nil {
		return nil, wrapErr(ctx, err)
	}
	// Usage alone first: the body is forwarded as it came, so the choices are
	// decoded only when the upstream reported no usage and the text has to be
	// measured for the estimate.
	usage, ok := openai.ReportedUsage(b)
	if !ok {
		var reported struct {
			Usage *openai.Usage `json:"usage"`
		}
		if err := json.Unmarshal(b, &reported); err != nil {
			return nil, &Error{Status: http.StatusBadGateway, Message: "upstream answered with invalid JSON", Err: err}
		}
		usage = reported.Usage
	}
	res := &Result{Body: b}
	if usage != nil {
		if res.Usage, err = usage.Normalize(); err != nil {
			return nil, &Error{Status: http.StatusBadGateway, Message: "upstream reported inconsistent usage", Err: err}
		}
		return res, nil
	}
	var sum openai.CompletionSummary
	if err := json.Unmarshal(b, &sum); err != nil {
		return nil, &Error{Status: http.StatusBadGateway, Message: "upstream answered with invalid JSON", Err: err}
	}
	res.Usage = estimate(req, sum.TextBytes())
	res.UsageEstimated = true
	return res, nil
}

// estimate is the usage of a call whose upstream reported none.
func estimate(req *openai.ChatRequest, outBytes int64) pricing.Usage {
	return pricing.Usage{Input: openai.EstimateTokens(req.TextBytes()), Output: openai.EstimateTokens(outBytes)}
}

// Stream implements Transport.
func (t *OpenAI) Stream(ctx context.Context, req *openai.ChatRequest) (Stream, error) {
	resp, err := t.post(ctx, req.UpstreamBody(t.model, true))
	if err != nil {
		return nil, err
	}
	return &openaiStream{ctx: ctx, body: resp.Body, sse: newSSEReader(resp.Body), req: req}, nil
}

type openaiStream struct {
	ctx      context.Context
	body     io.ReadCloser
	sse      *sseReader
	req      *openai.ChatRequest
	outBytes int64
	usage    pricing.Usage
	gotUsage bool
	done     bool
}

func (s *openaiStream) Next() (Chunk, error) {
	for {
		if s.done {
			return Chunk{}, io.EOF
		}
		_, data, err := s.sse.Next()
		if err == io.EOF {
			// A server that closes without [DONE] still ended the stream.
			s.done = true
			return Chunk{}, io.EOF
		}
		if err != nil {
			return Chunk{}, wrapErr(s.ctx, err)
		}
		if string(data) == "[DONE]" {
			s.done = true
			return Chunk{}, io.EOF
		}
		var sum openai.ChunkSummary
		if err := json.Unmarshal(data, &sum); err != nil {
			// Not ours to judge: forward what the upstream sent.
			return Chunk{Data: data}, nil
		}
		if len(sum.Error) > 0 && string(sum.Error) != "null" {
			e := FromResponse(http.StatusBadGateway, data)
			e.Message = "upstream failed mid-stream: " + e.Message
			return Chunk{}, e
		}
		s.outBytes += sum.TextBytes()
		if sum.Usage != nil {
			u, err := sum.Usage.Normalize()
			if err != nil {
				return Chunk{}, &Error{Status: http.StatusBadGateway, Message: "upstream reported inconsistent usage", Err: err}
			}
			s.usage, s.gotUsage = u, true
		}
		return Chunk{Data: data, UsageOnly: len(sum.Choices) == 0 && sum.Usage != nil}, nil
	}
}

func (s *openaiStream) Usage() (pricing.Usage, bool) {
	if s.gotUsage {
		return s.usage, false
	}
	return estimate(s.req, s.outBytes), true
}

func (s *openaiStream) Close() error { return s.body.Close() }
