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
)

// Report is what a responder knows when the tickets come in: some of the tenants that lost
// data, and about when.
type Report struct {
	Tenants  []int64
	From, To time.Time
}

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
	// Confidence is "reported" (it changed rows of a tenant the tickets name) or "pattern" (it
	// wiped tenants through tables a reported harm wiped tenants through: the same script, in
	// another transaction); Why says it in words.
	Confidence string `json:"confidence"`
	Why        string `json:"why"`
}

// Finding is what Find found on one shard.
type Finding struct {
	Shard int `json:"shard"`
	// Harms are the harmful transactions, in WAL order.
	Harms []Harm `json:"harms"`
	// RecoverTo is the recovery target just before the first harm (exclusive): what a sidecar
	// is recovered to. Empty when nothing harmful was found.
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

// Find looks for the harm on shard, whose base backup is b and whose tenants' tables model m
// describes in layout, as a responder would: it reads the shard's WAL archive from the backup to
// now, keeps the transactions committed within the report's window that deleted or overwrote
// rows or dropped tables (DROP TABLE, DROP SCHEMA, TRUNCATE), recovers a sidecar of c to just
// before the first of them, and asks it whose rows those were. One query per table changed,
// whatever the number of transactions and tenants.
//
// A transaction that changed rows of a reported tenant is harmful; so is one that wiped tenants
// (deleted rows of the model's root table) through tables a harmful one wiped tenants through: a
// script run in many transactions. Every tenant a harmful transaction changed is a victim, the ones no
// ticket names included; a transaction that changed other tenants' rows otherwise (the
// workload's own deletes) is not a harm.
func Find(ctx context.Context, c cluster.Cluster, shard int, b cluster.Backup, m *fixtures.Model, layout fixtures.Layout, rep Report) (Finding, error) {
	out := Finding{Shard: shard}
	if layout == fixtures.LayoutDatabase {
		return out, fmt.Errorf("locate harm on shard %d: the database layout is not searched yet", shard)
	}
	live := c.Shards()[shard]
	end, err := currentLSN(ctx, live)
	if err != nil {
		return out, err
	}
	if _, err := backup.ArchiveNow(ctx, live); err != nil {
		return out, fmt.Errorf("locate harm on shard %d: %w", shard, err)
	}
	var dump bytes.Buffer
	if err := live.DumpWAL(ctx, b.StartLSN, end, &dump); err != nil {
		return out, fmt.Errorf("locate harm on shard %d: %w", shard, err)
	}
	txns, err := Scan(&dump)
	if err != nil {
		return out, fmt.Errorf("locate harm on shard %d: %w", shard, err)
	}
	var window []*Txn
	for _, t := range txns {
		if t.Outcome == Committed && !t.Time.Before(rep.From) && !t.Time.After(rep.To) && (t.RowsChanged() > 0 || len(t.DroppedFiles) > 0) {
			window = append(window, t)
		}
	}
	out.Considered = len(window)
	if len(window) == 0 {
		return out, nil
	}
	touched, err := whoseRows(ctx, c, b, m, window)
	if err != nil {
		return out, fmt.Errorf("locate harm on shard %d: %w", shard, err)
	}
	out.Harms = judge(window, touched, m.RootTable().Name, rep.Tenants)
	if len(out.Harms) > 0 {
		out.RecoverTo = cluster.RecoveryTarget{XID: strconv.FormatUint(uint64(out.Harms[0].XID), 10)}
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

// touch is what one transaction did to tenants in one table: rows by tenant.
type touch struct {
	table   string
	tenants map[int64]int
}

// whoseRows recovers a sidecar from b to just before the first of txns and returns, per
// transaction (by index), the tenants whose rows each deleted or updated, table by table.
func whoseRows(ctx context.Context, c cluster.Cluster, b cluster.Backup, m *fixtures.Model, txns []*Txn) ([][]touch, error) {
	sidecar, err := c.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: cluster.RecoveryTarget{LSN: txns[0].FirstLSN.String()}})
	if err == nil {
		defer func() { _ = sidecar.Stop(context.WithoutCancel(ctx)) }()
		err = sidecar.Start(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("recover a sidecar to before %s: %w", txns[0].FirstLSN, err)
	}
	out := make([][]touch, len(txns))
	err = cluster.WithConn(ctx, sidecar.DSN(), func(conn *pgx.Conn) error {
		tables, err := tablesByFile(ctx, conn)
		if err != nil {
			return err
		}
		// Every tuple changed, with the transaction that changed it, by relation file.
		type tuples struct {
			tids []string
			txn  []int32
		}
		byRel := map[RelFile]*tuples{}
		for i, t := range txns {
			for rel, ch := range t.Relations {
				tu := byRel[rel]
				if tu == nil {
					tu = &tuples{}
					byRel[rel] = tu
				}
				for _, tid := range slices.Concat(ch.Deleted, ch.Updated) {
					tu.tids = append(tu.tids, tid.String())
					tu.txn = append(tu.txn, int32(i))
				}
			}
		}
		// A table whose file a commit dropped lost every row: its rows, by tenant.
		for i, t := range txns {
			for _, rel := range t.DroppedFiles {
				name, ok := tables[rel.Relation]
				if !ok {
					continue
				}
				counts, err := tenantCounts(ctx, conn, m, name, nil, nil)
				if err != nil {
					return err
				}
				for _, c := range counts {
					out[i] = addTouch(out[i], name.table, c.tenant, c.rows)
				}
			}
		}
		for rel, tu := range byRel {
			name, ok := tables[rel.Relation]
			if !ok {
				continue // a table made after the sidecar's point, or not a table
			}
			counts, err := tenantCounts(ctx, conn, m, name, tu.tids, tu.txn)
			if err != nil {
				return err
			}
			for _, c := range counts {
				out[c.txn] = addTouch(out[c.txn], name.table, c.tenant, c.rows)
			}
		}
		return nil
	})
	return out, err
}

// count is how many rows of a tenant a transaction (by index) changed.
type count struct {
	txn    int32
	tenant int64
	rows   int
}

// tenantCounts counts the rows of table name on conn by tenant and transaction: the tuples tids,
// each changed by the transaction of the same index in txns; every row (as transaction 0) when
// tids is nil. A table no tenant owns (reference data, pgdrill's own) counts none.
func tenantCounts(ctx context.Context, conn *pgx.Conn, m *fixtures.Model, name qualified, tids []string, txns []int32) ([]count, error) {
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
		tenant = strconv.FormatInt(id, 10) + "::int8" // the schema is the tenant
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
	return out, nil
}

// addTouch counts n rows of tenant id in table into ts.
func addTouch(ts []touch, table string, id int64, n int) []touch {
	i := slices.IndexFunc(ts, func(t touch) bool { return t.table == table })
	if i < 0 {
		ts = append(ts, touch{table: table, tenants: map[int64]int{}})
		i = len(ts) - 1
	}
	ts[i].tenants[id] += n
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

// subset reports whether every one of a is in b.
func subset(a, b []string) bool {
	return !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// judge picks the harmful transactions among txns, given whose rows each touched (touched[i] for
// txns[i]), the model's root table and the reported tenants.
func judge(txns []*Txn, touched [][]touch, root string, reported []int64) []Harm {
	tablesOf := func(i int) []string {
		var names []string
		for _, t := range touched[i] {
			names = append(names, t.table)
		}
		return names
	}
	wipes := func(i int) bool {
		return slices.ContainsFunc(touched[i], func(t touch) bool { return t.table == root && len(t.tenants) > 0 })
	}
	harm := func(i int, confidence, why string) Harm {
		h := Harm{XID: txns[i].XID, FirstLSN: txns[i].FirstLSN, CommitLSN: txns[i].CommitLSN, Time: txns[i].Time,
			Tenants: map[int64]int{}, Confidence: confidence, Why: why}
		for _, t := range touched[i] {
			h.Tables = append(h.Tables, t.table)
			for id, n := range t.tenants {
				h.Tenants[id] += n
			}
		}
		slices.Sort(h.Tables)
		return h
	}
	harmful := map[int]Harm{}
	// The tables of each reported harm that wiped tenants, by its xid: a tenant with no rows in
	// one of them is wiped through fewer.
	scripts := map[uint32][]string{}
	for i := range txns {
		var named []int64
		for _, t := range touched[i] {
			for _, id := range reported {
				if t.tenants[id] > 0 && !slices.Contains(named, id) {
					named = append(named, id)
				}
			}
		}
		if len(named) == 0 {
			continue
		}
		slices.Sort(named)
		harmful[i] = harm(i, "reported", fmt.Sprintf("it changed rows of reported tenant(s) %v", named))
		if wipes(i) {
			scripts[txns[i].XID] = tablesOf(i)
		}
	}
	for i := range txns {
		if _, ok := harmful[i]; ok || !wipes(i) {
			continue
		}
		for _, xid := range slices.Sorted(maps.Keys(scripts)) {
			if !subset(tablesOf(i), scripts[xid]) {
				continue
			}
			harmful[i] = harm(i, "pattern", fmt.Sprintf("it wiped tenants through the tables of harmful transaction %d: the same script, in another transaction", xid))
			break
		}
	}
	out := slices.Collect(maps.Values(harmful))
	slices.SortFunc(out, func(a, b Harm) int { return cmp.Compare(a.FirstLSN, b.FirstLSN) })
	return out
}
