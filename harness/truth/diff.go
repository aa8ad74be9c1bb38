package truth

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
)

// RowHash is one row's primary key (as text, in primary-key column order) and content hash.
type RowHash struct {
	Key  []string
	Hash int64
}

// RowReader yields tenant tables' per-row hashes, many tables in one call: a reader backed by
// servers reads them with one query per table and shard, not one per tenant, so the cost of a
// read grows with the rows asked for, not with tenants × tables. A Source reads them from its
// servers; a caller can also keep them from before an incident and serve them back. A table
// with no rows may be missing from the map returned.
type RowReader interface {
	RowHashes(ctx context.Context, tables []TenantTable) (map[TenantTable][]RowHash, error)
}

// RowStream yields tenant tables' per-row hashes one at a time, so that a reader of millions of
// rows need hold none of them: a baseline writes a victim's rows straight into its RowFile, and
// the verification counts them back one by one. fn is called from one goroutine at a time; an
// error it returns ends the stream and is returned.
type RowStream interface {
	EachRowHash(ctx context.Context, tables []TenantTable, fn func(TenantTable, RowHash) error) error
}

var (
	_ RowReader = Source{}
	_ RowStream = Source{}
)

// RowHashes reads the given tenants' tables from every shard of s, as EachRowHash does.
func (s Source) RowHashes(ctx context.Context, tables []TenantTable) (map[TenantTable][]RowHash, error) {
	return collectRows(ctx, s, tables)
}

// collectRows gathers what a stream yields for tables into memory.
func collectRows(ctx context.Context, s RowStream, tables []TenantTable) (map[TenantTable][]RowHash, error) {
	out := map[TenantTable][]RowHash{}
	err := s.EachRowHash(ctx, tables, func(tt TenantTable, row RowHash) error {
		out[tt] = append(out[tt], row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EachRowHash implements RowStream: it reads the given tenants' tables from every shard of s,
// shards in parallel (a misplaced row is still its tenant's row), and hands fn each row as it
// arrives. Only the primary key and a hash cross the network.
func (s Source) EachRowHash(ctx context.Context, tables []TenantTable, fn func(TenantTable, RowHash) error) error {
	want := map[string]map[int64]bool{} // tenants wanted, by table
	for _, tt := range tables {
		if _, ok := s.Model.LookupTable(tt.Table); !ok {
			return fmt.Errorf("read row hashes: unknown table %q", tt.Table)
		}
		if want[tt.Table] == nil {
			want[tt.Table] = map[int64]bool{}
		}
		want[tt.Table][tt.Tenant] = true
	}
	if len(want) == 0 {
		return nil
	}
	var mu sync.Mutex
	emit := func(tt TenantTable, row RowHash) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(tt, row)
	}
	errs := make([]error, len(s.Shards))
	var wg sync.WaitGroup
	for i := range s.Shards {
		wg.Go(func() { errs[i] = s.shardRowHashes(ctx, i, want, emit) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("read row hashes on shard %d: %w", i, err)
		}
	}
	return nil
}

// shardRowHashes reads one shard's rows of the tenants wanted, by table, into emit: in the
// shared layout one query per table for all of them, in the others one per table of each
// tenant's own schema or database found on the shard.
func (s Source) shardRowHashes(ctx context.Context, shard int, want map[string]map[int64]bool, emit func(TenantTable, RowHash) error) error {
	conn, err := s.connect(ctx, shard, "")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if s.Layout == fixtures.LayoutShared {
		tables, err := s.presentTables(ctx, conn, fixtures.SharedSchema)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if len(want[t.Name]) == 0 {
				continue
			}
			owned, err := s.Model.OwnerSQL(t, fixtures.SharedSchema, "t")
			if err != nil {
				return err
			}
			if err := readRowHashes(ctx, conn, emit, t, fixtures.SharedSchema, owned.Tenant, owned.From+" WHERE "+owned.Key+" = ANY ($1)", slices.Collect(maps.Keys(want[t.Name]))); err != nil {
				return err
			}
		}
		return nil
	}
	containers, err := s.containers(ctx, conn)
	if err != nil {
		return err
	}
	tenants := map[int64]bool{}
	for _, ids := range want {
		for id := range ids {
			if _, ok := containers[id]; ok {
				tenants[id] = true
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(tenants)) {
		if err := s.containerRowHashes(ctx, conn, shard, id, want, emit); err != nil {
			return fmt.Errorf("read rows of tenant %d: %w", id, err)
		}
	}
	return nil
}

// containerRowHashes reads tenant's wanted tables out of its own schema (on conn) or database
// into emit.
func (s Source) containerRowHashes(ctx context.Context, conn *pgx.Conn, shard int, tenant int64, want map[string]map[int64]bool, emit func(TenantTable, RowHash) error) error {
	loc := s.Layout.Locate(tenant)
	if s.Layout == fixtures.LayoutDatabase {
		db, err := s.connect(ctx, shard, loc.Database)
		if err != nil {
			return err
		}
		defer db.Close(context.WithoutCancel(ctx))
		conn = db
	}
	tables, err := s.presentTables(ctx, conn, loc.Schema)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if !want[t.Name][tenant] {
			continue
		}
		name := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
		if err := readRowHashes(ctx, conn, emit, t, loc.Schema, strconv.FormatInt(tenant, 10), name+" t", nil); err != nil {
			return err
		}
	}
	return nil
}

// readRowHashes runs one query of table t's rows in schema, from the FROM clause given (alias
// t), each with its tenant (the SQL expression owner), key and hash, and hands them to emit.
func readRowHashes(ctx context.Context, conn *pgx.Conn, emit func(TenantTable, RowHash) error, t fixtures.Table, schema, owner, from string, tenants []int64) error {
	keys := make([]string, len(t.PrimaryKey))
	for i, c := range t.PrimaryKey {
		keys[i] = "t." + pgx.Identifier{c}.Sanitize() + "::pg_catalog.text"
	}
	var args []any
	if tenants != nil {
		args = append(args, tenants)
	}
	rows, err := conn.Query(ctx, "SELECT "+owner+", ARRAY["+strings.Join(keys, ", ")+"], "+
		RowHashSQL("t", pgx.Identifier{schema, t.Name}.Sanitize())+" FROM "+from, args...)
	if err != nil {
		return fmt.Errorf("read row hashes of %s: %w", t.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			tenant int64
			h      RowHash
		)
		if err := rows.Scan(&tenant, &h.Key, &h.Hash); err != nil {
			return fmt.Errorf("read row hashes of %s: %w", t.Name, err)
		}
		if err := emit(TenantTable{Tenant: tenant, Table: t.Name}, h); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read row hashes of %s: %w", t.Name, err)
	}
	return nil
}

// DiffKind says how a row differs from the truth.
type DiffKind string

// The ways a row can differ.
const (
	// Missing rows are in the truth and not in the state.
	Missing DiffKind = "missing"
	// Extra rows are in the state and not in the truth (their key is unknown to it).
	Extra DiffKind = "extra"
	// Changed rows have the truth's key and other content.
	Changed DiffKind = "changed"
	// Duplicated rows are second copies of a key (possible only where the key is not enforced).
	Duplicated DiffKind = "duplicated"
)

// RowDiff names one differing row by its primary key.
type RowDiff struct {
	Kind DiffKind `json:"kind"`
	// Key holds the primary-key values as text, in fixtures.Table.PrimaryKey order.
	Key []string `json:"key"`
	// Copies is how many rows of the state differ so at the key: 1 for a missing or changed row,
	// the number of rows for extra and duplicated ones.
	Copies int64 `json:"copies"`
}

// TableDiff is the row-level difference of one tenant table.
type TableDiff struct {
	TenantTable
	// Counts of differing rows, always complete.
	Missing    int64 `json:"missing"`
	Extra      int64 `json:"extra"`
	Changed    int64 `json:"changed"`
	Duplicated int64 `json:"duplicated"`
	// Excused counts rows a write of unknown outcome touched that differ from the truth but hold
	// a state the write allows; Unresolved those whose possible states are not known. Neither is
	// counted above.
	Excused    int64 `json:"excused,omitempty"`
	Unresolved int64 `json:"unresolved,omitempty"`
	// Rows lists differing rows, ordered by kind and key, at most the limit given to Diff.
	Rows []RowDiff `json:"rows"`
}

// Differs reports whether anything of the table differs, uncertain rows set apart.
func (d TableDiff) Differs() bool { return d.Missing+d.Extra+d.Changed+d.Duplicated > 0 }

// Doubts are the rows of one table that a write of unknown outcome touched last: for each key
// (KeyString), every state the row may be in (nil: absent; see Expected.Possible). An empty list
// means the states are not known.
type Doubts map[string][]*int64

// Diff compares want (the truth) with got row by row, for the tenant tables Compare found
// different only: per-row hashes are fetched for those and nothing else. A row of a key in the
// table's doubts that differs from want but holds one of the states its doubts allow is
// excused, one whose states are not known is unresolved; every other row is judged as it is.
// limit bounds how many rows each TableDiff lists (the counts stay complete); 0 lists none.
func Diff(ctx context.Context, want, got RowReader, mismatches []Mismatch, doubts map[TenantTable]Doubts, limit int) ([]TableDiff, error) {
	tables := make([]TenantTable, len(mismatches))
	for i, m := range mismatches {
		tables[i] = m.TenantTable
	}
	w, err := want.RowHashes(ctx, tables)
	if err != nil {
		return nil, fmt.Errorf("diff tenant tables: read the truth: %w", err)
	}
	g, err := got.RowHashes(ctx, tables)
	if err != nil {
		return nil, fmt.Errorf("diff tenant tables: read the state: %w", err)
	}
	out := make([]TableDiff, 0, len(mismatches))
	for _, m := range mismatches {
		out = append(out, DiffRows(m.TenantTable, w[m.TenantTable], g[m.TenantTable], doubts[m.TenantTable], limit))
	}
	return out, nil
}

// DiffRows compares one table's rows, want the truth and got the state, as Diff does.
func DiffRows(tt TenantTable, want, got []RowHash, doubts Doubts, limit int) TableDiff {
	d := TableDiff{TenantTable: tt}
	index := func(rows []RowHash) map[string][]int64 {
		m := make(map[string][]int64, len(rows))
		for _, r := range rows {
			k := KeyString(r.Key)
			m[k] = append(m[k], r.Hash)
		}
		return m
	}
	w, g := index(want), index(got)
	var rows []RowDiff
	note := func(kind DiffKind, key string, n int64) {
		switch kind {
		case Missing:
			d.Missing += n
		case Extra:
			d.Extra += n
		case Changed:
			d.Changed += n
		case Duplicated:
			d.Duplicated += n
		}
		rows = append(rows, RowDiff{Kind: kind, Key: strings.Split(key, keySeparator), Copies: n})
	}
	// setApart reports whether the row of key, which differs from want, is one a write of
	// unknown outcome allows (or cannot be judged), counting it so.
	setApart := func(key string) bool {
		states, doubted := doubts[key]
		if !doubted {
			return false
		}
		if len(states) == 0 {
			d.Unresolved++
			return true
		}
		gh := g[key]
		if len(gh) > 1 {
			return false // no write makes two rows of one key
		}
		if slices.ContainsFunc(states, func(s *int64) bool {
			return (s == nil && len(gh) == 0) || (s != nil && len(gh) == 1 && *s == gh[0])
		}) {
			d.Excused++
			return true
		}
		return false
	}
	for k, wh := range w {
		gh, ok := g[k]
		if (!ok || !slices.Contains(gh, wh[0]) || len(gh) > 1) && setApart(k) {
			continue
		}
		switch {
		case !ok:
			note(Missing, k, 1)
			continue
		case !slices.Contains(gh, wh[0]):
			note(Changed, k, 1)
		}
		if len(gh) > 1 {
			note(Duplicated, k, int64(len(gh)-1))
		}
	}
	for k, gh := range g {
		if _, ok := w[k]; !ok && !setApart(k) {
			note(Extra, k, int64(len(gh)))
		}
	}
	slices.SortFunc(rows, func(a, b RowDiff) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), compareKeys(a.Key, b.Key))
	})
	d.Rows = rows[:min(len(rows), max(limit, 0))]
	return d
}

// keySeparator joins key values in KeyString: a byte no text value of a key holds.
const keySeparator = "\x00"

// KeyString joins a row's primary-key values (as RowHash.Key holds them) into one string, so a
// key can index a map.
func KeyString(key []string) string { return strings.Join(key, keySeparator) }

// compareKeys orders keys column by column, numerically where both values are integers.
func compareKeys(a, b []string) int {
	for i := range min(len(a), len(b)) {
		x, errX := strconv.ParseInt(a[i], 10, 64)
		y, errY := strconv.ParseInt(b[i], 10, 64)
		var c int
		if errX == nil && errY == nil {
			c = cmp.Compare(x, y)
		} else {
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}
