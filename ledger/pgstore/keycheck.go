package pgstore

import (
	"sync"
	"sync/atomic"

	"github.com/spendledger/spendledger/ledger/scope"
)

// validKeys remembers counter keys scope.ParseCounterKey accepted. Every
// entry is validated twice on the ingest path (EntryFromCost, then Insert)
// and carries a few keys drawn from a small working set (a key's or team's
// window), so parsing them again was a measurable share of ingest CPU. The
// check is a pure function of the string, so remembering a success is
// exact; failures are not remembered (they are rare and dead-lettered).
// Bounded: past maxValidKeys it starts over.
var validKeys struct {
	m sync.Map // string -> struct{}
	n atomic.Int64
}

const maxValidKeys = 1 << 16

// checkCounterKey is scope.ParseCounterKey's verdict on k.
func checkCounterKey(k string) error {
	if _, ok := validKeys.m.Load(k); ok {
		return nil
	}
	if _, _, _, err := scope.ParseCounterKey(k); err != nil {
		return err
	}
	if validKeys.n.Add(1) > maxValidKeys {
		validKeys.m.Clear()
		validKeys.n.Store(0)
	}
	validKeys.m.Store(k, struct{}{})
	return nil
}
