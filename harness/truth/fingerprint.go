package truth

import (
	"cmp"
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
)

// RowHashSQL returns the SQL for the 64-bit hash of one row of table (a schema-qualified,
// quoted name), the row being the table alias given: the hash of the row's text, seeded with the
// list of the table's column types, so that a column retyped to text (whose values print the
// same) changes every row's hash. It is stable across servers of the same major version
// (hashtextextended is what hash partitioning relies on) in a session set up by
// ConfigureSession, and it names every function it calls by schema, so nothing created in the
// verified database can stand in for them. Fingerprints sum it; writers that must predict a
// fingerprint (the workload's ledger) return it from their statements.
func RowHashSQL(alias, table string) string {
	return hashSQL(alias, "(SELECT pg_catalog.hashtext(pg_catalog.string_agg(pg_catalog.format_type(a.atttypid, NULL), ',' ORDER BY a.attnum))"+
		" FROM pg_catalog.pg_attribute a WHERE a.attrelid = "+fixtures.QuoteLiteral(table)+"::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped)")
}

// ValuesHashSQL is RowHashSQL of a row expression that is not a table's row (ROW(a, b, c), a
// repaired row as it must be), whose column types are given in order as format_type names them
// (ColumnTypes): it hashes to what a table row of those types and values hashes to.
func ValuesHashSQL(row string, types []string) string {
	return hashSQL(row, "pg_catalog.hashtext("+fixtures.QuoteLiteral(strings.Join(types, ","))+")")
}

// hashSQL hashes the text of row with the seed a type list hashes to.
func hashSQL(row, typeSeed string) string {
	return "pg_catalog.hashtextextended(" + row + "::pg_catalog.text, " + typeSeed + "::pg_catalog.int8)"
}

// ColumnTypes returns the type of every column of table (a schema-qualified, quoted name) as
// RowHashSQL's seed names it, by column name: what ValuesHashSQL needs to hash rows of the table
// put together column by column.
func ColumnTypes(ctx context.Context, conn *pgx.Conn, table string) (map[string]string, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, NULL)
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped`, table)
	if err != nil {
		return nil, fmt.Errorf("read column types of %s: %w", table, err)
	}
	out := map[string]string{}
	var name, typ string
	if _, err := pgx.ForEachRow(rows, []any{&name, &typ}, func() error { out[name] = typ; return nil }); err != nil {
		return nil, fmt.Errorf("read column types of %s: %w", table, err)
	}
	return out, nil
}

// Fingerprint summarises a set of rows: equal fingerprints mean, but for a 64-bit collision,
// equal multisets of rows.
type Fingerprint struct {
	// Rows is the number of rows.
	Rows int64 `json:"rows"`
	// Sum is the sum of the rows' 64-bit hashes, in decimal: order-independent, and unlike an xor
	// it changes when a row is duplicated.
	Sum string `json:"sum"`
}

// add returns the fingerprint of both sets of rows together.
func (f Fingerprint) add(o Fingerprint) Fingerprint {
	a, _ := new(big.Int).SetString(cmp.Or(f.Sum, "0"), 10)
	b, _ := new(big.Int).SetString(cmp.Or(o.Sum, "0"), 10)
	return Fingerprint{Rows: f.Rows + o.Rows, Sum: a.Add(a, b).String()}
}

// Entry is the fingerprint of one tenant's table on one shard.
type Entry struct {
	// Shard is the index of the shard the rows were found on.
	Shard int `json:"shard"`
	// Tenant owns the rows: their tenant_id (shared layout) or their schema's or database's.
	Tenant int64 `json:"tenant"`
	// Table is the table's name, as in the model.
	Table string `json:"table"`
	Fingerprint
}

// Snapshot is the truth of a Source at one moment: an Entry for every tenant table found on
// every shard, sorted by tenant, table and shard.
type Snapshot struct {
	// Layout is the layout the snapshot was read with.
	Layout fixtures.Layout `json:"layout"`
	// Entries are sorted by tenant, table name and shard.
	Entries []Entry `json:"entries"`
}

// Take fingerprints every tenant's tables on every shard of src, shards in parallel.
func Take(ctx context.Context, src Source) (*Snapshot, error) {
	if !src.Layout.Valid() {
		return nil, fmt.Errorf("take snapshot: unknown layout %q", src.Layout)
	}
	if src.Model == nil {
		return nil, fmt.Errorf("take snapshot: no tenancy model")
	}
	perShard := make([][]Entry, len(src.Shards))
	errs := make([]error, len(src.Shards))
	var wg sync.WaitGroup
	for i := range src.Shards {
		wg.Go(func() { perShard[i], errs[i] = takeShard(ctx, src, i) })
	}
	wg.Wait()
	snap := &Snapshot{Layout: src.Layout}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("take snapshot of shard %d: %w", i, err)
		}
		snap.Entries = append(snap.Entries, perShard[i]...)
	}
	sort.Slice(snap.Entries, func(a, b int) bool {
		x, y := snap.Entries[a], snap.Entries[b]
		if x.Tenant != y.Tenant {
			return x.Tenant < y.Tenant
		}
		if x.Table != y.Table {
			return x.Table < y.Table
		}
		return x.Shard < y.Shard
	})
	return snap, nil
}

func takeShard(ctx context.Context, src Source, shard int) ([]Entry, error) {
	conn, err := src.connect(ctx, shard, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if src.Layout == fixtures.LayoutShared {
		tables, err := src.presentTables(ctx, conn, fixtures.SharedSchema)
		if err != nil {
			return nil, err
		}
		return src.fingerprintTables(ctx, conn, shard, fixtures.SharedSchema, tables, 0)
	}
	containers, err := src.containers(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for id, name := range containers {
		var entries []Entry
		if src.Layout == fixtures.LayoutSchema {
			entries, err = src.fingerprintContainer(ctx, conn, shard, name, id)
		} else {
			entries, err = src.fingerprintDatabase(ctx, shard, name, id)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, entries...)
	}
	return out, nil
}

func (s Source) fingerprintDatabase(ctx context.Context, shard int, database string, tenant int64) ([]Entry, error) {
	conn, err := s.connect(ctx, shard, database)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return s.fingerprintContainer(ctx, conn, shard, fixtures.SharedSchema, tenant)
}

func (s Source) fingerprintContainer(ctx context.Context, conn *pgx.Conn, shard int, schema string, tenant int64) ([]Entry, error) {
	tables, err := s.presentTables(ctx, conn, schema)
	if err != nil {
		return nil, err
	}
	return s.fingerprintTables(ctx, conn, shard, schema, tables, tenant)
}

// fingerprintTables runs one query over all tables of schema. With tenant 0 (shared layout) rows
// are grouped by their owner, found as the model says (a tenant column, or a path of foreign
// keys to one); otherwise they all belong to tenant, and an empty table still gets an entry, so
// that the container's presence shows.
func (s Source) fingerprintTables(ctx context.Context, conn *pgx.Conn, shard int, schema string, tables []fixtures.Table, tenant int64) ([]Entry, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	parts := make([]string, len(tables))
	for i, t := range tables {
		name := pgx.Identifier{schema, t.Name}.Sanitize()
		lit := fixtures.QuoteLiteral(t.Name)
		hash := RowHashSQL("t", name)
		if tenant == 0 {
			owned, err := s.Model.OwnerSQL(t, schema, "t")
			if err != nil {
				return nil, err
			}
			parts[i] = "SELECT " + lit + ", " + owned.Tenant + ", pg_catalog.count(*), coalesce(pg_catalog.sum(" + hash + "), 0)::pg_catalog.text FROM " +
				owned.From + " GROUP BY 2"
		} else {
			parts[i] = fmt.Sprintf("SELECT %s, %d::pg_catalog.int8, pg_catalog.count(*), coalesce(pg_catalog.sum(%s), 0)::pg_catalog.text FROM %s t",
				lit, tenant, hash, name)
		}
	}
	rows, err := conn.Query(ctx, strings.Join(parts, "\nUNION ALL\n"))
	if err != nil {
		return nil, fmt.Errorf("fingerprint schema %s: %w", schema, err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		e := Entry{Shard: shard}
		err := r.Scan(&e.Table, &e.Tenant, &e.Rows, &e.Sum)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("fingerprint schema %s: %w", schema, err)
	}
	return entries, nil
}

// TenantTable names one tenant's table, wherever its rows live.
type TenantTable struct {
	// Tenant is the tenant id.
	Tenant int64 `json:"tenant"`
	// Table is the table's name, as in the model.
	Table string `json:"table"`
}

// Tables returns every tenant table's fingerprint over all shards together: what the tenant
// sees, whichever shard its rows are on (CheckPlacement judges where they are).
func (s *Snapshot) Tables() map[TenantTable]Fingerprint {
	out := make(map[TenantTable]Fingerprint)
	for _, e := range s.Entries {
		k := TenantTable{Tenant: e.Tenant, Table: e.Table}
		out[k] = out[k].add(e.Fingerprint)
	}
	return out
}

// Tenants returns the ids of the tenants with any entry, in order.
func (s *Snapshot) Tenants() []int64 {
	var out []int64
	for _, e := range s.Entries {
		if len(out) == 0 || out[len(out)-1] != e.Tenant {
			out = append(out, e.Tenant)
		}
	}
	return out
}

// Mismatch is a tenant table whose fingerprint differs between two snapshots.
type Mismatch struct {
	TenantTable
	// Want is the truth's fingerprint, Got the compared state's; a side without the table has
	// the zero Fingerprint.
	Want Fingerprint `json:"want"`
	Got  Fingerprint `json:"got"`
}

// Compare returns the tenant tables whose fingerprints differ between want and got, ordered by
// tenant and table. A table absent from one side counts as empty there.
func Compare(want, got *Snapshot) []Mismatch { return CompareTables(want.Tables(), got.Tables()) }

// CompareTables is Compare on fingerprints by tenant table, for a truth that is computed rather
// than read (what a workload's ledger says every table must hold). A table missing on one side
// and an empty one compare equal.
func CompareTables(w, g map[TenantTable]Fingerprint) []Mismatch {
	var out []Mismatch
	seen := make(map[TenantTable]bool)
	check := func(k TenantTable) {
		if seen[k] {
			return
		}
		seen[k] = true
		a, b := w[k], g[k]
		if a.Rows != b.Rows || cmp.Or(a.Sum, "0") != cmp.Or(b.Sum, "0") {
			out = append(out, Mismatch{TenantTable: k, Want: a, Got: b})
		}
	}
	for k := range w {
		check(k)
	}
	for k := range g {
		check(k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Tenant != out[j].Tenant {
			return out[i].Tenant < out[j].Tenant
		}
		return out[i].Table < out[j].Table
	})
	return out
}
