package score

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// reconcileColumns drops from diffs the changed rows of a column-harmed table that hold exactly
// what they must. The ledger cannot say what those are by itself: a write acknowledged after the
// harm (a status change of an overwritten issue) hashed the row with the harm's value in the
// column — or without the column, once dropped — so the row that must be there is that write
// with the column's value from before the harm. A changed row is right when its columns, in the
// fixture's order, hash to what the ledger expects (a column added back comes last in the table,
// which changes nothing a reader of named columns sees), or when the column holds its value from
// before the harm (incident.ColumnHarm.Before) and the row, with the column as the write saw it —
// the harm's value, left out once dropped, or added back but still empty — hashes to what the
// ledger expects. Every other difference stays.
func reconcileColumns(ctx context.Context, f Facts, want victimRows, diffs []truth.TableDiff) ([]truth.TableDiff, error) {
	var out []truth.TableDiff
	for _, d := range diffs {
		h := columnHarmOf(f.Incident, d.TenantTable)
		if h == nil || d.Changed == 0 {
			out = append(out, d)
			continue
		}
		right, err := rightRows(ctx, f, want, d, h)
		if err != nil {
			return nil, err
		}
		kept := d
		kept.Rows = nil
		for _, row := range d.Rows {
			if row.Kind == truth.Changed && right[incident.RowKey(row.Key)] {
				kept.Changed--
				continue
			}
			kept.Rows = append(kept.Rows, row)
		}
		if kept.Differs() || kept.Excused+kept.Unresolved > 0 {
			out = append(out, kept)
		}
	}
	return out, nil
}

// rightRows returns the keys (incident.RowKey) of the diff's changed rows that hold what they
// must, by the rule of reconcileColumns.
func rightRows(ctx context.Context, f Facts, want victimRows, d truth.TableDiff, h *incident.Harm) (map[string]bool, error) {
	col := h.Column
	t, _ := f.Plan.Model.LookupTable(d.Table)
	c, ok := t.Column(col.Column)
	if !ok {
		return nil, fmt.Errorf("reconcile %s.%s: no such column", col.Table, col.Column)
	}
	wanted := map[string]int64{}
	rows, err := want.RowHashes(ctx, []truth.TenantTable{d.TenantTable})
	if err != nil {
		return nil, err
	}
	for _, row := range rows[d.TenantTable] {
		wanted[incident.RowKey(row.Key)] = row.Hash
	}
	var keys []string
	for _, row := range d.Rows {
		if row.Kind == truth.Changed {
			keys = append(keys, incident.RowKey(row.Key))
		}
	}
	loc := f.Plan.Spec.Layout.Locate(d.Tenant)
	conn, err := truth.Connect(ctx, f.Source.Shards[h.Shard], loc.Database) // hashes compare with the ledger's
	if err != nil {
		return nil, fmt.Errorf("reconcile tenant %d: %w", d.Tenant, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	table := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
	types, err := truth.ColumnTypes(ctx, conn, table)
	if err != nil {
		return nil, fmt.Errorf("reconcile tenant %d: %w", d.Tenant, err)
	}
	if types[c.Name] == "" {
		return nil, nil // never put back: every row is as wrong as the diff says
	}
	// ordered: the row in the fixture's column order; damaged: as the harm left it; refilling:
	// a dropped column added back last and not filled yet, as a write between the two saw it.
	var ordered, damaged, orderedTypes, damagedTypes []string
	for _, tc := range t.Columns {
		name := "l." + pgx.Identifier{tc.Name}.Sanitize()
		ordered, orderedTypes = append(ordered, name), append(orderedTypes, types[tc.Name])
		switch {
		case tc.Name != c.Name:
			damaged, damagedTypes = append(damaged, name), append(damagedTypes, types[tc.Name])
		case !col.Dropped:
			damaged, damagedTypes = append(damaged, "$3::"+c.Type), append(damagedTypes, types[tc.Name])
		}
	}
	refilling, refillingTypes := append(slices.Clone(damaged), "NULL::"+c.Type), append(slices.Clone(damagedTypes), types[c.Name])
	hash := func(cols, types []string) string {
		return truth.ValuesHashSQL("ROW("+strings.Join(cols, ", ")+")", types)
	}
	key := incident.RowKeySQL("l", t.PrimaryKey)
	owned, err := f.Plan.Model.OwnerCondition(t, loc.Schema, "l", "= $1")
	if err != nil {
		return nil, err
	}
	args := []any{d.Tenant, keys}
	if !col.Dropped {
		args = append(args, col.Value)
	}
	q, err := conn.Query(ctx, "SELECT "+key+", "+hash(ordered, orderedTypes)+", "+hash(damaged, damagedTypes)+", "+
		hash(refilling, refillingTypes)+", "+incident.ColumnHashSQL("l", c.Name)+
		" FROM "+table+" l WHERE "+owned+" AND "+key+" = ANY($2)", args...)
	if err != nil {
		return nil, fmt.Errorf("reconcile %s of tenant %d: %w", t.Name, d.Tenant, err)
	}
	right := map[string]bool{}
	var k string
	var asOrdered, asDamaged, asRefilling, value int64
	if _, err := pgx.ForEachRow(q, []any{&k, &asOrdered, &asDamaged, &asRefilling, &value}, func() error {
		w, expected := wanted[k]
		before, harmed := col.Before[k]
		put := harmed && value == before && (asDamaged == w || col.Dropped && asRefilling == w)
		right[k] = expected && (asOrdered == w || put)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reconcile %s of tenant %d: %w", t.Name, d.Tenant, err)
	}
	return right, nil
}
