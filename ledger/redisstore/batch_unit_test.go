package redisstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/spendledger/spendledger/ledger/scope"
	"github.com/spendledger/spendledger/ledger/window"
)

func testKey(kind scope.Kind, id string) string {
	return scope.CounterKey(scope.Scope{Kind: kind, ID: id}, window.Spec{Duration: window.MustParse("1d"), Calendar: true}, 20522)
}

// A long batch on a single node is one sequence of calls of at most
// MaxBatchEvents events, in order; each call numbers its distinct counters
// from 1 in first-use order, and every (event, counter) pair maps back.
func TestPlanBatchSingleNode(t *testing.T) {
	s := &Store{}
	team := testKey(scope.KindTeam, "t")
	var as []Application
	for i := range 2*MaxBatchEvents + 10 {
		as = append(as, Application{EventID: fmt.Sprintf("e%d", i), StreamSeq: uint64(100 + i), TxID: 1, Cost: 1,
			Keys: []string{testKey(scope.KindKey, fmt.Sprint(i%5)), team}, PruneFloor: uint64(50 + i%7)})
	}
	seqs, floor, err := s.planBatch(as)
	if err != nil {
		t.Fatal(err)
	}
	if floor != 50 {
		t.Fatalf("floor %d, want the smallest, 50", floor)
	}
	if len(seqs) != 1 || len(seqs[0]) != 3 {
		t.Fatalf("%d sequences, want 1 of 3 calls", len(seqs))
	}
	next := 0
	for ci, c := range seqs[0] {
		if want := min(MaxBatchEvents, len(as)-next); len(c.events) != want {
			t.Fatalf("call %d: %d events, want %d", ci, len(c.events), want)
		}
		if len(c.counters) != 6 {
			t.Fatalf("call %d: %d distinct counters, want 6", ci, len(c.counters))
		}
		for _, ev := range c.events {
			if ev.app != next {
				t.Fatalf("call %d: event %d out of order (want %d)", ci, ev.app, next)
			}
			next++
			for j, ki := range ev.keys {
				if c.counters[ev.ctrs[j]-1] != as[ev.app].Keys[ki] {
					t.Fatalf("event %d key %d maps to %q", ev.app, ki, c.counters[ev.ctrs[j]-1])
				}
			}
		}
	}
	if next != len(as) {
		t.Fatalf("planned %d of %d events", next, len(as))
	}
}

// On Redis Cluster every slot gets its own sequence, and an event's counters
// are split across the slots' calls.
func TestPlanBatchCluster(t *testing.T) {
	s := &Store{cluster: true}
	a, b := testKey(scope.KindKey, "a"), testKey(scope.KindTeam, "b")
	if slot(a) == slot(b) {
		t.Fatal("test keys share a slot")
	}
	as := []Application{
		{EventID: "e1", StreamSeq: 2, TxID: 1, Keys: []string{a, b}},
		{EventID: "e2", StreamSeq: 3, TxID: 1, Keys: []string{b}},
	}
	seqs, _, err := s.planBatch(as)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 2 || len(seqs[0]) != 1 || len(seqs[1]) != 1 {
		t.Fatalf("want two slots of one call each, got %d", len(seqs))
	}
	if c := seqs[0][0]; fmt.Sprint(c.counters) != fmt.Sprint([]string{a}) || len(c.events) != 1 {
		t.Fatalf("slot of a: %+v", c)
	}
	if c := seqs[1][0]; fmt.Sprint(c.counters) != fmt.Sprint([]string{b}) || len(c.events) != 2 || c.events[0].keys[0] != 1 {
		t.Fatalf("slot of b: %+v", c)
	}
}

// One invalid application rejects the whole batch before anything runs.
func TestPlanBatchRejectsInvalid(t *testing.T) {
	s := &Store{}
	k := testKey(scope.KindKey, "k")
	for name, bad := range map[string]Application{
		"tx 0":          {EventID: "x", StreamSeq: 5, Keys: []string{k}},
		"floor at seq":  {EventID: "x", StreamSeq: 5, TxID: 1, PruneFloor: 5, Keys: []string{k}},
		"no keys":       {EventID: "x", StreamSeq: 5, TxID: 1},
		"duplicate key": {EventID: "x", StreamSeq: 5, TxID: 1, Keys: []string{k, k}},
	} {
		_, _, err := s.planBatch([]Application{{EventID: "ok", StreamSeq: 1, TxID: 1, Keys: []string{k}}, bad})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
