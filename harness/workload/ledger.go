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
	Tenant int64 `json:"tenant"`
	// Shard is the shard the write went to; DirectoryShard for the catalog's tenant directory.
	Shard int `json:"shard"`
	// Table is the table written: a tenant table's name, or truth.DirectoryTable.
	Table string `json:"table"`
	// Key holds the row's primary-key values as text, in the table's primary-key order (as
	// truth.RowHash does).
	Key []string `json:"key"`
	Op  Op       `json:"op"`
	// Values are the columns the write set, as text in Postgres's input syntax (nil is NULL):
	// every column for an insert, the changed ones for an update, none for a delete. They are
	// known before the write is sent, so even a write of unknown outcome can be replayed.
	Values map[string]*string `json:"values,omitempty"`
	// Sent and Acked bound the write in time; Acked is when the server confirmed the commit.
	Sent  time.Time `json:"sent"`
	Acked time.Time `json:"acked"`
	// Indeterminate writes were sent but their outcome is unknown: they may or may not be in.
	Indeterminate bool `json:"indeterminate,omitempty"`
	// Delta is the write's change to its table's fingerprint (zero when Indeterminate).
	Delta Delta `json:"delta"`
}

// Directory reports whether the write went to the tenant directory rather than a tenant table.
func (e Entry) Directory() bool { return e.Shard == DirectoryShard }

// TenantTable names the tenant table the write went to.
func (e Entry) TenantTable() truth.TenantTable {
	return truth.TenantTable{Tenant: e.Tenant, Table: e.Table}
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

// LedgerOf returns a ledger holding entries.
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
// ledger to a tenant table. Writes of unknown outcome are left out: a table one of them touched
// may differ from Expected because the write did land, which only a row-level check can tell.
func (l *Ledger) Expected(before *truth.Snapshot) map[truth.TenantTable]truth.Fingerprint {
	sums := map[truth.TenantTable]*big.Int{}
	rows := map[truth.TenantTable]int64{}
	for k, f := range before.Tables() {
		s, _ := new(big.Int).SetString(f.Sum, 10)
		sums[k], rows[k] = s, f.Rows
	}
	for _, e := range l.Entries() {
		if e.Indeterminate || e.Directory() {
			continue
		}
		k := e.TenantTable()
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

// Check compares after with what the ledger's acknowledged writes say every tenant table must
// hold (Expected), and returns the tables that differ, ordered by tenant and table. An absent
// table and an empty one compare equal. A table a write of unknown outcome touched is listed
// when it differs like any other: which of its rows the unknown write excuses is for a row-level
// check to say (Uncertain names them), never the whole table.
func (l *Ledger) Check(before, after *truth.Snapshot) []truth.Mismatch {
	return truth.CompareTables(l.Expected(before), after.Tables())
}

// Uncertain returns the keys (truth.KeyString) of every row a write of unknown outcome touched,
// by table, tenant directory included: the only rows a verification may accept in either state.
func (l *Ledger) Uncertain() map[truth.TenantTable]map[string]bool {
	out := map[truth.TenantTable]map[string]bool{}
	for _, e := range l.Entries() {
		if !e.Indeterminate {
			continue
		}
		k := e.TenantTable()
		if out[k] == nil {
			out[k] = map[string]bool{}
		}
		out[k][truth.KeyString(e.Key)] = true
	}
	return out
}
