package pgstore

import "strconv"

// The insert path turns three array columns and the components of every row
// into text (see insertSQL for why). It appends them all into one buffer per
// batch and hands each row a substring of one string made from it: one
// allocation per column per batch instead of a few per row (encoding/json's
// reflection and a strings.Builder per array measured ~7% of ingest CPU).

// textColumn collects one text value per row in a shared buffer.
type textColumn struct {
	buf  []byte
	ends []int
}

func newTextColumn(rows, bytesPerRow int) *textColumn {
	return &textColumn{buf: make([]byte, 0, rows*bytesPerRow), ends: make([]int, 0, rows)}
}

// end closes the current row's value.
func (c *textColumn) end() { c.ends = append(c.ends, len(c.buf)) }

// values returns every row's value, in order.
func (c *textColumn) values() inPlace[textElem] {
	all := string(c.buf)
	out := make(inPlace[textElem], len(c.ends))
	start := 0
	for i, e := range c.ends {
		out[i] = textElem(all[start:e])
		start = e
	}
	return out
}

// appendArrayLiteral appends a Postgres text[] literal with every element
// quoted, so no element can be read as NULL or split on a comma or brace.
func appendArrayLiteral(b []byte, vs []string) []byte {
	if len(vs) == 0 {
		return append(b, "{}"...)
	}
	b = append(b, '{')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(v); j++ {
			if v[j] == '"' || v[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, v[j])
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendComponentsJSON appends cs as a JSON array of objects, the same
// document encoding/json makes of []Component (same keys, omitempty on the
// same fields), though not byte for byte: only what JSON requires is
// escaped. Strings are valid UTF-8 without NUL (validate checked them).
func appendComponentsJSON(b []byte, cs []Component) []byte {
	b = append(b, '[')
	for i := range cs {
		c := &cs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, c.Name)
		b = append(b, `,"tokens":`...)
		b = strconv.AppendInt(b, c.Tokens, 10)
		for _, f := range [...]struct{ key, v string }{
			{`,"unit_price":`, c.UnitPrice}, {`,"source":`, c.Source},
			{`,"source_detail":`, c.SourceDetail}, {`,"exact_cost":`, c.ExactCost},
		} {
			if f.v != "" {
				b = append(b, f.key...)
				b = appendJSONString(b, f.v)
			}
		}
		b = append(b, `,"cost_nanos":`...)
		b = strconv.AppendInt(b, c.CostNanos, 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string: quote, backslash and control
// characters escaped, everything else (valid UTF-8) as is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 0x20 && ch != '"' && ch != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch ch {
		case '"', '\\':
			b = append(b, '\\', ch)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
