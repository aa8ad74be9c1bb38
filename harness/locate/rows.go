package locate

// This file asks a server recovered to just before the first transaction in the window whose
// rows and columns each transaction changed, and compares them with the live shard where a
// transaction overwrote rows rather than removing them.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// touch is what one transaction did to tenants in one table: rows by tenant (and how many of
// them it deleted), how many rows each of those tenants had there before, and, when it changed
// one column rather than whole rows, which.
type touch struct {
	table   string
	tenants map[int64]int
	deleted map[int64]int
	had     map[int64]int
	change  *columnChange
}

// columnChange is what a transaction did to one column of a table's rows: dropped it, or wrote
// one value into it (nil: NULL), the table's soft-delete column included.
type columnChange struct {
	column  string
	dropped bool
	value   *string
	// mark is the value as a time, where the column is the table's soft-delete column.
	mark time.Time
}

// sampleRows bounds the rows of one transaction and table compared with the live shard to tell
// which column it overwrote: enough to see one value written into all of them.
const sampleRows = 200

// changedShare is the share of the rows compared that must differ in a column, and hold one value
// there, for the column to be the one a transaction overwrote: rows written since (or already
// holding the value) make it less than all.
const changedShare = 0.8

// changeIndex is every transaction's changes, by database: the tuples each changed, the relation
// files and databases each dropped, and the column catalog rows each updated.
type changeIndex struct {
	tuples    map[uint32]map[uint32]*tuples // database, relation file
	dropped   map[uint32]map[uint32][]int32 // database, relation file: the transactions that dropped it
	databases map[uint32][]int32            // database: the transactions that dropped it
	altered   map[uint32]*tuples            // database: pg_attribute rows updated, by transaction
}

// tuples are tuple ids, each with the transaction (by index) that changed it and whether it
// deleted it.
type tuples struct {
	tids    []string
	txn     []int32
	deleted []bool
}

// add notes one tuple.
func (tu *tuples) add(tid TID, txn int, deleted bool) {
	tu.tids = append(tu.tids, tid.String())
	tu.txn = append(tu.txn, int32(txn))
	tu.deleted = append(tu.deleted, deleted)
}

// indexChanges indexes the changes of txns by database.
func indexChanges(txns []*Txn) changeIndex {
	x := changeIndex{tuples: map[uint32]map[uint32]*tuples{}, dropped: map[uint32]map[uint32][]int32{},
		databases: map[uint32][]int32{}, altered: map[uint32]*tuples{}}
	for i, t := range txns {
		for rel, ch := range t.Relations {
			if x.tuples[rel.Database] == nil {
				x.tuples[rel.Database] = map[uint32]*tuples{}
			}
			tu := x.tuples[rel.Database][rel.Relation]
			if tu == nil {
				tu = &tuples{}
				x.tuples[rel.Database][rel.Relation] = tu
			}
			for _, tid := range ch.Deleted {
				tu.add(tid, i, true)
			}
			for _, tid := range ch.Updated {
				tu.add(tid, i, false)
			}
		}
		for _, rel := range t.DroppedFiles {
			if x.dropped[rel.Database] == nil {
				x.dropped[rel.Database] = map[uint32][]int32{}
			}
			x.dropped[rel.Database][rel.Relation] = append(x.dropped[rel.Database][rel.Relation], int32(i))
		}
		for _, db := range t.DroppedDatabases {
			x.databases[db] = append(x.databases[db], int32(i))
		}
		for db, tids := range t.AlteredColumns {
			if x.altered[db] == nil {
				x.altered[db] = &tuples{}
			}
			for _, tid := range tids {
				x.altered[db].add(tid, i, false)
			}
		}
	}
	return x
}

// has reports whether any transaction changed anything in database oid.
func (x changeIndex) has(oid uint32) bool {
	return x.tuples[oid] != nil || x.dropped[oid] != nil || x.databases[oid] != nil || x.altered[oid] != nil
}

// whoseRows recovers a sidecar of shard from b to just before the first of txns and returns, per
// transaction (by index), what each did to tenants, table by table: the rows it deleted or
// updated, or the column it dropped, with how many rows those tenants had there; and, where it
// changed a tenant's rows in bulk without deleting them, the column it overwrote and with what,
// from the live shard's rows of the same keys.
func whoseRows(ctx context.Context, c cluster.Cluster, shard int, b cluster.Backup, m *fixtures.Model, txns []*Txn) ([][]touch, error) {
	sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{LSN: txns[0].FirstLSN.String()}})
	if err == nil {
		defer func() { _ = sidecar.Stop(context.WithoutCancel(ctx)) }()
		err = sidecar.Start(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("recover a sidecar to before %s: %w", txns[0].FirstLSN, err)
	}
	names, err := databaseNames(ctx, sidecar)
	if err != nil {
		return nil, err
	}
	x := indexChanges(txns)
	out := make([][]touch, len(txns))
	live := c.Shards()[shard]
	for oid, name := range names {
		if !x.has(oid) {
			continue
		}
		d := database{model: m, txns: txns, x: x, oid: oid, name: name, out: out}
		if err := d.inspect(ctx, sidecar.DSNFor(name), live.DSNFor(name)); err != nil {
			return nil, fmt.Errorf("find whose rows of database %s were changed: %w", name, err)
		}
	}
	return out, nil
}

// databaseNames maps the oids of the server's databases to their names.
func databaseNames(ctx context.Context, s cluster.Server) (map[uint32]string, error) {
	out := map[uint32]string{}
	err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, "SELECT oid::int8, datname FROM pg_database WHERE datallowconn")
		if err != nil {
			return err
		}
		var oid int64
		var name string
		_, err = pgx.ForEachRow(rows, []any{&oid, &name}, func() error {
			out[uint32(oid)] = name
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list databases of %s: %w", s.Name(), err)
	}
	return out, nil
}

// database is one database's share of whoseRows' work.
type database struct {
	model *fixtures.Model
	txns  []*Txn
	x     changeIndex
	oid   uint32
	name  string
	// fixed is the tenant of every row, under the database layout; 0 otherwise.
	fixed int64
	// before is a session on the sidecar's copy of the database; live one on the live shard's,
	// opened when first needed (a dropped database has none), at liveDSN.
	before, live *pgx.Conn
	liveDSN      string
	out          [][]touch
}

// liveConn returns the session on the live shard's copy of the database, opening it.
func (d *database) liveConn(ctx context.Context) (*pgx.Conn, error) {
	if d.live == nil {
		conn, err := truth.Connect(ctx, d.liveDSN, "")
		if err != nil {
			return nil, err
		}
		d.live = conn
	}
	return d.live, nil
}

// inspect adds what each transaction did in the database to d.out, asking the sidecar's copy at
// beforeDSN and, for overwritten or dropped columns, the live one at liveDSN.
func (d *database) inspect(ctx context.Context, beforeDSN, liveDSN string) error {
	var err error
	if d.before, err = truth.Connect(ctx, beforeDSN, ""); err != nil {
		return err
	}
	defer d.before.Close(context.WithoutCancel(ctx))
	d.liveDSN = liveDSN
	defer func() {
		if d.live != nil {
			_ = d.live.Close(context.WithoutCancel(ctx))
		}
	}()
	tables, err := tablesByFile(ctx, d.before)
	if err != nil {
		return err
	}
	d.fixed, _ = fixtures.ParseTenantContainer(d.name)
	// A table whose file a commit dropped lost every row, as did every table of a database
	// dropped.
	whole := d.x.dropped[d.oid]
	if txs := d.x.databases[d.oid]; len(txs) > 0 {
		whole = map[uint32][]int32{}
		for file := range tables {
			whole[file] = txs
		}
	}
	for file, txs := range whole {
		if name, ok := tables[file]; ok {
			if err := d.wholeTable(ctx, name, txs, nil); err != nil {
				return err
			}
		}
	}
	for file, tu := range d.x.tuples[d.oid] {
		name, ok := tables[file]
		if !ok {
			continue // a table made after the sidecar's point, or not a table
		}
		if err := d.changedRows(ctx, name, file, tu); err != nil {
			return err
		}
	}
	if tu := d.x.altered[d.oid]; tu != nil {
		return d.droppedColumns(ctx, tu)
	}
	return nil
}

// wholeTable counts every row of table name by tenant as changed by each of txns: deleted, or,
// with change, its column dropped.
func (d *database) wholeTable(ctx context.Context, name qualified, txns []int32, change *columnChange) error {
	counts, err := d.tenantCounts(ctx, name, nil)
	if err != nil {
		return err
	}
	for _, i := range txns {
		for _, c := range counts {
			c.deleted, c.had = change == nil, c.rows
			d.out[i] = addTouch(d.out[i], name.table, c)
			if change != nil {
				setChange(d.out[i], name.table, change)
			}
		}
	}
	return nil
}

// changedRows counts the tuples tu of table name (relation file file) by transaction and tenant,
// and finds the column each transaction overwrote where it changed a tenant's rows in bulk
// without deleting them.
func (d *database) changedRows(ctx context.Context, name qualified, file uint32, tu *tuples) error {
	counts, err := d.tenantCounts(ctx, name, tu)
	if err != nil {
		return err
	}
	overwrote := map[int32]bool{}
	for _, c := range counts {
		d.out[c.txn] = addTouch(d.out[c.txn], name.table, c)
		if !c.deleted && c.rows >= bulkRows && 2*c.rows >= c.had {
			overwrote[c.txn] = true
		}
	}
	for _, i := range slices.Sorted(maps.Keys(overwrote)) {
		change, err := d.overwritten(ctx, name, file, d.txns[i])
		if err != nil {
			return err
		}
		if change == nil {
			continue
		}
		setChange(d.out[i], name.table, change)
	}
	return nil
}

// overwritten compares the rows txn updated in table name (relation file file), as they were,
// with the live rows of the same keys, and returns the one column it overwrote with one value;
// nil when no single column tells.
func (d *database) overwritten(ctx context.Context, name qualified, file uint32, txn *Txn) (*columnChange, error) {
	t, ok := d.model.LookupTable(name.table)
	if !ok {
		return nil, nil
	}
	var tids []string
	for rel, ch := range txn.Relations {
		if rel.Database == d.oid && rel.Relation == file {
			for _, tid := range ch.Updated[:min(len(ch.Updated), sampleRows)] {
				tids = append(tids, tid.String())
			}
		}
	}
	cols := t.ColumnNames()
	sel := "SELECT " + incident.RowKeySQL("r", t.PrimaryKey)
	for _, c := range cols {
		sel += ", r." + pgx.Identifier{c}.Sanitize() + "::text"
	}
	sel += " FROM " + pgx.Identifier{name.schema, name.table}.Sanitize() + " r WHERE "
	before, err := rowsByKey(ctx, d.before, sel+"r.ctid = ANY($1::tid[])", tids)
	if err != nil {
		return nil, fmt.Errorf("read the rows transaction %d updated in %s: %w", txn.XID, name.table, err)
	}
	live, err := d.liveConn(ctx)
	if err != nil {
		return nil, err
	}
	now, err := rowsByKey(ctx, live, sel+incident.RowKeySQL("r", t.PrimaryKey)+" = ANY($1::text[])", slices.Collect(maps.Keys(before)))
	if err != nil {
		return nil, fmt.Errorf("read the live rows transaction %d updated in %s: %w", txn.XID, name.table, err)
	}
	var found *columnChange
	for i, col := range cols {
		compared, changed := 0, 0
		values := map[string]int{}
		for k, was := range before {
			is, ok := now[k]
			if !ok {
				continue
			}
			compared++
			if !sameValue(was[i], is[i]) {
				changed++
				values[valueKey(is[i])]++
			}
		}
		if compared == 0 || float64(changed) < changedShare*float64(compared) {
			continue
		}
		top := slices.MaxFunc(slices.Collect(maps.Keys(values)), func(a, b string) int { return values[a] - values[b] })
		if float64(values[top]) < changedShare*float64(changed) {
			continue
		}
		if found != nil {
			return nil, nil // two columns overwrote: not one column's harm
		}
		found = &columnChange{column: col, value: valueOf(top)}
	}
	if found == nil {
		return nil, nil
	}
	if found.column == t.SoftDelete && found.value != nil {
		if err := live.QueryRow(ctx, "SELECT $1::text::timestamptz", *found.value).Scan(&found.mark); err != nil {
			return nil, fmt.Errorf("read soft-delete mark %q: %w", *found.value, err)
		}
		found.mark = found.mark.UTC()
	}
	return found, nil
}

// rowsByKey runs q, whose rows are a row key and then column values as text, with arg, and
// returns the values by key.
func rowsByKey(ctx context.Context, conn *pgx.Conn, q string, arg any) (map[string][]*string, error) {
	rows, err := conn.Query(ctx, q, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]*string{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]*string, len(vals)-1)
		for i, v := range vals[1:] {
			if s, ok := v.(string); ok {
				row[i] = &s
			}
		}
		out[vals[0].(string)] = row
	}
	return out, rows.Err()
}

// sameValue reports whether two column values (nil: NULL) are the same.
func sameValue(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// valueKey and valueOf turn a column value into a map key and back; NULL has a key no text has.
func valueKey(v *string) string {
	if v == nil {
		return "\x00"
	}
	return "=" + *v
}

func valueOf(k string) *string {
	if k == "\x00" {
		return nil
	}
	v := k[1:]
	return &v
}

// droppedColumns finds, for the column catalog rows tu the transactions updated (by
// pg_attribute tuple id, on the sidecar), the ones whose columns are gone from the live database:
// every row of the table lost the column to that transaction.
func (d *database) droppedColumns(ctx context.Context, tu *tuples) error {
	rows, err := d.before.Query(ctx, "SELECT x.txn, n.nspname, c.relname, a.attname FROM pg_attribute a "+
		"JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "+
		"JOIN unnest($1::tid[], $2::int4[]) AS x(tid, txn) ON a.ctid = x.tid "+
		"WHERE c.relkind = 'r' AND c.oid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped", tu.tids, tu.txn)
	if err != nil {
		return fmt.Errorf("read the columns altered: %w", err)
	}
	type altered struct {
		txn    int32
		name   qualified
		column string
	}
	var all []altered
	var a altered
	if _, err := pgx.ForEachRow(rows, []any{&a.txn, &a.name.schema, &a.name.table, &a.column}, func() error {
		all = append(all, a)
		return nil
	}); err != nil {
		return fmt.Errorf("read the columns altered: %w", err)
	}
	if len(all) == 0 {
		return nil
	}
	live, err := d.liveConn(ctx)
	if err != nil {
		return err
	}
	for _, a := range all {
		var present bool
		err := live.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "+
			"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND NOT a.attisdropped)",
			a.name.schema, a.name.table, a.column).Scan(&present)
		if err != nil {
			return fmt.Errorf("look for column %s of %s.%s: %w", a.column, a.name.schema, a.name.table, err)
		}
		if present {
			continue // altered, not dropped
		}
		if err := d.wholeTable(ctx, a.name, []int32{a.txn}, &columnChange{column: a.column, dropped: true}); err != nil {
			return err
		}
	}
	return nil
}

// count is how many rows of a tenant a transaction (by index) deleted or updated, and how many
// the tenant had in the table.
type count struct {
	txn     int32
	tenant  int64
	deleted bool
	rows    int
	had     int
}

// tenantCounts counts the rows of table name by transaction, tenant and whether they were
// deleted: the tuples tu; every row (as transaction 0) when tu is nil. Counts of tuples come with
// how many rows each tenant had in the table. A table no tenant owns (reference data, pgdrill's
// own) counts none.
func (d *database) tenantCounts(ctx context.Context, name qualified, tu *tuples) ([]count, error) {
	t, ok := d.model.LookupTable(name.table)
	if !ok || (t.Owner.Kind != fixtures.OwnedByColumn && t.Owner.Kind != fixtures.OwnedByPath) {
		return nil, nil
	}
	owned, err := d.model.OwnerSQL(t, name.schema, "r")
	if err != nil {
		return nil, err
	}
	tenant := owned.Tenant
	fixed := d.fixed // the database layout: the database is the tenant
	if id, ok := fixtures.ParseTenantContainer(name.schema); ok {
		fixed = id // the schema layout: the schema is the tenant
	}
	if fixed > 0 {
		tenant = strconv.FormatInt(fixed, 10) + "::int8"
	}
	q := "SELECT 0, false, " + tenant + ", count(*) FROM " + owned.From + " GROUP BY 1, 2, 3"
	var args []any
	if tu != nil {
		q = "SELECT x.txn, x.deleted, " + tenant + ", count(*) FROM " + owned.From +
			" JOIN unnest($1::tid[], $2::int4[], $3::bool[]) AS x(tid, txn, deleted) ON r.ctid = x.tid GROUP BY 1, 2, 3"
		args = []any{tu.tids, tu.txn, tu.deleted}
	}
	rows, err := d.before.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find whose rows of %s were changed: %w", name.table, err)
	}
	var out []count
	var c count
	if _, err := pgx.ForEachRow(rows, []any{&c.txn, &c.deleted, &c.tenant, &c.rows}, func() error {
		out = append(out, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("find whose rows of %s were changed: %w", name.table, err)
	}
	if tu == nil || len(out) == 0 {
		return out, nil
	}
	seen := map[int64]bool{}
	var asked []int64
	for _, c := range out {
		if !seen[c.tenant] {
			seen[c.tenant] = true
			asked = append(asked, c.tenant)
		}
	}
	rows, err = d.before.Query(ctx, "SELECT "+tenant+", count(*) FROM "+owned.From+" WHERE "+tenant+" = ANY($1) GROUP BY 1", asked)
	if err != nil {
		return nil, fmt.Errorf("count the changed tenants' rows of %s: %w", name.table, err)
	}
	had := map[int64]int{}
	var id int64
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		had[id] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count the changed tenants' rows of %s: %w", name.table, err)
	}
	for i := range out {
		out[i].had = had[out[i].tenant]
	}
	return out, nil
}

// addTouch counts c's rows in table into ts.
func addTouch(ts []touch, table string, c count) []touch {
	i := slices.IndexFunc(ts, func(t touch) bool { return t.table == table })
	if i < 0 {
		ts = append(ts, touch{table: table, tenants: map[int64]int{}, deleted: map[int64]int{}, had: map[int64]int{}})
		i = len(ts) - 1
	}
	ts[i].tenants[c.tenant] += c.rows
	if c.deleted {
		ts[i].deleted[c.tenant] += c.rows
	}
	ts[i].had[c.tenant] = max(ts[i].had[c.tenant], c.had)
	return ts
}

// setChange notes that the transaction whose touches ts are changed table's column as change.
func setChange(ts []touch, table string, change *columnChange) {
	for i := range ts {
		if ts[i].table == table {
			ts[i].change = change
		}
	}
}

// qualified is a table with its schema.
type qualified struct{ schema, table string }

// tablesByFile maps the relation files of the database's ordinary tables to their names.
func tablesByFile(ctx context.Context, conn *pgx.Conn) (map[uint32]qualified, error) {
	rows, err := conn.Query(ctx, "SELECT pg_relation_filenode(c.oid)::int8, n.nspname, c.relname FROM pg_class c "+
		"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.oid >= 16384")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	out := map[uint32]qualified{}
	var file int64
	var q qualified
	_, err = pgx.ForEachRow(rows, []any{&file, &q.schema, &q.table}, func() error {
		out[uint32(file)] = q
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}

// currentLSN is the shard's WAL insert position.
func currentLSN(ctx context.Context, s cluster.Server) (string, error) {
	var lsn string
	err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn)
	})
	if err != nil {
		return "", fmt.Errorf("read WAL position of %s: %w", s.Name(), err)
	}
	return lsn, nil
}

// errNoAnswer is a shard that answers no connection, for as long as lostAfter: taken as lost.
var errNoAnswer = errors.New("the shard does not answer")

// lostAfter is how long a shard may refuse connections before a responder takes it as lost
// rather than restarting.
const lostAfter = 5 * time.Second

// answering reads the shard's WAL position, trying for lostAfter; errNoAnswer if it never answers.
func answering(ctx context.Context, s cluster.Server) (string, error) {
	deadline := time.Now().Add(lostAfter)
	for {
		try, cancel := context.WithTimeout(ctx, time.Second) // a paused server takes the connection, and says nothing
		lsn, err := currentLSN(try, s)
		cancel()
		if err == nil {
			return lsn, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w for %s: %w", errNoAnswer, lostAfter, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
