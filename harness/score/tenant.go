package score

import (
	"fmt"
	"strings"

	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// maxExamples bounds how many differing rows a tenant's score names.
const maxExamples = 10

// Tenant is how completely one affected tenant came back: its rows and its directory entry.
type Tenant struct {
	ID    int64 `json:"id"`
	Shard int   `json:"shard"`
	// Expected counts the rows the tenant must hold, its directory entry included: its rows
	// before the incident changed by its acknowledged writes.
	Expected int64 `json:"expected"`
	// Lost are expected rows that are missing; Wrong are present with other contents.
	Lost  int64 `json:"lost"`
	Wrong int64 `json:"wrong"`
	// Duplicated rows are second copies of a key; Resurrected rows were deleted before the
	// incident and are back; Unexpected rows exist but were never written.
	Duplicated  int64 `json:"duplicated"`
	Resurrected int64 `json:"resurrected"`
	Unexpected  int64 `json:"unexpected"`
	// Excused rows had a write of unknown outcome and hold one of the states it allows.
	Excused int64 `json:"excused"`
	// Unresolved rows had a write of unknown outcome and differ in a way that cannot be judged.
	Unresolved int64 `json:"unresolved"`
	// Examples names a few differing rows, as "kind table(key)".
	Examples []string `json:"examples,omitempty"`
}

// Bad counts the tenant's rows that are not as they must be.
func (t Tenant) Bad() int64 {
	return t.Lost + t.Wrong + t.Duplicated + t.Resurrected + t.Unexpected
}

// Restored counts the expected rows that came back exactly: what completeness is the share of,
// and what every report calls restored.
func (t Tenant) Restored() int64 { return t.Expected - min(t.Bad(), t.Expected) }

// Complete reports whether the tenant is exactly as it must be.
func (t Tenant) Complete() bool { return t.Bad() == 0 }

// Harmed is a table of an unaffected tenant (or its directory entry) that differs from what its
// own acknowledged writes say it must hold: collateral damage, counted in rows.
type Harmed struct {
	truth.TableDiff
	Shard int `json:"shard"`
}

// Rows is how many rows of the table differ.
func (h Harmed) Rows() int64 { return h.Missing + h.Extra + h.Changed + h.Duplicated }

// Differs says how the table differs, in words.
func (h Harmed) Differs() string {
	var parts []string
	for _, p := range []struct {
		n    int64
		what string
	}{{h.Missing, "missing"}, {h.Changed, "changed"}, {h.Extra, "extra"}, {h.Duplicated, "duplicated"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return strings.Join(parts, ", ")
}

// Check is one integrity check after the restore.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// ScoreTenant turns the row differences of one affected tenant's tables (diffs, the tenant's
// own, uncertain rows already set apart) into its completeness. expected is how many rows it
// must hold; entries, the ledger, tell a resurrected row (deleted by an acknowledged write, or
// before the incident) from an unexpected one.
func ScoreTenant(id int64, shard int, expected int64, diffs []truth.TableDiff, entries []workload.Entry) Tenant {
	deleted := map[string]bool{}
	for _, e := range entries {
		if e.Tenant == id && !e.Indeterminate && e.Op == workload.OpDelete {
			deleted[e.Table+keySep+truth.KeyString(e.Key)] = true
		}
	}
	s := Tenant{ID: id, Shard: shard, Expected: expected}
	for _, d := range diffs {
		if d.Tenant != id {
			continue
		}
		for _, row := range d.Rows {
			switch {
			case row.Kind == truth.Missing:
				s.Lost++
			case row.Kind == truth.Changed:
				s.Wrong++
			case row.Kind == truth.Duplicated:
				s.Duplicated += row.Copies
			case row.Kind == truth.Extra && deleted[d.Table+keySep+truth.KeyString(row.Key)]:
				s.Resurrected += row.Copies
			default:
				s.Unexpected += row.Copies
			}
			if len(s.Examples) < maxExamples {
				s.Examples = append(s.Examples, fmt.Sprintf("%s %s(%s)", row.Kind, d.Table, strings.Join(row.Key, ",")))
			}
		}
		s.Excused += d.Excused
		s.Unresolved += d.Unresolved
	}
	return s
}

// keySep joins a table name and a key into one map key.
const keySep = "\x00"
