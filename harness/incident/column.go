package incident

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// ColumnHarm is what a harm did to one column of one table: overwrote every harmed row's value
// with one value (an UPDATE without its WHERE, a bad backfill) or dropped the column (a bad
// migration). Rows are not removed, so a repair puts the column's old values back by primary key
// rather than re-inserting rows, and keeps whatever else was written to those rows since.
type ColumnHarm struct {
	Table  string `json:"table"`
	Column string `json:"column"`
	// Dropped says the column itself is gone; otherwise it was overwritten with Value.
	Dropped bool `json:"dropped,omitempty"`
	// Value is what the harm wrote into every row, as text; nil is NULL. Unused when Dropped.
	Value *string `json:"value,omitempty"`
	// Before maps each harmed row's key (RowKey) to the ColumnHashSQL of its value just before the
	// harm, read in the harmful transaction: what a repair must bring back, row by row, and what
	// a drill checks a repaired row against when the row was written again after the harm.
	Before map[string]int64 `json:"before"`
}

// RowKey encodes a row's primary-key values (as text, in fixtures.Table.PrimaryKey order, as
// truth.RowHash.Key holds them) into the key of ColumnHarm.Before: each value after its length
// in bytes, so that no value's commas can make two keys one.
func RowKey(key []string) string {
	var b strings.Builder
	for i, k := range key {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(len(k)) + ":" + k)
	}
	return b.String()
}

// RowKeySQL is RowKey of the primary key of the rows under alias, computed by the server: how a
// harm notes its rows and the judge finds them again.
func RowKeySQL(alias string, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		v := alias + "." + pgx.Identifier{c}.Sanitize() + "::pg_catalog.text"
		parts[i] = "pg_catalog.octet_length(" + v + ")::pg_catalog.text || ':' || " + v
	}
	return "pg_catalog.concat_ws(',', " + strings.Join(parts, ", ") + ")"
}

// ColumnHashSQL returns the SQL of the hash of one column's value of the row alias: the hash of
// the one-column record, so that NULL and the empty string differ. Sessions computing it must be
// configured with truth.ConfigureSession, as for row hashes.
func ColumnHashSQL(alias, column string) string {
	return "pg_catalog.hashtextextended(ROW(" + alias + "." + pgx.Identifier{column}.Sanitize() + ")::pg_catalog.text, 0)"
}

// OverwriteColumn sets column of table, in every row of the given tenants, to one value — the
// value of the first of those rows, as a fix meant for one row that ran without the rest of its
// WHERE would — in one transaction per shard (per tenant database under the database layout),
// recording each row's value before it (ColumnHarm.Before). update-without-where harms one
// tenant this way; a bad backfill (bad-migration rewrite-column) every tenant.
func OverwriteColumn(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant, table, column string) (Record, error) {
	return harmColumn(ctx, c, kind, tenants, table, column, false)
}

// DropColumn drops column of table (bad-migration drop-column) — once per shard under the shared
// layout, in each tenant's schema or database otherwise — in one transaction per shard (per
// tenant database), recording the value every row of the given tenants held (ColumnHarm.Before).
// Under the shared layout the DDL harms every tenant of a shard; pass them all.
func DropColumn(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant, table, column string) (Record, error) {
	return harmColumn(ctx, c, kind, tenants, table, column, true)
}

// harmColumn overwrites or drops the column on every shard holding some of the tenants.
func harmColumn(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant, table, column string, drop bool) (Record, error) {
	verb := "overwrite " + table + "." + column
	if drop {
		verb = "drop " + table + "." + column
	}
	return harmTenants(ctx, c, kind, tenants, verb, func(s cluster.Server, d fixtures.Dataset, ids []int64) ([]Harm, error) {
		t, ok := d.Model.LookupTable(table)
		if !ok || !t.Tenant() {
			return nil, fmt.Errorf("no tenant table %s in schema %s", table, d.Model.Name)
		}
		if c, ok := t.Column(column); !ok || !d.Model.Harmable(t, c, drop) {
			return nil, fmt.Errorf("%s is not a data column of %s a harm of one column can touch and a repair put back", column, table)
		}
		return perDatabase(s, d.Layout, ids, func(dsn string, ids []int64) (Harm, error) {
			return columnInTransaction(ctx, dsn, c.RunID(), d, ids, t, column, drop)
		})
	})
}

// columnInTransaction harms the column of the tenants kept in one database, in one transaction,
// noting its xid, WAL positions, the value it wrote and every row's value before.
func columnInTransaction(ctx context.Context, dsn, runID string, d fixtures.Dataset, ids []int64, t fixtures.Table,
	column string, drop bool) (Harm, error) {
	layout := d.Layout
	col := &ColumnHarm{Table: t.Name, Column: column, Dropped: drop, Before: map[string]int64{}}
	// The tables to harm, with the tenants each holds: one shared table, or one per schema.
	places := map[string][]int64{}
	for _, id := range ids {
		schema := layout.Locate(id).Schema
		places[schema] = append(places[schema], id)
	}
	// Before's hashes compare with later sessions': harmInTransaction sets the session up for it.
	return harmInTransaction(ctx, dsn, runID, Harm{Tenants: ids, Column: col}, func(tx pgx.Tx, h *Harm) error {
		if !drop {
			schema := layout.Locate(ids[0]).Schema
			cond, err := d.Model.OwnerCondition(t, schema, "o", "= $1")
			if err != nil {
				return err
			}
			err = tx.QueryRow(ctx, "SELECT o."+pgx.Identifier{column}.Sanitize()+"::text FROM "+pgx.Identifier{schema, t.Name}.Sanitize()+
				" o WHERE "+cond+" ORDER BY "+fixtures.QualifiedColumns("o", t.PrimaryKey)+" LIMIT 1", ids[0]).Scan(&col.Value)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("read the value to write: %w", err)
			}
		}
		for _, schema := range slices.Sorted(maps.Keys(places)) {
			n, err := harmColumnIn(ctx, tx, d.Model, schema, places[schema], t, col)
			if err != nil {
				return err
			}
			h.Rows += n
		}
		return nil
	})
}

// harmColumnIn overwrites or drops the column of one table for the tenants ids, adding each row's
// old value's hash to col.Before, and returns the number of rows harmed.
func harmColumnIn(ctx context.Context, tx pgx.Tx, m *fixtures.Model, schema string, ids []int64, t fixtures.Table, col *ColumnHarm) (int64, error) {
	table := pgx.Identifier{schema, t.Name}.Sanitize()
	owned, err := m.OwnerCondition(t, schema, "o", "= ANY ($1)")
	if err != nil {
		return 0, err
	}
	key := RowKeySQL("o", t.PrimaryKey)
	name := pgx.Identifier{col.Column}.Sanitize()
	c, _ := t.Column(col.Column)
	typ := c.Type
	var query string
	args := []any{ids}
	if col.Dropped {
		if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return 0, fmt.Errorf("lock %s: %w", table, err)
		}
		query = "SELECT " + key + ", " + ColumnHashSQL("o", col.Column) + " FROM " + table + " o WHERE " + owned
	} else {
		// The old values are read in the same statement, locked, before the update.
		join := "(" + fixtures.QualifiedColumns("t", t.PrimaryKey) + ") = (" + fixtures.QualifiedColumns("o", t.PrimaryKey) + ")"
		query = "WITH o AS (SELECT *, " + ColumnHashSQL("o", col.Column) + " AS pgdrill_h FROM " + table +
			" o WHERE " + owned + " FOR UPDATE OF o) UPDATE " + table + " AS t SET " + name + " = $2::" + typ +
			" FROM o WHERE " + join + " RETURNING " + key + ", o.pgdrill_h"
		args = append(args, col.Value)
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("harm %s.%s: %w", table, col.Column, err)
	}
	var n int64
	for rows.Next() {
		var k string
		var h int64
		if err := rows.Scan(&k, &h); err != nil {
			return 0, fmt.Errorf("harm %s.%s: %w", table, col.Column, err)
		}
		col.Before[k] = h
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("harm %s.%s: %w", table, col.Column, err)
	}
	if col.Dropped {
		if _, err := tx.Exec(ctx, "ALTER TABLE "+table+" DROP COLUMN "+name); err != nil {
			return 0, fmt.Errorf("drop column %s of %s: %w", col.Column, table, err)
		}
	}
	return n, nil
}
