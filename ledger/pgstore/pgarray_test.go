package pgstore

import (
	"bytes"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// The in-place arrays put the same bytes on the wire as the plain slices
// pgx would otherwise encode, in both formats (text is what the simple
// protocol, e.g. behind a transaction-pooling proxy, sends), NULLs included.
func TestInPlaceArraysEncodeLikePlainSlices(t *testing.T) {
	at := time.Date(2026, 3, 10, 12, 0, 0, 123456000, time.UTC)
	id := pgtype.UUID{Bytes: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Valid: true}
	for _, c := range []struct {
		name        string
		oid         uint32
		plain, fast any
	}{
		{"text", pgtype.TextArrayOID, []string{"a", "", `q"x,{y}`, "NULL", "ü"}, inPlace[textElem]{"a", "", `q"x,{y}`, "NULL", "ü"}},
		{"int8", pgtype.Int8ArrayOID, []int64{0, -1, 255, 256, 1<<63 - 1}, inPlace[int8Elem]{0, -1, 255, 256, 1<<63 - 1}},
		{"timestamptz", pgtype.TimestamptzArrayOID, []time.Time{at, at.Add(time.Hour)}, inPlace[timeElem]{timeElem(at), timeElem(at.Add(time.Hour))}},
		{"uuid with NULL", pgtype.UUIDArrayOID, []pgtype.UUID{id, {}}, inPlace[pgtype.UUID]{id, {}}},
		{"empty", pgtype.TextArrayOID, []string{}, inPlace[textElem]{}},
	} {
		for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
			m := pgtype.NewMap()
			want, err := m.Encode(c.oid, format, c.plain, nil)
			if err != nil {
				t.Fatalf("%s/%d plain: %v", c.name, format, err)
			}
			got, err := m.Encode(c.oid, format, c.fast, nil)
			if err != nil {
				t.Fatalf("%s/%d in place: %v", c.name, format, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s/%d: in place %q, plain %q", c.name, format, got, want)
			}
		}
	}
}
