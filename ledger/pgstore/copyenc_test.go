package pgstore

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// copyField is one field of a binary COPY row; nil for NULL.
type copyField []byte

// readCopyRows splits a binary COPY stream into rows of fields, checking the
// framing Postgres requires: signature, flags and extension, a field count
// per row, the -1 trailer and nothing after it.
func readCopyRows(t *testing.T, b []byte) [][]copyField {
	t.Helper()
	if !strings.HasPrefix(string(b), "PGCOPY\n\xff\r\n\x00") || len(b) < 19 {
		t.Fatalf("no binary COPY signature: %q", b[:min(len(b), 19)])
	}
	if flags, ext := binary.BigEndian.Uint32(b[11:]), binary.BigEndian.Uint32(b[15:]); flags != 0 || ext != 0 {
		t.Fatalf("flags %d, header extension %d; want 0, 0", flags, ext)
	}
	b = b[19:]
	var rows [][]copyField
	for {
		n := int16(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n == -1 {
			if len(b) != 0 {
				t.Fatalf("%d bytes after the trailer", len(b))
			}
			return rows
		}
		row := make([]copyField, n)
		for i := range row {
			size := int32(binary.BigEndian.Uint32(b))
			b = b[4:]
			if size >= 0 {
				row[i], b = b[:size], b[size:]
			}
		}
		rows = append(rows, row)
	}
}

// TestCopyRowsDecodeToTheEntries reads the COPY stream back with pgx's
// binary decoders (the same wire forms Postgres's recv functions read) and
// compares every column with the entry it came from.
func TestCopyRowsDecodeToTheEntries(t *testing.T) {
	at := time.Date(2026, 3, 10, 12, 0, 0, 123456000, time.UTC)
	entries := []Entry{
		{
			EventID: "0190b6e0-0000-7000-8000-00000000000b", CorrectsEventID: "0190B6E0-0000-7000-8000-0000000000AA",
			OccurredAt: at, KeyID: "key-1", TeamID: "team-é", UserID: "u", OrgID: "o", EndUserID: "cust",
			Tags: []string{"a\"b", "prod", `x\y`}, ModelGroup: "g", DeploymentID: "d", Provider: "p", BackendModel: "p/g",
			InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3, CacheCreationTokens: 4, CacheCreation1hTokens: 5, ReasoningTokens: 6,
			TotalNanos: -7, Components: []Component{{Name: "input", Tokens: 1, CostNanos: -7, ExactCost: "-0.000000007"}},
			Priced: false, UnknownComponents: []string{"cache_read"}, CatalogVersion: "v1", ReservationID: "lease:x/1/7", RequestID: "call-1",
			StreamSeq: 1 << 40, CounterKeys: []string{"k1", "k2"},
		},
		{
			EventID: "0190b6e0-0000-7000-8000-00000000000a", OccurredAt: at.Add(-time.Hour * 24 * 365 * 40),
			KeyID: "key-2", ModelGroup: "g", DeploymentID: "d", Priced: true, CatalogVersion: "v1",
		},
	}
	ids := make([][16]byte, len(entries))
	for i := range entries {
		ids[i], _ = parseUUID(entries[i].EventID)
	}
	uniq := []int{1, 0} // the rows go in this order
	rows := readCopyRows(t, appendCopyRows(nil, entries, ids, uniq))
	if len(rows) != len(uniq) {
		t.Fatalf("%d rows; want %d", len(rows), len(uniq))
	}
	columns := strings.Split(copyColumns, ",")
	m := pgtype.NewMap()
	for r, i := range uniq {
		e, row := entries[i], rows[r]
		if len(row) != copyFields || len(columns) != copyFields {
			t.Fatalf("row of %d fields, %d columns; want %d", len(row), len(columns), copyFields)
		}
		var (
			eventID, corrects             pgtype.UUID
			occurred                      time.Time
			texts                         [9]string
			ints                          [8]int64
			tags, unknown, keys           []string
			components                    string
			priced                        bool
			catalog, reservation, request string
		)
		scan := func(col int, oid uint32, into any) {
			t.Helper()
			if err := m.Scan(oid, pgtype.BinaryFormatCode, row[col], into); err != nil {
				t.Fatalf("row %d, %s: %v", r, strings.TrimSpace(columns[col]), err)
			}
		}
		scan(0, pgtype.UUIDOID, &eventID)
		scan(1, pgtype.UUIDOID, &corrects)
		scan(2, pgtype.TimestamptzOID, &occurred)
		for j, col := range []int{3, 4, 5, 6, 7, 9, 10, 11, 12} {
			scan(col, pgtype.TextOID, &texts[j])
		}
		scan(8, pgtype.TextArrayOID, &tags)
		for j := range 7 {
			scan(13+j, pgtype.Int8OID, &ints[j])
		}
		scan(20, pgtype.JSONOID, &components)
		scan(21, pgtype.BoolOID, &priced)
		scan(22, pgtype.TextArrayOID, &unknown)
		scan(23, pgtype.TextOID, &catalog)
		scan(24, pgtype.TextOID, &reservation)
		scan(25, pgtype.Int8OID, &ints[7])
		scan(26, pgtype.TextArrayOID, &keys)
		scan(27, pgtype.TextOID, &request)

		wantCorrects, _ := parseUUID(e.CorrectsEventID)
		var gotComponents []Component
		if err := json.Unmarshal([]byte(components), &gotComponents); err != nil {
			t.Fatalf("components %q: %v", components, err)
		}
		got := []any{
			formatUUID(eventID.Bytes), corrects.Valid, corrects.Valid && corrects.Bytes == wantCorrects, occurred.UTC(),
			texts, ints, nonNil(tags), gotComponents, priced, nonNil(unknown), catalog, reservation, nonNil(keys), request,
		}
		want := []any{
			e.EventID, e.CorrectsEventID != "", e.CorrectsEventID != "", e.OccurredAt,
			[9]string{e.KeyID, e.TeamID, e.UserID, e.OrgID, e.EndUserID, e.ModelGroup, e.DeploymentID, e.Provider, e.BackendModel},
			[8]int64{e.InputTokens, e.OutputTokens, e.CacheReadTokens, e.CacheCreationTokens, e.CacheCreation1hTokens, e.ReasoningTokens, e.TotalNanos, int64(e.StreamSeq)},
			nonNil(e.Tags), nonNil(e.Components), e.Priced, nonNil(e.UnknownComponents), e.CatalogVersion, e.ReservationID, nonNil(e.CounterKeys), e.RequestID,
		}
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("row %d (event %s), value %d: got %#v; want %#v", r, e.EventID, k, got[k], want[k])
			}
		}
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
