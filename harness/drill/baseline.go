package drill

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// baseline is the victims' rows before the workload started: with the ledger, it says row by row
// what each victim must hold after the restore.
type baseline struct {
	rows map[truth.TenantTable][]truth.RowHash
}

// takeBaseline reads the victims' per-row hashes. It must run while no write is in flight.
func takeBaseline(ctx context.Context, src truth.Source, victims []fixtures.Tenant) (baseline, error) {
	b := baseline{rows: map[truth.TenantTable][]truth.RowHash{}}
	for _, v := range victims {
		for _, t := range fixtures.TableNames() {
			rows, err := src.RowHashes(ctx, v.ID, t)
			if err != nil {
				return b, fmt.Errorf("read baseline of tenant %d: %w", v.ID, err)
			}
			b.rows[truth.TenantTable{Tenant: v.ID, Table: t}] = rows
		}
	}
	return b, nil
}

// has reports whether the baseline holds a row with that key.
func (b baseline) has(tt truth.TenantTable, key []string) bool {
	k := keyString(key)
	for _, r := range b.rows[tt] {
		if keyString(r.Key) == k {
			return true
		}
	}
	return false
}

// expected is a truth.RowReader of what the victims must hold: the baseline changed by every
// acknowledged write of the ledger, in order.
type expected struct {
	base    baseline
	entries []workload.Entry
}

var _ truth.RowReader = expected{}

// RowHashes implements truth.RowReader.
func (e expected) RowHashes(_ context.Context, tenant int64, table string) ([]truth.RowHash, error) {
	rows := map[string]truth.RowHash{}
	for _, r := range e.base.rows[truth.TenantTable{Tenant: tenant, Table: table}] {
		rows[keyString(r.Key)] = r
	}
	for _, w := range e.entries {
		if w.Tenant != tenant || w.Table != table || w.Indeterminate {
			continue
		}
		k := keyString(w.Key)
		if w.Op == workload.OpDelete {
			delete(rows, k)
		} else {
			rows[k] = truth.RowHash{Key: w.Key, Hash: w.Delta.Add}
		}
	}
	out := make([]truth.RowHash, 0, len(rows))
	for _, r := range rows {
		out = append(out, r)
	}
	return out, nil
}

// keyString joins key values so they can index a map.
func keyString(key []string) string { return strings.Join(key, "\x00") }
