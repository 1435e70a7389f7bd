package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func rec(i int) Record {
	return Record{Subject: fmt.Sprintf("usage.recorded.%d", i%16), MsgID: fmt.Sprintf("id-%04d", i), Data: []byte(fmt.Sprintf("payload %d", i))}
}

func open(t *testing.T, dir string, opts ...Option) *Spool {
	t.Helper()
	s, err := Open(dir, quiet, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drainAll drains s and returns the message ids in the order published.
func drainAll(t *testing.T, s *Spool) []string {
	t.Helper()
	var ids []string
	if err := s.Drain(func(rs []Record) error {
		for _, r := range rs {
			ids = append(ids, r.MsgID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func want(from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, rec(i).MsgID)
	}
	return ids
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRestartReplaysInOrder(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, WithSegmentSize(200)) // several segments
	for i := 0; i < 20; i++ {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if s.Len() != 20 {
		t.Fatalf("Len after restart = %d; want 20", s.Len())
	}
	for i := 20; i < 25; i++ {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := drainAll(t, s)
	if !equal(got, want(0, 25)) {
		t.Fatalf("drained %v", got)
	}
	if s.Len() != 0 {
		t.Fatalf("Len after drain = %d", s.Len())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(files) != 0 {
		t.Fatalf("drained segments left behind: %v", files)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	s := open(t, t.TempDir())
	in := Record{Subject: "usage.recorded.7", MsgID: "0192-abc", Data: []byte{0, 1, 2, 255}}
	if err := s.Append(in); err != nil {
		t.Fatal(err)
	}
	var out Record
	_ = s.Drain(func(rs []Record) error { out = rs[0]; return nil })
	if out.Subject != in.Subject || out.MsgID != in.MsgID || string(out.Data) != string(in.Data) {
		t.Fatalf("%+v != %+v", out, in)
	}
}

func TestTornLastRecordIsIgnored(t *testing.T) {
	for name, tear := range map[string]func(path string) error{
		"truncated mid-record": func(p string) error {
			st, _ := os.Stat(p)
			return os.Truncate(p, st.Size()-5)
		},
		"truncated mid-header": func(p string) error {
			st, _ := os.Stat(p)
			return os.Truncate(p, st.Size()-int64(len(encode(rec(4))))+3)
		},
		"garbage appended": func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
			return err
		},
		"flipped byte in last record": func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-2] ^= 0xff
			return os.WriteFile(p, b, 0o640)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			for i := 0; i < 5; i++ {
				if err := s.Append(rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			_ = s.Close()
			files, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
			if len(files) != 1 {
				t.Fatalf("files %v", files)
			}
			if err := tear(files[0]); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir)
			wantN := 4
			if name == "garbage appended" {
				wantN = 5
			}
			if s.Len() != int64(wantN) {
				t.Fatalf("Len = %d; want %d valid records", s.Len(), wantN)
			}
			// New appends after the torn segment stay readable.
			if err := s.Append(rec(100)); err != nil {
				t.Fatal(err)
			}
			got := drainAll(t, s)
			if !equal(got, append(want(0, wantN), rec(100).MsgID)) {
				t.Fatalf("drained %v", got)
			}
		})
	}
}

func TestFailedPublishKeepsRecordsAndResumes(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := 0; i < drainBatch+10; i++ {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	calls := 0
	err := s.Drain(func(rs []Record) error {
		calls++
		if calls == 2 {
			return errors.New("nats down")
		}
		for _, r := range rs {
			got = append(got, r.MsgID)
		}
		return nil
	})
	if err == nil {
		t.Fatal("want the publish error")
	}
	if s.Len() != 10 {
		t.Fatalf("Len = %d; the acknowledged first batch is gone, 10 remain", s.Len())
	}
	got = append(got, drainAll(t, s)...)
	if !equal(got, want(0, drainBatch+10)) {
		t.Fatalf("drained %d ids, out of order or duplicated", len(got))
	}
}

func TestUnackedSegmentSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := 0; i < 3; i++ {
		_ = s.Append(rec(i))
	}
	_ = s.Drain(func([]Record) error { return errors.New("no ack") })
	_ = s.Close()
	s = open(t, dir)
	if got := drainAll(t, s); !equal(got, want(0, 3)) {
		t.Fatalf("drained %v after restart", got)
	}
}

func TestConcurrentAppendsAreAllDurableAndOrderedPerWriter(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, WithSegmentSize(4096))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for i := 0; i < 100; i++ {
				if err := s.Append(Record{Subject: "s", MsgID: fmt.Sprintf("%d-%03d", w, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	_ = s.Close()
	s = open(t, dir)
	got := drainAll(t, s)
	if len(got) != 800 {
		t.Fatalf("%d records; want 800", len(got))
	}
	last := map[byte]string{}
	for _, id := range got {
		if prev := last[id[0]]; prev != "" && prev > id {
			t.Fatalf("writer %c: %s after %s", id[0], id, prev)
		}
		last[id[0]] = id
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	s := open(t, t.TempDir())
	_ = s.Close()
	if err := s.Append(rec(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("err %v", err)
	}
}
