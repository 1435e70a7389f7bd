package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spendledger/spendledger/ledger/money"
	"github.com/spendledger/spendledger/ledger/window"
	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// fields is a JSON object body, field by field. Fields are read one at a time
// so that presence is known (an update changes only what it names) and no
// number passes through float64: money is parsed from the number's text.
type fields map[string]json.RawMessage

// readBody reads up to h.MaxBodyBytes.
func (h *Handler) readBody(r *http.Request) ([]byte, *openai.Error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, h.MaxBodyBytes+1))
	if err != nil {
		return nil, badRequest("", "reading request body: "+err.Error())
	}
	if int64(len(b)) > h.MaxBodyBytes {
		return nil, &openai.Error{Status: http.StatusRequestEntityTooLarge, Type: openai.TypeInvalidRequest,
			Message: fmt.Sprintf("request body exceeds %d bytes", h.MaxBodyBytes)}
	}
	return b, nil
}

// readFields reads a JSON object body. An empty body is an empty object.
func (h *Handler) readFields(r *http.Request) (fields, *openai.Error) {
	b, oerr := h.readBody(r)
	if oerr != nil {
		return nil, oerr
	}
	return parseFields(b)
}

func parseFields(b []byte) (fields, *openai.Error) {
	f := fields{}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		return nil, badRequest("", "request body is not a JSON object: "+err.Error())
	}
	if dec.More() {
		return nil, badRequest("", "request body has data after the JSON object")
	}
	return f, nil
}

// check refuses fields in refused (non-null: they would set a limit this
// gateway does not enforce) and logs the ones in neither known nor refused:
// LiteLLM clients send many optional fields, and failing on each would make
// the API unusable as a drop-in, but an operator should see what was ignored.
func (f fields) check(log *slog.Logger, path string, known []string, refused map[string]string) *openai.Error {
	var ignored []string
	for k := range f {
		if why, ok := refused[k]; ok {
			if f.meaningful(k) {
				return unsupported(k, why)
			}
			continue
		}
		if !slices.Contains(known, k) {
			ignored = append(ignored, k)
		}
	}
	if len(ignored) > 0 {
		sort.Strings(ignored)
		log.Warn("admin request fields not supported; ignored", "path", path, "fields", ignored)
	}
	return nil
}

// set reports whether k is present and not null (LiteLLM reads null as "not
// given").
func (f fields) set(k string) bool {
	v, ok := f[k]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

// meaningful reports whether k sets something: present and not null, {},
// [], "", 0 or false (the empty values LiteLLM clients send for "not set").
func (f fields) meaningful(k string) bool {
	if !f.set(k) {
		return false
	}
	switch v := string(bytes.TrimSpace(f[k])); v {
	case "{}", "[]", `""`, "0", "false":
		return false
	default:
		return strings.Trim(v, "{}[] \t\r\n") != ""
	}
}

func (f fields) str(k string) (string, *openai.Error) {
	if !f.set(k) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(f[k], &s); err != nil {
		return "", badRequest(k, k+": want a string")
	}
	return s, nil
}

func (f fields) strs(k string) ([]string, *openai.Error) {
	if !f.set(k) {
		return nil, nil
	}
	var s []string
	if err := json.Unmarshal(f[k], &s); err != nil {
		return nil, badRequest(k, k+": want a list of strings")
	}
	return s, nil
}

func (f fields) boolean(k string) (*bool, *openai.Error) {
	if !f.set(k) {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(f[k], &b); err != nil {
		return nil, badRequest(k, k+": want true or false")
	}
	return &b, nil
}

// limit reads a dollar amount: a JSON number or a decimal string, converted
// exactly (money.ParseLimit: no rounding, not negative). nil when absent.
func (f fields) limit(k string) (*money.Nanos, *openai.Error) {
	if !f.set(k) {
		return nil, nil
	}
	n, err := parseLimit(f[k])
	if err != nil {
		return nil, badRequest(k, k+": "+err.Error())
	}
	return &n, nil
}

// parseLimit parses a JSON number or numeric string as dollars, exactly.
func parseLimit(raw json.RawMessage) (money.Nanos, error) {
	text := string(bytes.TrimSpace(raw))
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, err
		}
	}
	n, err := money.ParseLimit(text)
	if err != nil {
		return 0, fmt.Errorf("want a dollar amount such as 10 or \"0.25\" (exact to 1e-9, not negative): %w", err)
	}
	return n, nil
}

// duration reads a budget duration (30s, 1h, 1d, 7d, 30d, 1mo), checked
// here so the error names the request's field.
func (f fields) duration(k string) (string, *openai.Error) {
	s, oerr := f.str(k)
	if oerr != nil || s == "" {
		return s, oerr
	}
	if _, err := window.Parse(s); err != nil {
		return "", badRequest(k, k+": "+err.Error())
	}
	return s, nil
}

// expiry reads LiteLLM's key duration ("30d", "1h"...) as an expiry time
// from now; "" and null mean none.
func (f fields) expiry(k string, now time.Time) (*time.Time, *openai.Error) {
	s, oerr := f.str(k)
	if oerr != nil || s == "" {
		return nil, oerr
	}
	d, err := window.Parse(s)
	if err != nil || d.IsLifetime() {
		return nil, badRequest(k, fmt.Sprintf("%s: %q is not a duration such as 30s, 1h, 30d or 1mo", k, s))
	}
	var t time.Time
	if m := d.Months(); m > 0 {
		t = now.AddDate(0, int(m), 0)
	} else {
		t = now.Add(d.Fixed())
	}
	return &t, nil
}

// metadata reads a metadata object into the budget service's string map:
// strings as they are, any other value as its compact JSON text (numbers keep
// their exact text). metadata.tags (LiteLLM's older place for a key's tags)
// is returned apart, not stored twice.
func (f fields) metadata(k string) (map[string]string, []string, *openai.Error) {
	if !f.set(k) {
		return nil, nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(f[k], &obj); err != nil {
		return nil, nil, badRequest(k, k+": want an object")
	}
	out := make(map[string]string, len(obj))
	var tags []string
	for key, v := range obj {
		if key == "tags" {
			if err := json.Unmarshal(v, &tags); err != nil && string(v) != "null" {
				return nil, nil, badRequest(k, k+".tags: want a list of strings")
			}
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[key] = s
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, nil, badRequest(k, k+"."+key+": "+err.Error())
		}
		out[key] = buf.String()
	}
	return out, tags, nil
}

// modelBudget is one model_max_budget entry.
type modelBudget struct {
	Limit    money.Nanos
	Duration string
}

// modelMaxBudget reads LiteLLM's model_max_budget: {"group": {"budget_limit":
// "10", "time_period": "1d"}}, or the legacy {"group": 10} (a lifetime
// budget).
func (f fields) modelMaxBudget(k string) (map[string]modelBudget, *openai.Error) {
	if !f.set(k) {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(f[k], &obj); err != nil {
		return nil, badRequest(k, k+`: want {"model-group": {"budget_limit": "10", "time_period": "1d"}}`)
	}
	out := make(map[string]modelBudget, len(obj))
	for group, v := range obj {
		param := k + "." + group
		v = bytes.TrimSpace(v)
		if len(v) > 0 && v[0] != '{' {
			n, err := parseLimit(v)
			if err != nil {
				return nil, badRequest(param, param+": "+err.Error())
			}
			out[group] = modelBudget{Limit: n}
			continue
		}
		var e fields
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, badRequest(param, param+": want an object with budget_limit and time_period")
		}
		lim, oerr := e.limit("budget_limit")
		if oerr == nil && lim == nil {
			lim, oerr = e.limit("max_budget")
		}
		if oerr != nil {
			return nil, badRequest(param, param+"."+oerr.Message)
		}
		if lim == nil {
			return nil, badRequest(param, param+".budget_limit: required")
		}
		d, oerr := e.duration("time_period")
		if oerr == nil && d == "" {
			d, oerr = e.duration("budget_duration")
		}
		if oerr != nil {
			return nil, badRequest(param, param+"."+oerr.Message)
		}
		out[group] = modelBudget{Limit: *lim, Duration: d}
	}
	return out, nil
}

// noList refuses a list field unless it is empty or means "everything"
// ("all-proxy-models", "*"): the budget service stores no model allow-list
// for teams, users and organizations, and storing it unenforced would look
// like a restriction that is not there.
func (f fields) noList(k, why string) *openai.Error {
	l, oerr := f.strs(k)
	if oerr != nil {
		return oerr
	}
	for _, m := range l {
		if m != "all-proxy-models" && m != "*" {
			return unsupported(k, why)
		}
	}
	return nil
}
