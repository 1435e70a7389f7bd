package pgstore

import (
	"encoding/binary"
	"sync"
	"time"
)

// The insert fast path streams rows with COPY in Postgres's binary format
// (see copySQL for why). The format is small and fixed, so the rows are
// written here by hand into one pooled buffer per batch: no reflection, no
// per-value boxing, and no allocation per row. Each field is its length
// (int32, big endian; -1 for NULL) and the type's binary "send" form:
//
//	uuid         16 bytes
//	timestamptz  int64 microseconds since 2000-01-01 00:00 UTC
//	bigint       int64
//	boolean      one byte
//	text, json   the bytes as they are (json's binary form is its text)
//	text[]       ndim, has-null flag, element type oid, per dimension its
//	             length and lower bound, then every element as a field
//
// The Postgres documentation ("COPY", "Binary Format") describes the
// framing; the types' send/recv functions define the rest.

// copyColumns are the columns the fast path writes, in field order; the
// database fills recorded_at and tx_id.
const copyColumns = `event_id, corrects_event_id, occurred_at,
    key_id, team_id, user_id, org_id, end_user_id, tags,
    model_group, deployment_id, provider, backend_model,
    input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cache_creation_1h_tokens, reasoning_tokens,
    total_nanos, components, priced, unknown_components, catalog_version, reservation_id, stream_seq, counter_keys, request_id`

// copyFields is how many columns copyColumns names.
const copyFields = 28

const (
	// copySignature is the 11-byte signature, then the flags field and the
	// header extension length, both zero.
	copySignature = "PGCOPY\n\xff\r\n\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"
	textOID       = 25
	// postgresEpochMicros is 2000-01-01 00:00 UTC, where timestamptz counts
	// from, in Unix microseconds.
	postgresEpochMicros = 946_684_800_000_000
)

// copyBufs keeps batch buffers between inserts: a 2,000-entry batch is
// about a megabyte, which would otherwise be a fresh large allocation (and
// garbage) per batch.
var copyBufs = sync.Pool{New: func() any { return new([]byte) }}

// appendCopyRows appends the binary COPY stream of the unique entries, in
// uniq's order, whose parsed event ids are ids.
func appendCopyRows(b []byte, entries []Entry, ids [][16]byte, uniq []int) []byte {
	b = append(b, copySignature...)
	for _, i := range uniq {
		e := &entries[i]
		b = binary.BigEndian.AppendUint16(b, copyFields)
		b = appendUUIDField(b, ids[i])
		if e.CorrectsEventID == "" {
			b = appendNullField(b)
		} else {
			cid, _ := parseUUID(e.CorrectsEventID) // validated
			b = appendUUIDField(b, cid)
		}
		b = appendTimeField(b, e.OccurredAt)
		for _, s := range [...]string{e.KeyID, e.TeamID, e.UserID, e.OrgID, e.EndUserID} {
			b = appendTextField(b, s)
		}
		b = appendTextArrayField(b, e.Tags)
		for _, s := range [...]string{e.ModelGroup, e.DeploymentID, e.Provider, e.BackendModel} {
			b = appendTextField(b, s)
		}
		for _, v := range [...]int64{
			e.InputTokens, e.OutputTokens, e.CacheReadTokens, e.CacheCreationTokens,
			e.CacheCreation1hTokens, e.ReasoningTokens, e.TotalNanos,
		} {
			b = appendInt8Field(b, v)
		}
		b = appendComponentsField(b, e.Components)
		b = appendBoolField(b, e.Priced)
		b = appendTextArrayField(b, e.UnknownComponents)
		b = appendTextField(b, e.CatalogVersion)
		b = appendTextField(b, e.ReservationID)
		b = appendInt8Field(b, int64(e.StreamSeq)) // validated to fit
		b = appendTextArrayField(b, e.CounterKeys)
		b = appendTextField(b, e.RequestID)
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // the trailer: a field count of -1
}

func appendNullField(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

func appendUUIDField(b []byte, id [16]byte) []byte {
	b = binary.BigEndian.AppendUint32(b, 16)
	return append(b, id[:]...)
}

func appendTimeField(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixMicro()-postgresEpochMicros))
}

func appendInt8Field(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendBoolField(b []byte, v bool) []byte {
	b = binary.BigEndian.AppendUint32(b, 1)
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendTextField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendTextArrayField appends vs as a one-dimensional text[] (an empty one
// has no dimensions, as Postgres writes '{}').
func appendTextArrayField(b []byte, vs []string) []byte {
	size := 12
	if len(vs) > 0 {
		size += 8
		for _, v := range vs {
			size += 4 + len(v)
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	if len(vs) == 0 {
		b = binary.BigEndian.AppendUint32(b, 0) // no dimensions
		b = binary.BigEndian.AppendUint32(b, 0) // no NULL element
		return binary.BigEndian.AppendUint32(b, textOID)
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, textOID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(vs)))
	b = binary.BigEndian.AppendUint32(b, 1) // lower bound
	for _, v := range vs {
		b = appendTextField(b, v)
	}
	return b
}

// appendComponentsField appends the components as the json column's text,
// its length written once the text is.
func appendComponentsField(b []byte, cs []Component) []byte {
	at := len(b)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = appendComponentsJSON(b, cs)
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}
