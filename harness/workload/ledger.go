package workload

import (
	"math/big"
	"slices"
	"sort"
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

// Difference is a tenant table whose state is not what the ledger says it must be.
type Difference struct {
	truth.TenantTable
	Want truth.Fingerprint `json:"want"`
	Got  truth.Fingerprint `json:"got"`
}

// Check compares after with what the ledger says every tenant table must hold, and returns the
// tables that differ, ordered by tenant and table: in Differences when the ledger is certain, in
// Unresolved when the table had indeterminate writes (their effect is unknown, so the difference
// is neither counted as loss nor passed). An absent table and an empty one compare equal.
func (l *Ledger) Check(before, after *truth.Snapshot) (differences, unresolved []Difference) {
	want := l.Expected(before)
	got := after.Tables()
	keys := map[truth.TenantTable]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	pending := map[truth.TenantTable]bool{}
	for _, e := range l.Entries() {
		if e.Indeterminate {
			pending[truth.TenantTable{Tenant: e.Tenant, Table: e.Table}] = true
		}
	}
	for k := range keys {
		w, g := normalize(want[k]), normalize(got[k])
		if w == g {
			continue
		}
		d := Difference{TenantTable: k, Want: w, Got: g}
		if pending[k] {
			unresolved = append(unresolved, d)
		} else {
			differences = append(differences, d)
		}
	}
	return sortDifferences(differences), sortDifferences(unresolved)
}

func sortDifferences(ds []Difference) []Difference {
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Tenant != ds[j].Tenant {
			return ds[i].Tenant < ds[j].Tenant
		}
		return ds[i].Table < ds[j].Table
	})
	return ds
}

// normalize makes an absent table and an empty one compare equal.
func normalize(f truth.Fingerprint) truth.Fingerprint {
	if f.Sum == "" {
		f.Sum = "0"
	}
	return f
}
