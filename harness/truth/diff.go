package truth

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
)

// RowHash is one row's primary key (as text, in primary-key column order) and content hash.
type RowHash struct {
	Key  []string
	Hash int64
}

// RowReader yields a tenant table's per-row hashes. A Source reads them from its servers; a
// caller can also keep them from before an incident and serve them back.
type RowReader interface {
	RowHashes(ctx context.Context, tenant int64, table string) ([]RowHash, error)
}

var _ RowReader = Source{}

// RowHashes reads the tenant's rows of table from every shard of s (a misplaced row is still the
// tenant's row). Only the primary key and a hash cross the network.
func (s Source) RowHashes(ctx context.Context, tenant int64, table string) ([]RowHash, error) {
	t, ok := s.Model.LookupTable(table)
	if !ok {
		return nil, fmt.Errorf("read row hashes: unknown table %q", table)
	}
	var out []RowHash
	for shard := range s.Shards {
		rows, err := s.shardRowHashes(ctx, shard, tenant, t)
		if err != nil {
			return nil, fmt.Errorf("read row hashes of tenant %d table %s on shard %d: %w", tenant, table, shard, err)
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (s Source) shardRowHashes(ctx context.Context, shard int, tenant int64, t fixtures.Table) ([]RowHash, error) {
	conn, err := s.connect(ctx, shard, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	loc := s.Layout.Locate(tenant)
	name := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
	from := name + " t"
	switch s.Layout {
	case fixtures.LayoutShared:
		owned, err := s.Model.OwnerSQL(t, loc.Schema, "t")
		if err != nil {
			return nil, err
		}
		from = owned.From + " WHERE " + owned.Where(tenant)
	case fixtures.LayoutSchema, fixtures.LayoutDatabase:
		containers, err := s.containers(ctx, conn)
		if err != nil {
			return nil, err
		}
		if _, ok := containers[tenant]; !ok {
			return nil, nil
		}
		if s.Layout == fixtures.LayoutDatabase {
			db, err := s.connect(ctx, shard, loc.Database)
			if err != nil {
				return nil, err
			}
			defer db.Close(context.WithoutCancel(ctx))
			conn = db
		}
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	keys := make([]string, len(t.PrimaryKey))
	for i, c := range t.PrimaryKey {
		keys[i] = "t." + pgx.Identifier{c}.Sanitize() + "::pg_catalog.text"
	}
	rows, err := conn.Query(ctx, "SELECT ARRAY["+strings.Join(keys, ", ")+"], "+RowHashSQL("t", name)+" FROM "+from)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RowHash, error) {
		var h RowHash
		err := r.Scan(&h.Key, &h.Hash)
		return h, err
	})
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
	out := make([]TableDiff, 0, len(mismatches))
	for _, m := range mismatches {
		w, err := want.RowHashes(ctx, m.Tenant, m.Table)
		if err != nil {
			return nil, fmt.Errorf("diff tenant %d table %s: %w", m.Tenant, m.Table, err)
		}
		g, err := got.RowHashes(ctx, m.Tenant, m.Table)
		if err != nil {
			return nil, fmt.Errorf("diff tenant %d table %s: %w", m.Tenant, m.Table, err)
		}
		out = append(out, DiffRows(m.TenantTable, w, g, doubts[m.TenantTable], limit))
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
