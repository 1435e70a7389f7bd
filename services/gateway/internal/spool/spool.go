// Package spool is the gateway's durable local queue for events that could not
// be published to JetStream. It is a directory of append-only segment files;
// each record is framed as
//
//	uint32 LE  length of payload
//	uint32 LE  CRC-32C of (length bytes, payload)
//	payload:   uvarint len(subject) subject, uvarint len(msgID) msgID, data
//
// An Append returns once the record is on disk (fsync). Concurrent appends
// share fsyncs (group commit), so a burst while NATS is away costs one fsync per
// batch, not per event. A crash can leave a torn last record; the frame's
// length and CRC detect it, and it is ignored (it was never acknowledged to
// anyone: its Append had not returned).
//
// Drain hands records to a publisher in append order, oldest segment first,
// and deletes a segment only once every record in it was published and
// acknowledged. A restart re-reads a partly drained segment from its start, so
// a few records may be published twice; they keep their Nats-Msg-Id, and
// JetStream's duplicate window and the ledger's unique event id make that
// harmless. Nothing is lost across a restart.
//
// A spool directory has one writer. Open takes an exclusive flock(2) on the
// directory's .lock file and fails with ErrLocked, naming the directory, while
// another open Spool holds it; Close (or the process's exit) releases it.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Record is one spooled message.
type Record struct {
	Subject string
	MsgID   string
	Data    []byte
}

const (
	headerSize = 8
	// MaxRecordSize bounds a record; a larger length in a frame is corruption.
	MaxRecordSize = 64 << 20
	// DefaultSegmentSize is the size past which a new segment is started.
	DefaultSegmentSize = 16 << 20
	suffix             = ".spool"
	// drainBatch is how many records are handed to the publisher at once.
	drainBatch = 256
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("spool: closed")

// Spool is a durable FIFO of records on local disk. Safe for concurrent use.
type Spool struct {
	dir        string
	log        *slog.Logger
	maxSegment int64
	lock       *os.File // holds the directory's flock until Close

	// syncMu serializes fsyncs and segment rotation; it is taken before mu.
	syncMu sync.Mutex
	synced uint64 // appends known durable; guarded by syncMu

	mu         sync.Mutex
	active     *os.File
	activeSeq  uint64
	activeSize int64
	activeRecs int64
	nextSeq    uint64
	written    uint64   // appends so far
	closed     []uint64 // closed segments awaiting drain, oldest first
	isClosed   bool

	pending atomic.Int64

	drainMu  sync.Mutex
	drainSeg uint64
	drainOff int64
}

// Option configures a Spool.
type Option func(*Spool)

// WithSegmentSize sets the size past which a new segment file is started.
func WithSegmentSize(n int64) Option { return func(s *Spool) { s.maxSegment = n } }

// Open opens (creating if needed) the spool in dir and counts the records
// already there. Appends always go to a new segment: existing ones are only
// drained, so a torn tail left by a crash is never appended after.
func Open(dir string, log *slog.Logger, opts ...Option) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, log: log, maxSegment: DefaultSegmentSize, nextSeq: 1, lock: lock}
	for _, o := range opts {
		o(s)
	}
	if err := s.load(); err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	return s, nil
}

// load counts the records of the segments already in the directory and queues
// those segments for draining.
func (s *Spool) load() error {
	seqs, err := s.segments()
	if err != nil {
		return err
	}
	var total int64
	for _, seq := range seqs {
		b, err := os.ReadFile(s.path(seq))
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		recs, _, torn := decodeAll(b, 0)
		if torn != nil {
			s.log.Warn("spool: ignoring a torn or corrupt record at the end of a segment", "segment", s.path(seq), "err", torn, "valid_records", len(recs))
		}
		total += int64(len(recs))
		s.closed = append(s.closed, seq)
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	s.pending.Store(total)
	return nil
}

func (s *Spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, suffix))
}

func (s *Spool) segments() ([]uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// Len is the number of records not yet drained.
func (s *Spool) Len() int64 { return s.pending.Load() }

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

func encode(r Record) []byte {
	n := binary.MaxVarintLen64*2 + len(r.Subject) + len(r.MsgID) + len(r.Data)
	b := make([]byte, headerSize, headerSize+n)
	b = binary.AppendUvarint(b, uint64(len(r.Subject)))
	b = append(b, r.Subject...)
	b = binary.AppendUvarint(b, uint64(len(r.MsgID)))
	b = append(b, r.MsgID...)
	b = append(b, r.Data...)
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(b)-headerSize))
	crc := crc32.Update(crc32.Checksum(b[0:4], castagnoli), castagnoli, b[headerSize:])
	binary.LittleEndian.PutUint32(b[4:8], crc)
	return b
}

// decodeAll decodes the records of a segment from offset off. It stops at the
// end of the data or at the first frame that is torn or fails its CRC, which
// it returns as torn. offs[i] is the offset just past record i.
func decodeAll(b []byte, off int64) (recs []Record, offs []int64, torn error) {
	for int(off) < len(b) {
		rest := b[off:]
		if len(rest) < headerSize {
			return recs, offs, fmt.Errorf("torn header at offset %d", off)
		}
		n := binary.LittleEndian.Uint32(rest[0:4])
		if n > MaxRecordSize || int(n) > len(rest)-headerSize {
			return recs, offs, fmt.Errorf("torn record at offset %d (length %d, %d bytes left)", off, n, len(rest)-headerSize)
		}
		payload := rest[headerSize : headerSize+int(n)]
		crc := crc32.Update(crc32.Checksum(rest[0:4], castagnoli), castagnoli, payload)
		if crc != binary.LittleEndian.Uint32(rest[4:8]) {
			return recs, offs, fmt.Errorf("CRC mismatch at offset %d", off)
		}
		r, err := decodePayload(payload)
		if err != nil {
			return recs, offs, fmt.Errorf("record at offset %d: %w", off, err)
		}
		recs = append(recs, r)
		off += headerSize + int64(n)
		offs = append(offs, off)
	}
	return recs, offs, nil
}

func decodePayload(p []byte) (Record, error) {
	var r Record
	field := func() (string, error) {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return "", errors.New("bad field length")
		}
		v := string(p[k : k+int(l)])
		p = p[k+int(l):]
		return v, nil
	}
	var err error
	if r.Subject, err = field(); err != nil {
		return r, err
	}
	if r.MsgID, err = field(); err != nil {
		return r, err
	}
	r.Data = p
	return r, nil
}

// Append writes r and returns once it is durable.
func (s *Spool) Append(r Record) error {
	frame := encode(r)
	s.mu.Lock()
	if s.isClosed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.active != nil && s.activeSize >= s.maxSegment {
		s.mu.Unlock()
		s.syncMu.Lock()
		s.mu.Lock()
		var err error
		if s.active != nil && s.activeSize >= s.maxSegment { // not rotated meanwhile
			err = s.rotateLocked()
		}
		s.syncMu.Unlock()
		if err == nil && s.isClosed {
			err = ErrClosed
		}
		if err != nil {
			s.mu.Unlock()
			return err
		}
	}
	if s.active == nil {
		if err := s.createLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	if _, err := s.active.Write(frame); err != nil {
		// Cut a partial frame off so later appends stay readable; if even that
		// fails, the next append starts a new segment.
		if terr := s.active.Truncate(s.activeSize); terr != nil {
			_ = s.active.Close()
			s.closed = append(s.closed, s.activeSeq)
			s.active = nil
		}
		s.mu.Unlock()
		return fmt.Errorf("spool: write: %w", err)
	}
	s.activeSize += int64(len(frame))
	s.activeRecs++
	s.written++
	mine := s.written
	s.mu.Unlock()
	s.pending.Add(1)
	return s.syncUpTo(mine)
}

// syncUpTo returns once append number n is durable. Whoever holds syncMu
// fsyncs every append written so far, so appends waiting behind it find their
// record already synced and return without an fsync of their own.
func (s *Spool) syncUpTo(n uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= n {
		return nil
	}
	s.mu.Lock()
	f, upto := s.active, s.written
	s.mu.Unlock()
	if f == nil {
		// Rotated away; rotation synced it.
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	s.synced = upto
	return nil
}

// createLocked starts a new active segment. Holds mu.
func (s *Spool) createLocked() error {
	seq := s.nextSeq
	f, err := os.OpenFile(s.path(seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		return err
	}
	s.nextSeq++
	s.active, s.activeSeq, s.activeSize, s.activeRecs = f, seq, 0, 0
	return nil
}

// rotateLocked closes the active segment (synced) and queues it for draining.
// Holds syncMu and mu.
func (s *Spool) rotateLocked() error {
	if s.active == nil {
		return nil
	}
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	if err := s.active.Close(); err != nil {
		return fmt.Errorf("spool: close segment: %w", err)
	}
	s.synced = s.written
	s.closed = append(s.closed, s.activeSeq)
	s.active = nil
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: fsync dir: %w", err)
	}
	return nil
}

// Drain passes every spooled record to publish, in append order, in batches.
// publish returns nil only once every record of the batch is acknowledged.
// On a publish error Drain stops and returns it; the next Drain resumes at the
// first unacknowledged batch. A segment is deleted once all of it is acknowledged.
func (s *Spool) Drain(publish func([]Record) error) error {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	for {
		s.mu.Lock()
		if len(s.closed) == 0 && s.active != nil && s.activeRecs > 0 {
			s.mu.Unlock()
			s.syncMu.Lock()
			s.mu.Lock()
			err := s.rotateLocked()
			s.syncMu.Unlock()
			if err != nil {
				s.mu.Unlock()
				return err
			}
		}
		if len(s.closed) == 0 {
			s.mu.Unlock()
			return nil
		}
		seq := s.closed[0]
		s.mu.Unlock()

		if s.drainSeg != seq {
			s.drainSeg, s.drainOff = seq, 0
		}
		b, err := os.ReadFile(s.path(seq))
		if err != nil {
			return fmt.Errorf("spool: read segment: %w", err)
		}
		recs, offs, torn := decodeAll(b, s.drainOff)
		if torn != nil {
			s.log.Warn("spool: skipping a torn or corrupt record; the records before it are drained", "segment", s.path(seq), "err", torn)
		}
		for len(recs) > 0 {
			n := min(len(recs), drainBatch)
			if err := publish(recs[:n]); err != nil {
				return err
			}
			s.drainOff = offs[n-1]
			s.pending.Add(-int64(n))
			recs, offs = recs[n:], offs[n:]
		}
		if err := os.Remove(s.path(seq)); err != nil {
			return fmt.Errorf("spool: remove drained segment: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			return err
		}
		s.mu.Lock()
		s.closed = s.closed[1:]
		s.mu.Unlock()
		s.drainSeg, s.drainOff = 0, 0
	}
}

// Close syncs and closes the active segment and releases the directory's
// lock. Records stay on disk for the next Open.
func (s *Spool) Close() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isClosed = true
	err := s.rotateLocked()
	lock := s.lock
	s.lock = nil // a second Close must not close the file again
	return errors.Join(err, unlockDir(lock))
}
