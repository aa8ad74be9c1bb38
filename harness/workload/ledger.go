package workload

import (
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/pgdrill/pgdrill/harness/truth"
)

// Entry is one write the workload sent.
type Entry struct {
	Tenant int64  `json:"tenant"`
	Shard  int    `json:"shard"`
	Table  string `json:"table"`
	// Key holds the row's primary-key values as text, in fixtures.Table.PrimaryKey order (as
	// truth.RowHash does).
	Key []string `json:"key"`
	Op  Op       `json:"op"`
	// Sent and Acked bound the write in time; Acked is when the server confirmed the commit.
	Sent  time.Time `json:"sent"`
	Acked time.Time `json:"acked"`
	// Indeterminate writes were sent but their outcome is unknown: they may or may not be in.
	Indeterminate bool `json:"indeterminate,omitempty"`
	// Delta is the write's change to its table's fingerprint (zero when Indeterminate).
	Delta Delta `json:"delta"`
}

// Delta is a change to a fingerprint: rows added (negative: removed) and the change of the sum
// of row hashes.
type Delta struct {
	Rows int64 `json:"rows"`
	Add  int64 `json:"add"` // hash of the row written, 0 if none
	Sub  int64 `json:"sub"` // hash of the row replaced or removed, 0 if none
}

func delta(op Op, newHash, oldHash *int64) Delta {
	var d Delta
	if newHash != nil {
		d.Add = *newHash
	}
	if oldHash != nil {
		d.Sub = *oldHash
	}
	switch op {
	case OpInsert:
		d.Rows = 1
	case OpDelete:
		d.Rows = -1
	}
	return d
}

// Ledger is the record of a workload's writes, in the order they were acknowledged.
type Ledger struct {
	mu      sync.Mutex
	entries []Entry
}

// LedgerOf returns a ledger holding entries, as written by an earlier process (a game day's
// `pgdrill up`, read back by `pgdrill score`).
func LedgerOf(entries []Entry) *Ledger { return &Ledger{entries: slices.Clone(entries)} }

func (l *Ledger) add(e Entry) {
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
}

// Entries returns a copy of the ledger.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// Acknowledged counts the writes the servers confirmed.
func (l *Ledger) Acknowledged() int {
	n := 0
	for _, e := range l.Entries() {
		if !e.Indeterminate {
			n++
		}
	}
	return n
}

// Expected returns what every tenant table must hold: its fingerprint in before (taken while no
// write was in flight, before the workload started) changed by every acknowledged write of the
// ledger. Indeterminate writes are left out; Check gives them the benefit of the doubt.
func (l *Ledger) Expected(before *truth.Snapshot) map[truth.TenantTable]truth.Fingerprint {
	sums := map[truth.TenantTable]*big.Int{}
	rows := map[truth.TenantTable]int64{}
	for k, f := range before.Tables() {
		s, _ := new(big.Int).SetString(f.Sum, 10)
		sums[k], rows[k] = s, f.Rows
	}
	for _, e := range l.Entries() {
		if e.Indeterminate {
			continue
		}
		k := truth.TenantTable{Tenant: e.Tenant, Table: e.Table}
		if sums[k] == nil {
			sums[k] = new(big.Int)
		}
		sums[k].Add(sums[k], big.NewInt(e.Delta.Add))
		sums[k].Sub(sums[k], big.NewInt(e.Delta.Sub))
		rows[k] += e.Delta.Rows
	}
	out := make(map[truth.TenantTable]truth.Fingerprint, len(sums))
	for k, s := range sums {
		out[k] = truth.Fingerprint{Rows: rows[k], Sum: s.String()}
	}
	return out
}

// Check compares after with what the ledger says every tenant table must hold, and returns the
// tables that differ, ordered by tenant and table: in differences when the ledger is certain, in
// unresolved when the table had indeterminate writes (their effect is unknown, so the difference
// is neither counted as loss nor passed). An absent table and an empty one compare equal.
func (l *Ledger) Check(before, after *truth.Snapshot) (differences, unresolved []truth.Mismatch) {
	pending := map[truth.TenantTable]bool{}
	for _, e := range l.Entries() {
		if e.Indeterminate {
			pending[truth.TenantTable{Tenant: e.Tenant, Table: e.Table}] = true
		}
	}
	for _, m := range truth.CompareTables(l.Expected(before), after.Tables()) {
		if pending[m.TenantTable] {
			unresolved = append(unresolved, m)
		} else {
			differences = append(differences, m)
		}
	}
	return differences, unresolved
}
