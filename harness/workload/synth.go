package workload

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// keyTypes are the primary-key column types whose text the workload writes as Postgres prints it,
// so that a ledger entry's key is the key the truth reads back: tables keyed otherwise are not
// written by the workload of a schema of one's own.
var keyTypes = []string{"bigint", "integer", "smallint", "text", "uuid"}

// synthTargets are what the workload writes in a schema of the scenario's own, from its model:
// rows the synthetic generator makes (fixtures.Plan.SynthRow), updates of data columns, and
// deletes of rows nothing references.
type synthTargets struct {
	plan *fixtures.Plan
	// inserts are the tables new rows go to: every tenant table but those holding one row per
	// tenant.
	inserts []fixtures.Table
	// updates are the tables with a data column a write can change, with those columns.
	updates []updateTarget
	// deletes are the tenant tables no foreign key references, but those holding one row per
	// tenant: the model's root (what detection watches) is never among them.
	deletes []fixtures.Table
}

// updateTarget is a table and the columns an update may set.
type updateTarget struct {
	table   fixtures.Table
	columns []string
}

// newSynthTargets picks what the workload writes in the plan's model.
func newSynthTargets(plan *fixtures.Plan) *synthTargets {
	m := plan.Model
	s := &synthTargets{plan: plan}
	root := m.RootTable().Name
	for _, t := range m.TenantTables() {
		if !writableKey(t) {
			continue
		}
		if !t.OneRowPerTenant() {
			s.inserts = append(s.inserts, t)
		}
		u := updateTarget{table: t}
		for _, c := range t.Columns {
			if m.Rewritable(t, c) {
				u.columns = append(u.columns, c.Name)
			}
		}
		if len(u.columns) > 0 {
			s.updates = append(s.updates, u)
		}
		if !m.Referenced(t.Name) && !t.OneRowPerTenant() && t.Name != root {
			s.deletes = append(s.deletes, t)
		}
	}
	return s
}

// writableKey reports whether every primary-key column has a type in keyTypes.
func writableKey(t fixtures.Table) bool {
	for _, k := range t.PrimaryKey {
		c, _ := t.Column(k)
		if !slices.Contains(keyTypes, c.Type) && !strings.HasPrefix(c.Type, "character varying") {
			return false
		}
	}
	return true
}

// statementFor returns the write of op on tenant t: the built-in world's, or one of the schema's
// own. ok is false when the schema has nothing op can write.
func (w *writer) statementFor(op Op, t fixtures.Tenant) (statement, bool) {
	if w.synth == nil {
		return w.statement(op, t), true
	}
	s, err := w.synthStatement(op, t)
	return s, err == nil
}

// synthStatement returns a write of op on tenant t in a schema of the scenario's own: an insert of
// a new row the generator makes, an update of one data column of a planned row, or a delete of a
// planned row of a table nothing references. Rows the generator planned may be gone (deleted by
// an earlier write): then the statement finds no row and nothing is recorded.
func (w *writer) synthStatement(op Op, t fixtures.Tenant) (statement, error) {
	schema := w.layout.Locate(t.ID).Schema
	switch op {
	case OpInsert:
		if len(w.synth.inserts) == 0 {
			return statement{}, fmt.Errorf("no table to insert into")
		}
		tb := w.synth.inserts[w.rng.IntN(len(w.synth.inserts))]
		n := t.TableRows(tb.Name) + 1 + w.nextID[t.ID]
		w.nextID[t.ID]++
		row, err := w.synth.plan.SynthRow(t, tb.Name, n, w.rng)
		if err != nil {
			return statement{}, err
		}
		return insertStatement(schema, tb, row), nil
	case OpUpdate:
		if len(w.synth.updates) == 0 {
			return statement{}, fmt.Errorf("no column to update")
		}
		u := w.synth.updates[w.rng.IntN(len(w.synth.updates))]
		n := 1 + w.rng.Int64N(max(t.TableRows(u.table.Name), 1))
		row, err := w.synth.plan.SynthRow(t, u.table.Name, n, w.rng)
		if err != nil {
			return statement{}, err
		}
		return updateStatement(schema, u.table, row, u.columns[w.rng.IntN(len(u.columns))]), nil
	default:
		if len(w.synth.deletes) == 0 {
			return statement{}, fmt.Errorf("no table to delete from")
		}
		tb := w.synth.deletes[w.rng.IntN(len(w.synth.deletes))]
		n := 1 + w.rng.Int64N(max(t.TableRows(tb.Name), 1))
		row, err := w.synth.plan.SynthRow(t, tb.Name, n, w.rng)
		if err != nil {
			return statement{}, err
		}
		return deleteStatement(schema, tb, row), nil
	}
}

// rowValues maps the table's written columns to a generated row's values.
func rowValues(tb fixtures.Table, row []*string) map[string]*string {
	out := make(map[string]*string, len(row))
	for i, c := range tb.WrittenColumns() {
		out[c] = row[i]
	}
	return out
}

// rowKey returns the row's primary-key values, in key order.
func rowKey(tb fixtures.Table, values map[string]*string) []string {
	key := make([]string, len(tb.PrimaryKey))
	for i, k := range tb.PrimaryKey {
		if v := values[k]; v != nil {
			key[i] = *v
		}
	}
	return key
}

// cast is the SQL of parameter n as a value of column c's type, read from text as the
// generator wrote it.
func cast(n int, c fixtures.Column) string {
	return fmt.Sprintf("CAST($%d::pg_catalog.text AS %s)", n, c.Type)
}

// keyCondition is the condition on alias's primary key equal to the parameters from first on.
func keyCondition(tb fixtures.Table, alias string, first int) string {
	conds := make([]string, len(tb.PrimaryKey))
	for i, k := range tb.PrimaryKey {
		c, _ := tb.Column(k)
		conds[i] = alias + "." + pgx.Identifier{k}.Sanitize() + " = " + cast(first+i, c)
	}
	return strings.Join(conds, " AND ")
}

// keyArgs returns the key's values as statement arguments.
func keyArgs(key []string) []any {
	out := make([]any, len(key))
	for i, k := range key {
		out[i] = k
	}
	return out
}

// insertStatement inserts the generated row.
func insertStatement(schema string, tb fixtures.Table, row []*string) statement {
	name := pgx.Identifier{schema, tb.Name}.Sanitize()
	values := rowValues(tb, row)
	var params []string
	var args []any
	for i, col := range tb.WrittenColumns() {
		c, _ := tb.Column(col)
		params = append(params, cast(i+1, c))
		args = append(args, row[i])
	}
	s := statement{
		sql: "INSERT INTO " + name + " AS t (" + fixtures.ColumnList(tb.WrittenColumns()) + ") OVERRIDING SYSTEM VALUE VALUES (" +
			strings.Join(params, ", ") + ") RETURNING " + truth.RowHashSQL("t", name) + ", NULL::pg_catalog.int8",
		args: args, op: OpInsert, table: tb.Name, key: rowKey(tb, values), values: values,
	}
	for _, c := range tb.Columns {
		if c.Sequenced() {
			s.prepare = takeSequences(name, tb)
			break
		}
	}
	return s
}

// takeSequences returns the preparation of an insert into tb (the quoted name given) that takes
// the value of every identity and serial column from the column's own sequence, as the
// application's inserts do, before the insert is sent: the ledger knows the key even of an
// insert whose outcome is lost, and the sequence stays past every row.
func takeSequences(name string, tb fixtures.Table) func(context.Context, *pgx.Conn, *statement) error {
	return func(ctx context.Context, conn *pgx.Conn, s *statement) error {
		for i, col := range tb.WrittenColumns() {
			c, _ := tb.Column(col)
			if !c.Sequenced() {
				continue
			}
			var v string
			if err := conn.QueryRow(ctx, "SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence($1, $2))::pg_catalog.text",
				name, col).Scan(&v); err != nil {
				return fmt.Errorf("take the next value of %s.%s: %w", tb.Name, col, err)
			}
			s.args[i], s.values[col] = &v, &v
		}
		s.key = rowKey(tb, s.values)
		return nil
	}
}

// updateStatement sets one column of the planned row the generated row has the key of to the
// generated row's value.
func updateStatement(schema string, tb fixtures.Table, row []*string, column string) statement {
	name := pgx.Identifier{schema, tb.Name}.Sanitize()
	all := rowValues(tb, row)
	key := rowKey(tb, all)
	c, _ := tb.Column(column)
	join := make([]string, len(tb.PrimaryKey))
	for i, k := range tb.PrimaryKey {
		q := pgx.Identifier{k}.Sanitize()
		join[i] = "t." + q + " = old." + q
	}
	// The old row is read in the same statement, joined so that it is read before the update.
	return statement{
		sql: "WITH old AS (SELECT " + fixtures.QualifiedColumns("o", tb.PrimaryKey) + ", " + truth.RowHashSQL("o", name) + " AS h FROM " + name + " o WHERE " +
			keyCondition(tb, "o", 1) + ") UPDATE " + name + " AS t SET " + pgx.Identifier{column}.Sanitize() + " = " +
			cast(len(key)+1, c) + " FROM old WHERE " + strings.Join(join, " AND ") + " RETURNING " + truth.RowHashSQL("t", name) + ", old.h",
		args: append(keyArgs(key), all[column]), op: OpUpdate, table: tb.Name, key: key,
		values: map[string]*string{column: all[column]},
	}
}

// deleteStatement deletes the planned row the generated row has the key of.
func deleteStatement(schema string, tb fixtures.Table, row []*string) statement {
	name := pgx.Identifier{schema, tb.Name}.Sanitize()
	key := rowKey(tb, rowValues(tb, row))
	return statement{
		sql: "DELETE FROM " + name + " AS t WHERE " + keyCondition(tb, "t", 1) + " RETURNING NULL::pg_catalog.int8, " +
			truth.RowHashSQL("t", name),
		args: keyArgs(key), op: OpDelete, table: tb.Name, key: key,
	}
}
