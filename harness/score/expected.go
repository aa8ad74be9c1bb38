package score

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// victimRows is a truth.RowReader of what the affected tenants must hold: their baseline rows
// changed by every acknowledged write of the ledger, in order.
type victimRows struct {
	base    *truth.RowFile
	entries []workload.Entry
}

var _ truth.RowReader = victimRows{}

// RowHashes implements truth.RowReader: one pass over the ledger for all the tables asked for.
func (v victimRows) RowHashes(ctx context.Context, tables []truth.TenantTable) (map[truth.TenantTable][]truth.RowHash, error) {
	base, err := v.base.RowHashes(ctx, tables)
	if err != nil {
		return nil, err
	}
	byKey := make(map[truth.TenantTable]map[string]truth.RowHash, len(tables))
	for _, tt := range tables {
		if byKey[tt] != nil {
			continue
		}
		rows := map[string]truth.RowHash{}
		for _, r := range base[tt] {
			rows[truth.KeyString(r.Key)] = r
		}
		byKey[tt] = rows
	}
	for _, w := range v.entries {
		rows := byKey[w.TenantTable()]
		if rows == nil || w.Indeterminate {
			continue
		}
		k := truth.KeyString(w.Key)
		if w.Op == workload.OpDelete {
			delete(rows, k)
		} else {
			rows[k] = truth.RowHash{Key: w.Key, Hash: w.Delta.Add}
		}
	}
	out := make(map[truth.TenantTable][]truth.RowHash, len(byKey))
	for tt, rows := range byKey {
		out[tt] = slices.Collect(maps.Values(rows))
	}
	return out, nil
}

// count says how many rows each of tables must hold, without holding them: the baseline's
// count, less the rows the ledger's acknowledged writes touched, plus those of them the last
// such write to their key left in place. Only the tables the ledger wrote to are read back, one
// row at a time, to tell which of the keys it touched the baseline held.
func (v victimRows) count(ctx context.Context, tables []truth.TenantTable) (map[truth.TenantTable]int64, error) {
	out := make(map[truth.TenantTable]int64, len(tables))
	for _, tt := range tables {
		out[tt] = v.base.Count(tt)
	}
	kept := map[truth.TenantTable]map[string]bool{} // by key: whether the last write left the row
	for _, w := range v.entries {
		tt := w.TenantTable()
		if _, wanted := out[tt]; !wanted || w.Indeterminate {
			continue
		}
		if kept[tt] == nil {
			kept[tt] = map[string]bool{}
		}
		kept[tt][truth.KeyString(w.Key)] = w.Op != workload.OpDelete
	}
	err := v.base.EachRowHash(ctx, slices.Collect(maps.Keys(kept)), func(tt truth.TenantTable, row truth.RowHash) error {
		if _, touched := kept[tt][truth.KeyString(row.Key)]; touched {
			out[tt]--
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for tt, keys := range kept {
		for _, left := range keys {
			if left {
				out[tt]++
			}
		}
	}
	return out, nil
}

// expectedRows is a truth.RowReader of what the affected tenants must hold: a table's rows as a
// replay rebuilt them where it was rebuilt, else as the ledger's acknowledged writes make them.
type expectedRows struct {
	replayed map[truth.TenantTable][]truth.RowHash
	ledger   victimRows
}

var _ truth.RowReader = expectedRows{}

// notReplayed lists the tables of tables no replay rebuilt: what the ledger says they hold.
func (x expectedRows) notReplayed(tables []truth.TenantTable) []truth.TenantTable {
	var rest []truth.TenantTable
	for _, tt := range tables {
		if _, ok := x.replayed[tt]; !ok {
			rest = append(rest, tt)
		}
	}
	return rest
}

// RowHashes implements truth.RowReader.
func (x expectedRows) RowHashes(ctx context.Context, tables []truth.TenantTable) (map[truth.TenantTable][]truth.RowHash, error) {
	out, err := x.ledger.RowHashes(ctx, x.notReplayed(tables))
	if err != nil {
		return nil, err
	}
	for _, tt := range tables {
		if rows, ok := x.replayed[tt]; ok {
			out[tt] = rows
		}
	}
	return out, nil
}

// count says how many rows each of tables must hold, as RowHashes would give them.
func (x expectedRows) count(ctx context.Context, tables []truth.TenantTable) (map[truth.TenantTable]int64, error) {
	out, err := x.ledger.count(ctx, x.notReplayed(tables))
	if err != nil {
		return nil, err
	}
	for _, tt := range tables {
		if rows, ok := x.replayed[tt]; ok {
			out[tt] = int64(len(rows))
		}
	}
	return out, nil
}

// replays rebuilds tables as they must be by truth.Replay, in sessions of its own on the
// servers of src, one connection per server, kept until close.
type replays struct {
	f     *Facts
	conns map[string]*pgx.Conn
	// marks are the soft deletes the incident's purge should have been, by tenant, read once.
	marks map[int64]incident.IntendedMark
}

func newReplays(f *Facts) *replays {
	r := &replays{f: f, conns: map[string]*pgx.Conn{}}
	if f.Incident != nil {
		r.marks = f.Incident.IntendedMarks()
	}
	return r
}

// conn returns the session on the server at dsn, opening it when needed.
func (r *replays) conn(ctx context.Context, dsn string) (*pgx.Conn, error) {
	if c, ok := r.conns[dsn]; ok {
		return c, nil
	}
	c, err := truth.Connect(ctx, dsn, "")
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	r.conns[dsn] = c
	return c, nil
}

func (r *replays) close(ctx context.Context) {
	for _, c := range r.conns {
		_ = c.Close(context.WithoutCancel(ctx))
	}
}

// table rebuilds what tenant table tt must hold: the tenant's rows as the fill generated them
// (fixtures regenerates the same bytes), checked against the baseline's fingerprint, with the
// ledger's writes to it replayed.
func (r *replays) table(ctx context.Context, tt truth.TenantTable) (truth.Expected, error) {
	t, ok := r.f.Plan.Tenant(tt.Tenant)
	if !ok {
		return truth.Expected{}, fmt.Errorf("rebuild %s of tenant %d: the tenant is not in the plan", tt.Table, tt.Tenant)
	}
	model, ok := r.f.Plan.Model.LookupTable(tt.Table)
	if !ok {
		return truth.Expected{}, fmt.Errorf("rebuild %s of tenant %d: unknown table", tt.Table, tt.Tenant)
	}
	base, err := r.f.Plan.TableCopy(tt.Tenant, tt.Table)
	if err != nil {
		return truth.Expected{}, err
	}
	conn, err := r.conn(ctx, r.f.Source.Shards[t.Shard])
	if err != nil {
		return truth.Expected{}, err
	}
	mark, marked := r.marks[tt.Tenant]
	var softDelete *incident.IntendedMark
	if marked && model.SoftDelete != "" {
		softDelete = &mark
	}
	exp, err := truth.Replay(ctx, conn, model, base, writesTo(r.f.Ledger, tt, model, softDelete))
	if err != nil {
		return exp, err
	}
	if want := r.f.Baseline.Snapshot.Tables()[tt]; exp.Base.Rows != want.Rows || exp.Base.Sum != cmp.Or(want.Sum, "0") {
		return exp, fmt.Errorf("rebuild %s of tenant %d: the generated rows (%d, sum %s) are not those the baseline read (%d, sum %s): "+
			"the fill is not reproducible, a harness bug", tt.Table, tt.Tenant, exp.Base.Rows, exp.Base.Sum, want.Rows, want.Sum)
	}
	return exp, nil
}

// directory rebuilds what the tenant directory must hold: the baseline's copy of it with the
// ledger's writes to it replayed.
func (r *replays) directory(ctx context.Context) (truth.Expected, error) {
	conn, err := r.conn(ctx, r.f.Source.Catalog)
	if err != nil {
		return truth.Expected{}, err
	}
	d := r.f.Baseline.Directory
	var writes []truth.Write
	for _, e := range r.f.Ledger {
		if e.Directory() {
			writes = append(writes, writeOf(e))
		}
	}
	dir := fixtures.DirectoryTable()
	base := fixtures.Copy{Reader: bytes.NewReader(d.Copy), Format: "binary", Columns: dir.WrittenColumns()}
	exp, err := truth.Replay(ctx, conn, dir, base, writes)
	if err != nil {
		return exp, err
	}
	sum := new(big.Int)
	for _, row := range d.Rows {
		sum.Add(sum, big.NewInt(row.Hash))
	}
	if exp.Base.Rows != int64(len(d.Rows)) || exp.Base.Sum != sum.String() {
		return exp, fmt.Errorf("rebuild the tenant directory: its copy does not hash as the baseline read it, a harness bug")
	}
	return exp, nil
}

// writesTo returns the ledger's writes to tenant table tt, in order, as truth.Replay takes them.
// With softDelete, the soft delete a purge should have been is one of them, where it should
// have happened: after the writes acknowledged before the purge committed, before the later ones
// (which could only add rows: the purge had left nothing to change).
func writesTo(entries []workload.Entry, tt truth.TenantTable, t fixtures.Table, softDelete *incident.IntendedMark) []truth.Write {
	var out []truth.Write
	addMark := func() {
		mark := workload.Timestamp(softDelete.Mark).Format(time.RFC3339Nano)
		out = append(out, truth.Write{Op: truth.OpSoftDelete, Values: map[string]*string{t.SoftDelete: &mark}})
		softDelete = nil
	}
	for _, e := range entries {
		if e.Directory() || e.TenantTable() != tt {
			continue
		}
		if at := cmp.Or(e.Acked, e.Sent); softDelete != nil && at.After(softDelete.Noted) {
			addMark()
		}
		out = append(out, writeOf(e))
	}
	if softDelete != nil {
		addMark()
	}
	return out
}

// writeOf is a ledger entry as truth.Replay takes it.
func writeOf(e workload.Entry) truth.Write {
	w := truth.Write{Key: e.Key, Op: string(e.Op), Values: e.Values, Uncertain: e.Indeterminate}
	if !e.Indeterminate && e.Op != workload.OpDelete {
		h := e.Delta.Add
		w.Hash = &h
	}
	return w
}
