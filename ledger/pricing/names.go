package pricing

import (
	"strings"
)

// Catalog names drift from the names deployments use: LiteLLM keys one model as
// "claude-opus-4-6", "vertex_ai/claude-opus-4-6@default" and "us.anthropic.claude-sonnet-4-6",
// while operators write "bedrock/bedrock/us.anthropic.claude-sonnet-4-6". LiteLLM's answer to a
// miss was an empty entry whose cache prices then read as zero (reference 000). Here a miss is
// retried under canonical forms, from most to least specific, so the entry found is the closest
// one that exists, and only then is a price unknown.

// providerPrefixes are LiteLLM provider routes that prefix a backend model name. The deployment's
// own provider is stripped too, whatever it is.
var providerPrefixes = map[string]bool{
	"bedrock": true, "converse": true, "invoke": true, "bedrock_converse": true,
	"vertex_ai": true, "vertex_ai_beta": true, "gemini": true,
	"anthropic": true, "openai": true, "azure": true, "azure_ai": true,
}

// dotRegions are cross-region inference profile prefixes (Bedrock); priced entries exist for some,
// often with a regional uplift, which is why the region is kept as long as a match is possible.
var dotRegions = []string{"us-gov.", "us.", "eu.", "apac.", "global.", "jp.", "au.", "ca."}

// pathRegions are data-zone segments (Azure's "azure/eu/gpt-5.5").
var pathRegions = []string{"us/", "eu/", "global/"}

// vendorPrefixes are the model-vendor prefixes of Bedrock model ids ("anthropic.claude-...").
var vendorPrefixes = []string{"anthropic.", "meta.", "amazon.", "cohere.", "mistral.", "ai21.", "deepseek.", "openai.", "qwen.", "writer."}

type candidate struct {
	name  string
	match Match
}

// candidates lists the names to look up for model, in order: the exact name; the name with the
// deployment's provider prefixed (the catalog keys some models that way); then canonical forms.
//
// Canonical forms strip the provider route prefixes one at a time (bedrock/bedrock/x, bedrock/x,
// x), then, from the remainder, drop in turn the version suffix ("@default", "@20250514",
// "-v1:0", ":0"), the region ("us.", "eu/", "us-east-1/"), and the vendor ("anthropic."), the
// price-relevant parts last: a regional entry carries the region's uplift, a suffix never
// changes a price. Each canonical form is tried with a provider prefix first, since
// "vertex_ai/claude-opus-4-6" prices the Vertex deployment more exactly than "claude-opus-4-6".
func candidates(provider, model string) []candidate {
	out := make([]candidate, 0, 16)
	add := func(name string, m Match) {
		if name == "" {
			return
		}
		for _, c := range out {
			if c.name == name {
				return
			}
		}
		out = append(out, candidate{name, m})
	}
	add(model, MatchExact)
	if provider != "" && !strings.HasPrefix(model, provider+"/") {
		add(provider+"/"+model, MatchProviderPrefixed)
	}

	// Strip provider routes: bedrock/bedrock/x -> bedrock/x -> x.
	var stripped []string // the names left after each strip
	outer := ""           // the model's own provider route, if it has one
	rest := model
	for {
		seg, after, ok := strings.Cut(rest, "/")
		if !ok || after == "" || !(providerPrefixes[seg] || seg == provider) {
			break
		}
		if outer == "" {
			outer = seg
		}
		rest = after
		stripped = append(stripped, rest)
	}

	var prefixes []string // routes to re-add to canonical forms
	if provider != "" {
		prefixes = append(prefixes, provider)
	}
	if outer != "" && outer != provider {
		prefixes = append(prefixes, outer)
	}
	canonical := func(name string) {
		for _, p := range prefixes {
			add(p+"/"+name, MatchCanonical)
		}
		add(name, MatchCanonical)
	}
	for _, name := range stripped {
		canonical(name)
	}

	region, vendor, core, suffix := splitName(rest)
	canonical(region + vendor + core)
	canonical(vendor + core + suffix)
	canonical(vendor + core)
	canonical(core + suffix)
	canonical(core)
	return out
}

// splitName splits a provider-less name into region, vendor, core and version suffix, any of
// which may be empty: "us.anthropic.claude-sonnet-4-20250514-v1:0" is
// "us." + "anthropic." + "claude-sonnet-4-20250514" + "-v1:0".
func splitName(s string) (region, vendor, core, suffix string) {
	region = regionPrefix(s)
	s = s[len(region):]
	for _, v := range vendorPrefixes {
		if strings.HasPrefix(s, v) && len(s) > len(v) {
			vendor = v
			break
		}
	}
	s = s[len(vendor):]
	suffix = versionSuffix(s)
	return region, vendor, s[:len(s)-len(suffix)], suffix
}

func regionPrefix(s string) string {
	for _, r := range dotRegions {
		if strings.HasPrefix(s, r) && len(s) > len(r) {
			return r
		}
	}
	for _, r := range pathRegions {
		if strings.HasPrefix(s, r) && len(s) > len(r) {
			return r
		}
	}
	if seg, after, ok := strings.Cut(s, "/"); ok && after != "" && isAWSRegion(seg) {
		return seg + "/"
	}
	return ""
}

// isAWSRegion matches region codes such as "us-east-1" and "us-gov-west-1".
func isAWSRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || len(parts) > 4 || len(parts[0]) != 2 {
		return false
	}
	for _, p := range parts[:len(parts)-1] {
		if p == "" || strings.Trim(p, "abcdefghijklmnopqrstuvwxyz") != "" {
			return false
		}
	}
	return isDigits(parts[len(parts)-1])
}

// versionSuffix returns a trailing "@anything" (Vertex), "-vN:M" or "-vN" (Bedrock), or ":N".
func versionSuffix(s string) string {
	if i := strings.LastIndexByte(s, '@'); i > 0 {
		return s[i:]
	}
	body := s
	if i := strings.LastIndexByte(body, ':'); i > 0 && isDigits(body[i+1:]) {
		body = body[:i]
	}
	if i := strings.LastIndex(body, "-v"); i > 0 && isDigits(body[i+2:]) {
		body = body[:i]
	}
	return s[len(body):]
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
