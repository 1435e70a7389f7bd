package pricing

import (
	"errors"
	"fmt"
	"math"
)

// Usage is the token counts of one request, normalized so the kinds are disjoint: every token
// is counted once, under the kind it is billed as. Providers report overlapping counts, and the
// gateway normalizes them before the UsageRecorded event is written:
//
//   - OpenAI: prompt_tokens includes prompt_tokens_details.cached_tokens, and completion_tokens
//     includes completion_tokens_details.reasoning_tokens. So Input = prompt - cached,
//     CacheRead = cached, Output = completion - reasoning, Reasoning = reasoning. See FromOpenAI.
//   - Anthropic: input_tokens already excludes cache reads and cache writes, which come as
//     cache_read_input_tokens and cache_creation_input_tokens (the latter split by TTL in
//     cache_creation.ephemeral_5m/1h_input_tokens). output_tokens includes thinking, which
//     Anthropic bills at the output price and does not report apart. See FromAnthropic.
//
// Counting a cached token as both Input and CacheRead would bill it twice; counting reasoning
// inside Output and again as Reasoning likewise. Disjoint counts make the sum of components the
// bill.
type Usage struct {
	Input           int64 // uncached prompt tokens
	CacheRead       int64 // prompt tokens read from cache
	CacheCreation   int64 // prompt tokens written to a 5-minute cache
	CacheCreation1h int64 // prompt tokens written to a 1-hour cache
	Output          int64 // completion tokens, excluding reasoning
	Reasoning       int64 // reasoning tokens reported apart from the completion
}

// ErrNegativeTokens reports a negative token count.
var ErrNegativeTokens = errors.New("pricing: negative token count")

// Tokens returns the count of one kind.
func (u Usage) Tokens(k Kind) int64 {
	switch k {
	case KindInput:
		return u.Input
	case KindOutput:
		return u.Output
	case KindCacheRead:
		return u.CacheRead
	case KindCacheCreation:
		return u.CacheCreation
	case KindCacheCreation1h:
		return u.CacheCreation1h
	case KindReasoning:
		return u.Reasoning
	}
	return 0
}

// Validate reports the first negative count.
func (u Usage) Validate() error {
	for k := range Kind(NumKinds) {
		if n := u.Tokens(k); n < 0 {
			return fmt.Errorf("%w: %s = %d", ErrNegativeTokens, k, n)
		}
	}
	return nil
}

// PromptTokens is the prompt size that selects a price tier: every prompt-side token, cached or
// not (Input + CacheRead + CacheCreation + CacheCreation1h), as providers count it.
func (u Usage) PromptTokens() (int64, error) {
	if err := u.Validate(); err != nil {
		return 0, err
	}
	var total int64
	for _, n := range [...]int64{u.Input, u.CacheRead, u.CacheCreation, u.CacheCreation1h} {
		if n > math.MaxInt64-total {
			return 0, errors.New("pricing: prompt token count overflows int64")
		}
		total += n
	}
	return total, nil
}

// FromOpenAI normalizes OpenAI-style counts: promptTokens includes cachedTokens and
// completionTokens includes reasoningTokens.
func FromOpenAI(promptTokens, cachedTokens, completionTokens, reasoningTokens int64) (Usage, error) {
	if promptTokens < 0 || cachedTokens < 0 || completionTokens < 0 || reasoningTokens < 0 {
		return Usage{}, ErrNegativeTokens
	}
	if cachedTokens > promptTokens {
		return Usage{}, fmt.Errorf("pricing: cached_tokens %d exceed prompt_tokens %d", cachedTokens, promptTokens)
	}
	if reasoningTokens > completionTokens {
		return Usage{}, fmt.Errorf("pricing: reasoning_tokens %d exceed completion_tokens %d", reasoningTokens, completionTokens)
	}
	return Usage{
		Input:     promptTokens - cachedTokens,
		CacheRead: cachedTokens,
		Output:    completionTokens - reasoningTokens,
		Reasoning: reasoningTokens,
	}, nil
}

// FromAnthropic normalizes Anthropic counts: inputTokens excludes cache reads and writes,
// cacheCreationTokens is the total written (cache_creation_input_tokens), of which
// cacheCreation1hTokens went to the 1-hour cache (cache_creation.ephemeral_1h_input_tokens).
func FromAnthropic(inputTokens, cacheReadTokens, cacheCreationTokens, cacheCreation1hTokens, outputTokens int64) (Usage, error) {
	if inputTokens < 0 || cacheReadTokens < 0 || cacheCreationTokens < 0 || cacheCreation1hTokens < 0 || outputTokens < 0 {
		return Usage{}, ErrNegativeTokens
	}
	if cacheCreation1hTokens > cacheCreationTokens {
		return Usage{}, fmt.Errorf("pricing: 1h cache writes %d exceed cache_creation_input_tokens %d", cacheCreation1hTokens, cacheCreationTokens)
	}
	return Usage{
		Input:           inputTokens,
		CacheRead:       cacheReadTokens,
		CacheCreation:   cacheCreationTokens - cacheCreation1hTokens,
		CacheCreation1h: cacheCreation1hTokens,
		Output:          outputTokens,
	}, nil
}
