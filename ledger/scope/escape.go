package scope

import (
	"errors"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// mustEscape marks the bytes CounterKey percent-encodes: anything outside
// printable ASCII, the escape byte, the key's separators (: { }), and Redis
// glob metacharacters (* ? [ ] \). A table keeps the hot loop branch-light.
var mustEscape = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c <= ' ' || c >= 0x7f || strings.IndexByte(`%:{}*?[]\`, byte(c)) >= 0
	}
	return t
}()

// appendEscaped copies runs of safe bytes in one append each: IDs are almost
// always entirely safe, and per-byte appends dominated CounterKey's profile.
func appendEscaped(b []byte, s string) []byte {
	run := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; mustEscape[c] {
			b = append(b, s[run:i]...)
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&0xf])
			run = i + 1
		}
	}
	return append(b, s[run:]...)
}

// unescape decodes percent escapes. It accepts either hex case; the
// canonical-form check in ParseCounterKey rejects what CounterKey would not
// have written.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated escape")
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", errors.New("bad escape")
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return string(out), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
