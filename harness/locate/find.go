package locate

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// Harm is a transaction Find judged harmful, with what it harmed and why it was judged so.
type Harm struct {
	XID       uint32     `json:"xid"`
	FirstLSN  backup.LSN `json:"first_lsn"`
	CommitLSN backup.LSN `json:"commit_lsn"`
	Time      time.Time  `json:"time"`
	// Tenants counts the rows it deleted or overwrote, by tenant.
	Tenants map[int64]int `json:"tenants"`
	// Tables are the tables it changed, sorted.
	Tables []string `json:"tables"`
	// DroppedDatabases are the databases it dropped (the database layout's harm).
	DroppedDatabases []uint32 `json:"dropped_databases,omitempty"`
	// Confidence is "reported" (it changed rows of a tenant the tickets name) or "pattern" (it
	// wiped tenants through tables a reported harm wiped tenants through: the same script, in
	// another transaction); Why says it in words.
	Confidence string `json:"confidence"`
	Why        string `json:"why"`
}

// RecoverTo is the recovery target just before the harm, exclusive: its transaction, whose
// damage happens at its commit; or, for a DROP DATABASE, which removes the database's files
// before its commit, the start of its first WAL record.
func (h Harm) RecoverTo() cluster.RecoveryTarget {
	if len(h.DroppedDatabases) > 0 {
		return cluster.RecoveryTarget{LSN: h.FirstLSN.String()}
	}
	return cluster.RecoveryTarget{XID: strconv.FormatUint(uint64(h.XID), 10)}
}

// Finding is what Find found on one shard.
type Finding struct {
	Shard int `json:"shard"`
	// Harms are the harmful transactions, in WAL order.
	Harms []Harm `json:"harms"`
	// RecoverTo is the recovery target just before the shard's first harm (exclusive); each
	// harm has its own (Harm.RecoverTo). Empty when nothing harmful was found.
	RecoverTo cluster.RecoveryTarget `json:"recover_to"`
	// Considered counts the transactions that changed rows in the window.
	Considered int `json:"considered"`
}

// Victims returns every tenant the harms harmed, ascending.
func (f Finding) Victims() []int64 {
	seen := map[int64]bool{}
	for _, h := range f.Harms {
		for t := range h.Tenants {
			seen[t] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Find looks for the harm on every shard of c, whose base backups are backups (one per shard)
// and whose tenants' tables model m describes, in any layout, as a responder would. On each shard it
// reads the WAL archive from the backup to now, keeps the transactions committed within the
// ticket's window that deleted or overwrote rows or dropped tables (DROP TABLE, DROP SCHEMA,
// TRUNCATE), recovers a sidecar to just before the first of them, and asks it whose rows those
// were: one query per table changed, whatever the number of transactions and tenants.
//
// A transaction that wiped a reported tenant, or changed at least half of its rows of a table,
// is harmful (a tenant's own writes, a row at a time, are not); so is one, on any shard, that
// wiped tenants (deleted rows of the model's root table) through tables a harmful one wiped
// tenants through: a script run in many transactions, or on every shard. Every tenant a harmful
// transaction changed is a victim, the ones no ticket names included; a transaction that changed
// other tenants' rows otherwise (the workload's own deletes) is not a harm. It returns one
// finding per shard, in shard order.
func Find(ctx context.Context, c cluster.Cluster, backups []cluster.Backup, m *fixtures.Model, rep incident.Ticket) ([]Finding, error) {
	if len(backups) != len(c.Shards()) {
		return nil, fmt.Errorf("locate harm: %d base backup(s) for %d shard(s)", len(backups), len(c.Shards()))
	}
	var all []searched
	for shard := range c.Shards() {
		s, err := search(ctx, c, shard, backups[shard], m, rep)
		if err != nil {
			return nil, fmt.Errorf("locate harm on shard %d: %w", shard, err)
		}
		all = append(all, s)
	}
	return judge(all, m.RootTable().Name, rep.Tenants), nil
}

// searched is one shard's transactions in the window, and whose rows each touched.
type searched struct {
	shard   int
	txns    []*Txn
	touched [][]touch
}

// search reads shard's WAL from its backup b to now, and finds whose rows each transaction in
// the ticket's window touched.
func search(ctx context.Context, c cluster.Cluster, shard int, b cluster.Backup, m *fixtures.Model, rep incident.Ticket) (searched, error) {
	out := searched{shard: shard}
	live := c.Shards()[shard]
	end, err := currentLSN(ctx, live)
	if err != nil {
		return out, err
	}
	if _, err := backup.ArchiveNow(ctx, live); err != nil {
		return out, err
	}
	var dump bytes.Buffer
	if err := live.DumpWAL(ctx, b.StartLSN, end, &dump); err != nil {
		return out, err
	}
	txns, err := Scan(&dump)
	if err != nil {
		return out, err
	}
	for _, t := range txns {
		if t.Outcome == Committed && !t.Time.Before(rep.From) && !t.Time.After(rep.To) &&
			(t.RowsChanged() > 0 || len(t.DroppedFiles) > 0 || len(t.DroppedDatabases) > 0) {
			out.txns = append(out.txns, t)
		}
	}
	if len(out.txns) == 0 {
		return out, nil
	}
	out.touched, err = whoseRows(ctx, c, b, m, out.txns, rep.Tenants)
	return out, err
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

// touch is what one transaction did to tenants in one table: rows by tenant, and, for the
// reported tenants, how many rows each had there before.
type touch struct {
	table   string
	tenants map[int64]int
	had     map[int64]int
}

// whoseRows recovers a sidecar from b to just before the first of txns and returns, per
// transaction (by index), the tenants whose rows each deleted or updated, table by table, with
// what the reported tenants had in those tables.
func whoseRows(ctx context.Context, c cluster.Cluster, b cluster.Backup, m *fixtures.Model, txns []*Txn, reported []int64) ([][]touch, error) {
	sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{LSN: txns[0].FirstLSN.String()}})
	if err == nil {
		defer func() { _ = sidecar.Stop(context.WithoutCancel(ctx)) }()
		err = sidecar.Start(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("recover a sidecar to before %s: %w", txns[0].FirstLSN, err)
	}
	// Every tuple changed, with the transaction that changed it, by database and relation file;
	// and the files and databases each commit dropped.
	type tuples struct {
		tids []string
		txn  []int32
	}
	byDB := map[uint32]map[uint32]*tuples{}
	dropped := map[uint32]map[uint32][]int32{} // database, relation file: the transactions that dropped it
	databases := map[uint32][]int32{}          // database: the transactions that dropped it
	for i, t := range txns {
		for rel, ch := range t.Relations {
			if byDB[rel.Database] == nil {
				byDB[rel.Database] = map[uint32]*tuples{}
			}
			tu := byDB[rel.Database][rel.Relation]
			if tu == nil {
				tu = &tuples{}
				byDB[rel.Database][rel.Relation] = tu
			}
			for _, tid := range slices.Concat(ch.Deleted, ch.Updated) {
				tu.tids = append(tu.tids, tid.String())
				tu.txn = append(tu.txn, int32(i))
			}
		}
		for _, rel := range t.DroppedFiles {
			if dropped[rel.Database] == nil {
				dropped[rel.Database] = map[uint32][]int32{}
			}
			dropped[rel.Database][rel.Relation] = append(dropped[rel.Database][rel.Relation], int32(i))
		}
		for _, db := range t.DroppedDatabases {
			databases[db] = append(databases[db], int32(i))
		}
	}
	names, err := databaseNames(ctx, sidecar)
	if err != nil {
		return nil, err
	}
	out := make([][]touch, len(txns))
	for oid, datname := range names {
		if byDB[oid] == nil && dropped[oid] == nil && databases[oid] == nil {
			continue
		}
		err := cluster.WithConn(ctx, sidecar.DSNFor(datname), func(conn *pgx.Conn) error {
			tables, err := tablesByFile(ctx, conn)
			if err != nil {
				return err
			}
			fixed, _ := fixtures.ParseTenantContainer(datname) // the database layout: the database is the tenant
			// A table whose file a commit dropped lost every row, as did every table of a database
			// dropped: their rows, by tenant.
			whole := dropped[oid]
			if txs := databases[oid]; len(txs) > 0 {
				whole = map[uint32][]int32{}
				for file := range tables {
					whole[file] = txs
				}
			}
			for file, txs := range whole {
				name, ok := tables[file]
				if !ok {
					continue
				}
				counts, err := tenantCounts(ctx, conn, m, name, fixed, nil, nil, reported)
				if err != nil {
					return err
				}
				for _, i := range txs {
					for _, c := range counts {
						out[i] = addTouch(out[i], name.table, c)
					}
				}
			}
			for file, tu := range byDB[oid] {
				name, ok := tables[file]
				if !ok {
					continue // a table made after the sidecar's point, or not a table
				}
				counts, err := tenantCounts(ctx, conn, m, name, fixed, tu.tids, tu.txn, reported)
				if err != nil {
					return err
				}
				for _, c := range counts {
					out[c.txn] = addTouch(out[c.txn], name.table, c)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("find whose rows of database %s were changed: %w", datname, err)
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

// count is how many rows of a tenant a transaction (by index) changed, and, for a reported
// tenant, how many it had in the table.
type count struct {
	txn    int32
	tenant int64
	rows   int
	had    int
}

// tenantCounts counts the rows of table name on conn by tenant and transaction: the tuples tids,
// each changed by the transaction of the same index in txns; every row (as transaction 0) when
// tids is nil. fixed, when not 0, is the tenant of every row (the database layout's). The reported
// tenants' counts come with how many rows each had in the table. A table no tenant owns
// (reference data, pgdrill's own) counts none.
func tenantCounts(ctx context.Context, conn *pgx.Conn, m *fixtures.Model, name qualified, fixed int64, tids []string, txns []int32, reported []int64) ([]count, error) {
	t, ok := m.LookupTable(name.table)
	if !ok || (t.Owner.Kind != fixtures.OwnedByColumn && t.Owner.Kind != fixtures.OwnedByPath) {
		return nil, nil
	}
	owned, err := m.OwnerSQL(t, name.schema, "r")
	if err != nil {
		return nil, err
	}
	tenant := owned.Tenant
	if id, ok := fixtures.ParseTenantContainer(name.schema); ok {
		fixed = id // the schema layout: the schema is the tenant
	}
	if fixed > 0 {
		tenant = strconv.FormatInt(fixed, 10) + "::int8"
	}
	q := "SELECT 0, " + tenant + ", count(*) FROM " + owned.From + " GROUP BY 1, 2"
	var args []any
	if tids != nil {
		q = "SELECT x.txn, " + tenant + ", count(*) FROM " + owned.From +
			" JOIN unnest($1::tid[], $2::int4[]) AS x(tid, txn) ON r.ctid = x.tid GROUP BY 1, 2"
		args = []any{tids, txns}
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find whose rows of %s were changed: %w", name.table, err)
	}
	var out []count
	var c count
	if _, err := pgx.ForEachRow(rows, []any{&c.txn, &c.tenant, &c.rows}, func() error {
		out = append(out, c)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("find whose rows of %s were changed: %w", name.table, err)
	}
	var asked []int64
	for _, c := range out {
		if slices.Contains(reported, c.tenant) && !slices.Contains(asked, c.tenant) {
			asked = append(asked, c.tenant)
		}
	}
	if len(asked) == 0 {
		return out, nil
	}
	rows, err = conn.Query(ctx, "SELECT "+tenant+", count(*) FROM "+owned.From+" WHERE "+tenant+" = ANY($1) GROUP BY 1", asked)
	if err != nil {
		return nil, fmt.Errorf("count the reported tenants' rows of %s: %w", name.table, err)
	}
	had := map[int64]int{}
	var id int64
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		had[id] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("count the reported tenants' rows of %s: %w", name.table, err)
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
		ts = append(ts, touch{table: table, tenants: map[int64]int{}, had: map[int64]int{}})
		i = len(ts) - 1
	}
	ts[i].tenants[c.tenant] += c.rows
	if c.had > 0 {
		ts[i].had[c.tenant] += c.had
	}
	return ts
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

// bulkRows is the fewest rows of a table a bulk change of a tenant changes: a workload's write
// of one row is never one.
const bulkRows = 2

// bulk reports whether touch t of the root table wiped tenant id, or changed at least half of
// its rows of the table (and more than one): what a harm does, unlike a tenant's own writes.
func bulk(t touch, id int64, root string) bool {
	n := t.tenants[id]
	return n > 0 && t.table == root || n >= bulkRows && 2*n >= t.had[id]
}

// subset reports whether every one of a is in b.
func subset(a, b []string) bool {
	return !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// judge picks the harmful transactions of every shard, given whose rows each touched, the
// model's root table and the reported tenants, and returns one finding per shard.
func judge(all []searched, root string, reported []int64) []Finding {
	type ref struct{ s, i int } // shard, transaction
	tablesOf := func(r ref) []string {
		var names []string
		for _, t := range all[r.s].touched[r.i] {
			names = append(names, t.table)
		}
		return names
	}
	wipes := func(r ref) bool {
		return slices.ContainsFunc(all[r.s].touched[r.i], func(t touch) bool { return t.table == root && len(t.tenants) > 0 })
	}
	harm := func(r ref, confidence, why string) Harm {
		t := all[r.s].txns[r.i]
		h := Harm{XID: t.XID, FirstLSN: t.FirstLSN, CommitLSN: t.CommitLSN, Time: t.Time, Tenants: map[int64]int{},
			DroppedDatabases: t.DroppedDatabases, Confidence: confidence, Why: why}
		for _, tc := range all[r.s].touched[r.i] {
			h.Tables = append(h.Tables, tc.table)
			for id, n := range tc.tenants {
				h.Tenants[id] += n
			}
		}
		slices.Sort(h.Tables)
		return h
	}
	var refs []ref
	for s := range all {
		for i := range all[s].txns {
			refs = append(refs, ref{s, i})
		}
	}
	harmful := map[ref]Harm{}
	// The tables of each reported harm that wiped tenants: a tenant with no rows in one of them
	// is wiped through fewer.
	var scripts []ref
	for _, r := range refs {
		var named []int64
		for _, t := range all[r.s].touched[r.i] {
			for _, id := range reported {
				if bulk(t, id, root) && !slices.Contains(named, id) {
					named = append(named, id)
				}
			}
		}
		if len(named) == 0 {
			continue
		}
		slices.Sort(named)
		harmful[r] = harm(r, "reported", fmt.Sprintf("it wiped reported tenant(s) %v, or changed at least half of their rows of a table", named))
		if wipes(r) {
			scripts = append(scripts, r)
		}
	}
	for _, r := range refs {
		if _, ok := harmful[r]; ok || !wipes(r) {
			continue
		}
		for _, sr := range scripts {
			if subset(tablesOf(r), tablesOf(sr)) {
				harmful[r] = harm(r, "pattern", fmt.Sprintf("it wiped tenants through the tables of harmful transaction %d on shard %d: the same script, in another transaction",
					all[sr.s].txns[sr.i].XID, all[sr.s].shard))
				break
			}
		}
	}
	out := make([]Finding, len(all))
	for s, sh := range all {
		f := Finding{Shard: sh.shard, Considered: len(sh.txns)}
		for i := range sh.txns {
			if h, ok := harmful[ref{s, i}]; ok {
				f.Harms = append(f.Harms, h)
			}
		}
		slices.SortFunc(f.Harms, func(a, b Harm) int { return cmp.Compare(a.FirstLSN, b.FirstLSN) })
		if len(f.Harms) > 0 {
			f.RecoverTo = f.Harms[0].RecoverTo()
		}
		out[s] = f
	}
	return out
}

// Record is the incident as found: base's kind, run, layout and model, with the victims and the
// harmful transactions of found, what a strategy restores from.
func Record(base incident.Record, found []Finding) incident.Record {
	rec := incident.Record{Kind: base.Kind, RunID: base.RunID, Layout: base.Layout, Model: base.Model}
	for _, f := range found {
		for _, id := range f.Victims() {
			rec.Affected = append(rec.Affected, incident.Tenant{ID: id, Shard: f.Shard})
		}
		for _, h := range f.Harms {
			rec.Harms = append(rec.Harms, incident.Harm{Shard: f.Shard, Tenants: slices.Sorted(maps.Keys(h.Tenants)),
				XID: strconv.FormatUint(uint64(h.XID), 10), LSN: h.FirstLSN.String(), CommitLSN: h.CommitLSN.String(), Time: h.Time,
				RecoverTo: h.RecoverTo()})
		}
	}
	slices.SortFunc(rec.Affected, func(a, b incident.Tenant) int { return cmp.Compare(a.ID, b.ID) })
	return rec
}
