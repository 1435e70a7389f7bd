package pricing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spendledger/spendledger/ledger/money"
)

// Catalog is an immutable set of named price entries in LiteLLM's model_prices_and_context_window
// format. Nothing mutates a Catalog after it is built: Resolve only reads it, and Merge builds a
// new one. That is what makes resolution a pure function of (catalog version, deployment).
type Catalog struct {
	version  string
	entries  map[string]*Entry
	folded   map[string]string // lower-cased name -> name, for case-insensitive lookups
	problems []Problem
}

// Entry is one model's catalog entry: the fields pricing needs, nothing else.
type Entry struct {
	Name            string
	Provider        string // litellm_provider, informational: it never overrides a deployment's provider
	Mode            string // "chat", "embedding", ...
	MaxInputTokens  int64  // 0 when not listed
	MaxOutputTokens int64  // 0 when not listed
	MaxTokens       int64  // LiteLLM's legacy field; 0 when not listed
	Prices          PriceSheet
}

// Problem records a field skipped while parsing a catalog. A price field in a Problem stays
// Unknown: a malformed price never becomes zero.
type Problem struct {
	Entry, Field, Reason string
}

func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s: %s", p.Entry, p.Reason)
	}
	return fmt.Sprintf("%s.%s: %s", p.Entry, p.Field, p.Reason)
}

// sampleSpec is the documentation entry at the top of LiteLLM's file; its "prices" are zeros
// standing for "a number goes here".
const sampleSpec = "sample_spec"

// ParseCatalog parses a price file in LiteLLM's format, such as an operator's override file.
//
// Only a malformed document is an error. Inside it, parsing is tolerant: odd entries and fields
// (strings where numbers belong, objects where prices belong) are skipped and listed in
// Problems, never panicked on and never read as zero. Prices are read exactly from the JSON
// number text ("3e-06" is exactly 3/1000000); a price given as a numeric string is accepted too,
// since YAML-sourced files quote them.
func ParseCatalog(data []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("pricing: catalog: %w", err)
	}
	if top == nil {
		return nil, errors.New("pricing: catalog: not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("pricing: catalog: trailing data after the JSON object")
	}
	sum := sha256.Sum256(data)
	c := &Catalog{
		version: hex.EncodeToString(sum[:]),
		entries: make(map[string]*Entry, len(top)),
		folded:  make(map[string]string, len(top)),
	}
	// Sorted so Problems come out in the same order on every run.
	for _, name := range slices.Sorted(maps.Keys(top)) {
		if name == sampleSpec {
			continue
		}
		e, problems, ok := parseEntry(name, top[name])
		c.problems = append(c.problems, problems...)
		if ok {
			c.add(e)
		}
	}
	return c, nil
}

func parseEntry(name string, raw json.RawMessage) (*Entry, []Problem, bool) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		if name == "last_updated" { // file metadata, not a model
			return nil, nil, false
		}
		return nil, []Problem{{Entry: name, Reason: "entry is not a JSON object; skipped"}}, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, []Problem{{Entry: name, Reason: "entry skipped: " + err.Error()}}, false
	}
	e := &Entry{Name: name}
	var problems []Problem
	bad := func(field, reason string) { problems = append(problems, Problem{name, field, reason}) }
	for _, field := range slices.Sorted(maps.Keys(fields)) {
		v := fields[field]
		switch field {
		case "litellm_provider", "mode":
			s, ok := v.(string)
			if !ok {
				bad(field, "not a string; skipped")
				continue
			}
			if field == "mode" {
				e.Mode = s
			} else {
				e.Provider = s
			}
			continue
		case "max_input_tokens", "max_output_tokens", "max_tokens":
			n, err := parseCount(v)
			if err != nil {
				bad(field, err.Error()+"; skipped")
				continue
			}
			switch field {
			case "max_input_tokens":
				e.MaxInputTokens = n
			case "max_output_tokens":
				e.MaxOutputTokens = n
			default:
				e.MaxTokens = n
			}
			continue
		}
		ref, ok := parseField(field)
		if !ok || v == nil { // not a price we use, or JSON null: not set
			continue
		}
		p, err := parsePriceValue(v)
		if err != nil {
			bad(field, err.Error()+"; price left unknown")
			continue
		}
		if !e.Prices.set(ref, p) {
			bad(field, "same price as another field spelling the same threshold; ignored")
		}
	}
	return e, problems, true
}

// parsePriceValue accepts a JSON number (as json.Number) or a string holding decimal text.
func parsePriceValue(v any) (Price, error) {
	switch x := v.(type) {
	case json.Number:
		return ParsePrice(x.String())
	case string:
		return ParsePrice(strings.TrimSpace(x))
	default:
		return Price{}, fmt.Errorf("a %s is not a price", jsonKind(v))
	}
}

// parseCount accepts a non-negative integral number, including LiteLLM's "2000000.0".
func parseCount(v any) (int64, error) {
	var text string
	switch x := v.(type) {
	case json.Number:
		text = x.String()
	case string:
		text = strings.TrimSpace(x)
	default:
		return 0, fmt.Errorf("a %s is not a token count", jsonKind(v))
	}
	r, err := money.ParseDecimal(text)
	if err != nil || !r.IsInt() || r.Sign() < 0 || !r.Num().IsInt64() {
		return 0, fmt.Errorf("%q is not a non-negative integer", text)
	}
	return r.Num().Int64(), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	}
	return fmt.Sprintf("%T", v)
}

func (c *Catalog) add(e *Entry) {
	c.entries[e.Name] = e
	// Two names differing only in case: keep the smallest, so the choice never depends on the
	// order entries were added in.
	low := strings.ToLower(e.Name)
	if prev, ok := c.folded[low]; !ok || e.Name < prev {
		c.folded[low] = e.Name
	}
}

// Version identifies the catalog's content: the hex SHA-256 of the parsed bytes, or for a merged
// catalog a hash of both versions. Events record it so re-pricing knows which prices applied.
func (c *Catalog) Version() string {
	if c == nil {
		return ""
	}
	return c.version
}

// Len returns the number of entries.
func (c *Catalog) Len() int {
	if c == nil {
		return 0
	}
	return len(c.entries)
}

// Problems lists the fields and entries skipped while parsing.
func (c *Catalog) Problems() []Problem {
	if c == nil {
		return nil
	}
	return slices.Clone(c.problems)
}

// Entry returns a copy of the entry with exactly this name.
func (c *Catalog) Entry(name string) (Entry, bool) {
	if c == nil {
		return Entry{}, false
	}
	e, ok := c.entries[name]
	if !ok {
		return Entry{}, false
	}
	cp := *e
	cp.Prices = e.Prices.clone()
	return cp, true
}

// lookup finds a name exactly, else case-insensitively (LiteLLM's map mixes cases, and
// operators type model names by hand).
func (c *Catalog) lookup(name string) *Entry {
	if e, ok := c.entries[name]; ok {
		return e
	}
	if n, ok := c.folded[strings.ToLower(name)]; ok {
		return c.entries[n]
	}
	return nil
}

// Merge returns a new catalog: c's entries, with every entry named in override replacing c's
// entry of that name whole (fields are not mixed across the two files, so an operator's entry
// means exactly what its file says). Neither input changes. The version is a hash of both
// versions, so events priced by the merged catalog name both files.
func (c *Catalog) Merge(override *Catalog) *Catalog {
	if override == nil {
		return c
	}
	if c == nil {
		return override
	}
	sum := sha256.Sum256([]byte("spendledger merged catalog\n" + c.version + "\n" + override.version + "\n"))
	m := &Catalog{
		version:  hex.EncodeToString(sum[:]),
		entries:  make(map[string]*Entry, len(c.entries)+len(override.entries)),
		folded:   make(map[string]string, len(c.entries)+len(override.entries)),
		problems: slices.Concat(c.problems, override.problems),
	}
	for _, e := range c.entries {
		if _, replaced := override.entries[e.Name]; !replaced {
			m.add(e)
		}
	}
	for _, e := range override.entries {
		m.add(e)
	}
	return m
}
