package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
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
func (r *run) reconcileColumns(ctx context.Context, exp expected, diffs []truth.TableDiff) ([]truth.TableDiff, error) {
	if r.out.Incident == nil {
		return diffs, nil
	}
	var out []truth.TableDiff
	for _, d := range diffs {
		h := r.columnHarmOf(d.TenantTable)
		if h == nil || d.Changed == 0 {
			out = append(out, d)
			continue
		}
		right, err := r.rightRows(ctx, exp, d, h)
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
		if kept.Missing+kept.Extra+kept.Changed+kept.Duplicated > 0 {
			out = append(out, kept)
		}
	}
	return out, nil
}

// columnHarmOf returns the harm that overwrote or dropped a column of this tenant table.
func (r *run) columnHarmOf(tt truth.TenantTable) *incident.Harm {
	for i, h := range r.out.Incident.Harms {
		if h.Column != nil && h.Column.Table == tt.Table && slices.Contains(h.Tenants, tt.Tenant) {
			return &r.out.Incident.Harms[i]
		}
	}
	return nil
}

// rightRows returns the keys (incident.RowKey) of the diff's changed rows that hold what they
// must, by the rule of reconcileColumns.
func (r *run) rightRows(ctx context.Context, exp expected, d truth.TableDiff, h *incident.Harm) (map[string]bool, error) {
	col := h.Column
	t, _ := fixtures.LookupTable(d.Table)
	c, ok := t.Column(col.Column)
	if !ok {
		return nil, fmt.Errorf("reconcile %s.%s: no such column", col.Table, col.Column)
	}
	want := map[string]int64{}
	rows, err := exp.RowHashes(ctx, d.Tenant, d.Table)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		want[incident.RowKey(row.Key)] = row.Hash
	}
	var keys []string
	for _, row := range d.Rows {
		if row.Kind == truth.Changed {
			keys = append(keys, incident.RowKey(row.Key))
		}
	}
	loc := r.plan.Spec.Layout.Locate(d.Tenant)
	cfg, err := pgx.ParseConfig(r.c.Shards()[h.Shard].DSNFor(loc.Database))
	if err != nil {
		return nil, fmt.Errorf("reconcile tenant %d: %w", d.Tenant, err)
	}
	truth.ConfigureSession(cfg) // hashes must compare with the ledger's
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("reconcile tenant %d: connect: %w", d.Tenant, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var present bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)`, loc.Schema, t.Name, c.Name).Scan(&present); err != nil {
		return nil, fmt.Errorf("reconcile tenant %d: look up column %s: %w", d.Tenant, c.Name, err)
	}
	if !present {
		return nil, nil // never put back: every row is as wrong as the diff says
	}
	// ordered: the row in the fixture's column order; damaged: as the harm left it; refilling:
	// a dropped column added back last and not filled yet, as a write between the two saw it.
	var ordered, damaged []string
	for _, tc := range t.Columns {
		name := "l." + pgx.Identifier{tc.Name}.Sanitize()
		ordered = append(ordered, name)
		switch {
		case tc.Name != c.Name:
			damaged = append(damaged, name)
		case !col.Dropped:
			damaged = append(damaged, "$3::"+c.Type)
		}
	}
	refilling := append(slices.Clone(damaged), "NULL::"+c.Type)
	key := "concat_ws(',', l." + strings.Join(t.PrimaryKey, ", l.") + ")"
	hash := func(cols []string) string { return "hashtextextended(ROW(" + strings.Join(cols, ", ") + ")::text, 0)" }
	args := []any{d.Tenant, keys}
	if !col.Dropped {
		args = append(args, col.Value)
	}
	q, err := conn.Query(ctx, "SELECT "+key+", "+hash(ordered)+", "+hash(damaged)+", "+hash(refilling)+", "+incident.ColumnHashSQL("l", c.Name)+
		" FROM "+pgx.Identifier{loc.Schema, t.Name}.Sanitize()+" l WHERE l.tenant_id = $1 AND "+key+" = ANY($2)", args...)
	if err != nil {
		return nil, fmt.Errorf("reconcile %s of tenant %d: %w", t.Name, d.Tenant, err)
	}
	right := map[string]bool{}
	for q.Next() {
		var k string
		var asOrdered, asDamaged, asRefilling, value int64
		if err := q.Scan(&k, &asOrdered, &asDamaged, &asRefilling, &value); err != nil {
			return nil, fmt.Errorf("reconcile %s of tenant %d: %w", t.Name, d.Tenant, err)
		}
		w, expected := want[k]
		before, harmed := col.Before[k]
		put := harmed && value == before && (asDamaged == w || col.Dropped && asRefilling == w)
		right[k] = expected && (asOrdered == w || put)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("reconcile %s of tenant %d: %w", t.Name, d.Tenant, err)
	}
	return right, nil
}
