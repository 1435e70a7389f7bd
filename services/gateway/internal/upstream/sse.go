package upstream

import (
	"bufio"
	"bytes"
	"io"
)

// sseReader reads server-sent events: it returns each event's data (data lines
// joined by newlines) and its event name.
type sseReader struct {
	sc    *bufio.Scanner
	data  []byte
	event []byte
}

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	// A chunk may carry a large tool-call argument or a base64 image.
	sc.Buffer(make([]byte, 0, 16<<10), 16<<20)
	return &sseReader{sc: sc}
}

// Next returns the next event's name and data; the slices are valid until the
// next call. It returns io.EOF at the end of the body.
func (r *sseReader) Next() (event, data []byte, err error) {
	r.data, r.event = r.data[:0], r.event[:0]
	have := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			if have {
				return r.event, r.data, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, val, _ := bytes.Cut(line, []byte{':'})
		if len(val) > 0 && val[0] == ' ' {
			val = val[1:]
		}
		switch string(name) {
		case "data":
			if have {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, val...)
			have = true
		case "event":
			r.event = append(r.event, val...)
		}
	}
	if err := r.sc.Err(); err != nil {
		return nil, nil, err
	}
	if have {
		return r.event, r.data, nil
	}
	return nil, nil, io.EOF
}
