package locate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
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

// Harm is a transaction Find judged harmful, with what it harmed and why it was judged so; or a
// shard found lost (ServerLost), which no transaction harmed.
type Harm struct {
	XID       uint32     `json:"xid,omitempty"`
	FirstLSN  backup.LSN `json:"first_lsn,omitzero"`
	CommitLSN backup.LSN `json:"commit_lsn,omitzero"`
	Time      time.Time  `json:"time"`
	// Tenants counts the rows it deleted or overwrote, by tenant.
	Tenants map[int64]int `json:"tenants"`
	// Tables are the tables it changed, sorted.
	Tables []string `json:"tables,omitempty"`
	// DroppedDatabases are the databases it dropped (the database layout's harm).
	DroppedDatabases []uint32 `json:"dropped_databases,omitempty"`
	// Column is set when it overwrote or dropped one column of a table rather than removing rows
	// (an UPDATE without its WHERE, a bad migration): what a repair puts back.
	Column *incident.ColumnHarm `json:"column,omitempty"`
	// SoftDeleteMark is set when it soft-deleted the tenants' rows: the one deleted_at value it
	// wrote, which an undo clears.
	SoftDeleteMark time.Time `json:"soft_delete_mark,omitzero"`
	// IntendedSoftDeleteMark is set when it deleted rows the ticket says the job should only have
	// marked deleted: its commit time, the mark they come back with.
	IntendedSoftDeleteMark time.Time `json:"intended_soft_delete_mark,omitzero"`
	// ServerLost says the shard does not answer: taken as lost with its data, every tenant on it
	// harmed, everything archived to recover.
	ServerLost bool `json:"server_lost,omitempty"`
	// Confidence is "reported" (it changed rows of a tenant the tickets name), "pattern" (it
	// did to other tenants, through the same tables, what a reported harm did: the same script,
	// in another transaction) or "lost" (a shard none of the reported tenants lives on does not
	// answer); Why says it in words.
	Confidence string `json:"confidence"`
	Why        string `json:"why"`
}

// RecoverTo is the recovery target just before the harm, exclusive: its transaction, whose
// damage happens at its commit; or, for a DROP DATABASE, which removes the database's files
// before its commit, the start of its first WAL record; none (everything archived) for a lost
// shard.
func (h Harm) RecoverTo() cluster.RecoveryTarget {
	switch {
	case h.ServerLost:
		return cluster.RecoveryTarget{}
	case len(h.DroppedDatabases) > 0:
		return cluster.RecoveryTarget{LSN: h.FirstLSN.String()}
	}
	return cluster.RecoveryTarget{XID: strconv.FormatUint(uint64(h.XID), 10)}
}

// What says in a few words what the harm did: deleted rows, overwrote or dropped a column,
// soft-deleted rows, or lost the shard.
func (h Harm) What() string {
	switch {
	case h.ServerLost:
		return "shard lost"
	case h.Column != nil && h.Column.Dropped:
		return "dropped " + h.Column.Table + "." + h.Column.Column
	case h.Column != nil:
		return "overwrote " + h.Column.Table + "." + h.Column.Column
	case !h.SoftDeleteMark.IsZero():
		return "soft-deleted rows"
	case len(h.DroppedDatabases) > 0:
		return "dropped databases"
	}
	return "deleted rows"
}

// Finding is what Find found on one shard.
type Finding struct {
	Shard int `json:"shard"`
	// Harms are the harmful transactions, in WAL order.
	Harms []Harm `json:"harms"`
	// RecoverTo is the recovery target just before the shard's first harm (exclusive); each
	// harm has its own (Harm.RecoverTo). Empty when nothing harmful was found, or the shard
	// was lost (recover everything archived).
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
// ticket's window that deleted or overwrote rows, dropped tables (DROP TABLE, DROP SCHEMA,
// TRUNCATE) or databases, or altered columns, recovers a sidecar to just before the first of
// them, and asks it whose rows those were: one query per table changed, whatever the number of
// transactions and tenants. Where a transaction changed a tenant's rows in bulk without deleting
// them, the live rows of the same keys tell which column it overwrote, and with what (the
// soft-delete column: a soft delete); where it altered a column, the live catalog tells whether
// the column is gone.
//
// A transaction that wiped a reported tenant, or changed at least half of its rows of a table,
// is harmful (a tenant's own writes, a row at a time, are not); so is one, on any shard, that did
// to other tenants what a harmful one did, through the same tables: wiped them (deleted rows of
// the model's root table), soft-deleted them, overwrote or dropped the same column — a script run
// in many transactions, or on every shard. Every tenant a harmful transaction changed is a
// victim, the ones no ticket names included; a transaction that changed other tenants' rows
// otherwise (the workload's own writes) is not a harm. Where the ticket says the job meant to
// soft-delete, its deletes are marked to come back soft-deleted at their commit.
//
// A shard that answers no connection for a few seconds is taken as lost, with every tenant the
// catalog places on it. It returns one finding per shard, in shard order.
func Find(ctx context.Context, c cluster.Cluster, backups []cluster.Backup, m *fixtures.Model, rep incident.Ticket) ([]Finding, error) {
	if len(backups) != len(c.Shards()) {
		return nil, fmt.Errorf("locate harm: %d base backup(s) for %d shard(s)", len(backups), len(c.Shards()))
	}
	var all []searched
	for shard := range c.Shards() {
		s, err := search(ctx, c, shard, backups[shard], m, rep)
		if errors.Is(err, errNoAnswer) {
			s = searched{shard: shard, lost: err}
		} else if err != nil {
			return nil, fmt.Errorf("locate harm on shard %d: %w", shard, err)
		}
		all = append(all, s)
	}
	if slices.ContainsFunc(all, func(s searched) bool { return s.lost != nil }) {
		if err := placeTenants(ctx, c, all); err != nil {
			return nil, err
		}
	}
	return judge(all, m, rep), nil
}

// placeTenants gives every lost shard of all the tenants the catalog places on it.
func placeTenants(ctx context.Context, c cluster.Cluster, all []searched) error {
	return cluster.WithConn(ctx, c.Catalog().DSN(), func(conn *pgx.Conn) error {
		tenants, err := fixtures.ReadTenants(ctx, conn)
		if err != nil {
			return fmt.Errorf("locate harm: read where the tenants live: %w", err)
		}
		for _, t := range tenants {
			if t.Shard >= 0 && t.Shard < len(all) && all[t.Shard].lost != nil {
				all[t.Shard].tenants = append(all[t.Shard].tenants, t.ID)
			}
		}
		return nil
	})
}

// searched is one shard's transactions in the window, and what each did to tenants; or, for a
// shard that does not answer, why it was taken as lost and the tenants on it.
type searched struct {
	shard   int
	txns    []*Txn
	touched [][]touch
	lost    error
	tenants []int64
}

// runDatabases returns the oids of the run's databases on live: its own and its tenants'. The WAL
// holds every database's changes, and on a server pgdrill did not start the others are its
// owner's, whose transactions are no harm of the drill's.
func runDatabases(ctx context.Context, live cluster.Server) (map[uint32]bool, error) {
	ours := map[uint32]bool{}
	err := cluster.WithConn(ctx, live.DSN(), func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, "SELECT oid::int8 FROM pg_database WHERE datname = current_database() OR datname ~ $1", fixtures.TenantContainerPattern)
		if err != nil {
			return err
		}
		var oid int64
		_, err = pgx.ForEachRow(rows, []any{&oid}, func() error {
			ours[uint32(oid)] = true
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list the run's databases on %s: %w", live.Name(), err)
	}
	return ours, nil
}

// search reads shard's WAL from its backup b to now, and finds what each transaction in the
// ticket's window did to tenants.
func search(ctx context.Context, c cluster.Cluster, shard int, b cluster.Backup, m *fixtures.Model, rep incident.Ticket) (searched, error) {
	out := searched{shard: shard}
	live := c.Shards()[shard]
	end, err := answering(ctx, live)
	if err != nil {
		return out, err
	}
	_, through, err := backup.ArchiveNowThrough(ctx, live)
	if err != nil {
		return out, err
	}
	if at, err := backup.ParseLSN(end); err == nil && at > through {
		end = through.String() // past it lies nothing but the next segment's page header
	}
	txns, err := scanWAL(ctx, live, b.StartLSN, end)
	if err != nil {
		return out, err
	}
	ours, err := runDatabases(ctx, live)
	if err != nil {
		return out, err
	}
	for _, t := range txns {
		if t.Outcome == Committed && !t.Time.Before(rep.From) && !t.Time.After(rep.To) && t.Altered() && t.In(ours) {
			out.txns = append(out.txns, t)
		}
	}
	if len(out.txns) == 0 {
		return out, nil
	}
	out.touched, err = whoseRows(ctx, c, shard, b, m, out.txns)
	return out, err
}

// bulkRows is the fewest rows of a table a bulk change of a tenant changes: a workload's write
// of one row is never one.
const bulkRows = 2

// shardTotals sums, per table and tenant, the rows the shard's transactions changed of the
// tenant where each changed at least bulkRows of them: a script that deletes a tenant's rows in
// batches changes them all in bulk, though no one batch changes half.
func shardTotals(touched [][]touch) map[string]map[int64]int {
	out := map[string]map[int64]int{}
	for _, ts := range touched {
		for _, t := range ts {
			for id, n := range t.tenants {
				if n < bulkRows {
					continue
				}
				if out[t.table] == nil {
					out[t.table] = map[int64]int{}
				}
				out[t.table][id] += n
			}
		}
	}
	return out
}

// bulk reports whether touch t deleted rows of tenant id from the root table (wiped it), or
// changed at least bulkRows of its rows of the table where the shard's transactions that did so
// changed at least half of them (totals: shardTotals): what a harm does, in one transaction or in
// batches, unlike a tenant's own writes, a row at a time.
func bulk(t touch, id int64, root string, totals map[string]map[int64]int) bool {
	n := t.tenants[id]
	return t.deleted[id] > 0 && t.table == root || n >= bulkRows && 2*totals[t.table][id] >= t.had[id]
}

// subset reports whether every one of a is in b.
func subset(a, b []string) bool {
	return !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// judge picks the harmful transactions of every shard, given what each did to tenants, the
// model and the ticket, and returns one finding per shard.
func judge(all []searched, m *fixtures.Model, rep incident.Ticket) []Finding {
	root := m.RootTable().Name
	type ref struct{ s, i int } // shard, transaction
	totals := make([]map[string]map[int64]int, len(all))
	for s := range all {
		totals[s] = shardTotals(all[s].touched)
	}
	tablesOf := func(r ref) []string {
		var names []string
		for _, t := range all[r.s].touched[r.i] {
			names = append(names, t.table)
		}
		return names
	}
	// deletes reports whether r deleted some tenant's rows in bulk.
	deletes := func(r ref) bool {
		return slices.ContainsFunc(all[r.s].touched[r.i], func(t touch) bool {
			for id := range t.deleted {
				if bulk(t, id, root, totals[r.s]) {
					return true
				}
			}
			return false
		})
	}
	// What it did to columns: "drop T.C" or "set T.C", one per table.
	columnsOf := func(r ref) []string {
		var out []string
		for _, t := range all[r.s].touched[r.i] {
			if c := t.change; c != nil && c.dropped {
				out = append(out, "drop "+t.table+"."+c.column)
			} else if c != nil {
				out = append(out, "set "+t.table+"."+c.column)
			}
		}
		return out
	}
	var refs []ref
	for s := range all {
		for i := range all[s].txns {
			refs = append(refs, ref{s, i})
		}
	}
	harmful := map[ref]Harm{}
	// What the reported harms did: the tables they deleted through, the columns they changed, and
	// a harm that did each (for a Why).
	var deletedThrough, changedCols []string
	var deleter, changer *ref
	for _, r := range refs {
		var named []int64
		for _, t := range all[r.s].touched[r.i] {
			for _, id := range rep.Tenants {
				if bulk(t, id, root, totals[r.s]) && !slices.Contains(named, id) {
					named = append(named, id)
				}
			}
		}
		if len(named) == 0 {
			continue
		}
		slices.Sort(named)
		harmful[r] = harmOf(all[r.s].txns[r.i], all[r.s].touched[r.i], m, rep, "reported",
			fmt.Sprintf("it %s of reported tenant(s) %v", did(all[r.s].touched[r.i], root), named))
		if deletes(r) {
			deletedThrough = append(deletedThrough, tablesOf(r)...)
			deleter = &r
		}
		if cols := columnsOf(r); len(cols) > 0 {
			changedCols = append(changedCols, cols...)
			changer = &r
		}
	}
	// Transactions that did to other tenants what a reported harm did, through its tables.
	for _, r := range refs {
		if _, ok := harmful[r]; ok {
			continue
		}
		var like *ref
		switch cols := columnsOf(r); {
		case deletes(r) && subset(tablesOf(r), deletedThrough):
			like = deleter
		case len(cols) > 0 && subset(cols, changedCols):
			like = changer
		default:
			continue
		}
		harmful[r] = harmOf(all[r.s].txns[r.i], all[r.s].touched[r.i], m, rep, "pattern",
			fmt.Sprintf("it %s of other tenants, as harmful transaction %d on shard %d did, through the same tables: the same script, in another transaction",
				did(all[r.s].touched[r.i], root), all[like.s].txns[like.i].XID, all[like.s].shard))
	}
	out := make([]Finding, len(all))
	for s, sh := range all {
		f := Finding{Shard: sh.shard, Considered: len(sh.txns)}
		if sh.lost != nil {
			f.Harms = []Harm{lostShard(sh, rep)}
			out[s] = f
			continue
		}
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

// did says what a transaction that touched ts did, for a Why.
func did(ts []touch, root string) string {
	for _, t := range ts {
		if t.table == root && len(t.deleted) > 0 {
			return "wiped rows"
		}
	}
	for _, t := range ts {
		if len(t.deleted) > 0 {
			return "deleted rows in bulk"
		}
	}
	for _, t := range ts {
		if c := t.change; c != nil && c.dropped {
			return "dropped column " + t.table + "." + c.column + ", which held rows"
		} else if c != nil {
			return "wrote one value into " + t.table + "." + c.column + " in rows"
		}
	}
	return "changed at least half of the rows of a table"
}

// harmOf is transaction t, which touched ts, as a harm: with the one column it overwrote or
// dropped, or the mark it soft-deleted with, and, where the ticket says the job meant to
// soft-delete what it deleted, the mark its rows come back with.
func harmOf(t *Txn, ts []touch, m *fixtures.Model, rep incident.Ticket, confidence, why string) Harm {
	h := Harm{XID: t.XID, FirstLSN: t.FirstLSN, CommitLSN: t.CommitLSN, Time: t.Time, Tenants: map[int64]int{},
		DroppedDatabases: t.DroppedDatabases, Confidence: confidence, Why: why}
	var changed []touch // the tables where it changed a column
	deleted := false
	for _, tc := range ts {
		h.Tables = append(h.Tables, tc.table)
		for id, n := range tc.tenants {
			h.Tenants[id] += n
		}
		deleted = deleted || len(tc.deleted) > 0
		if tc.change != nil {
			changed = append(changed, tc)
		}
	}
	slices.Sort(h.Tables)
	if !deleted && len(changed) > 0 {
		h.characterize(changed, m)
	}
	if deleted && rep.Intended == incident.MeantSoftDelete {
		h.IntendedSoftDeleteMark = h.Time.Truncate(time.Microsecond)
	}
	return h
}

// characterize says what the harm did to columns: soft-deleted the rows, where every table's
// change wrote one time into its soft-delete column; overwrote or dropped one column, where it
// changed one table.
func (h *Harm) characterize(changed []touch, m *fixtures.Model) {
	mark := changed[0].change.mark
	soft := !mark.IsZero()
	for _, tc := range changed {
		t, _ := m.LookupTable(tc.table)
		soft = soft && tc.change.column == t.SoftDelete && !tc.change.dropped && tc.change.mark.Equal(mark)
	}
	switch {
	case soft:
		h.SoftDeleteMark = mark
	case len(changed) == 1:
		c := changed[0].change
		h.Column = &incident.ColumnHarm{Table: changed[0].table, Column: c.column, Dropped: c.dropped, Value: c.value}
	}
}

// lostShard is the harm of a shard that did not answer: every tenant on it.
func lostShard(sh searched, rep incident.Ticket) Harm {
	h := Harm{ServerLost: true, Time: time.Now().UTC(), Tenants: map[int64]int{}, Confidence: "lost"}
	for _, id := range sh.tenants {
		h.Tenants[id] = 0 // its rows went with it, uncounted
		if slices.Contains(rep.Tenants, id) {
			h.Confidence = "reported"
		}
	}
	h.Why = fmt.Sprintf("shard %d does not answer (%v): taken as lost with its data, and every one of the %d tenant(s) the catalog places on it with it",
		sh.shard, sh.lost, len(sh.tenants))
	return h
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
			ih := incident.Harm{Shard: f.Shard, Tenants: slices.Sorted(maps.Keys(h.Tenants)), Time: h.Time, RecoverTo: h.RecoverTo(),
				Column: h.Column, SoftDeleteMark: h.SoftDeleteMark, IntendedSoftDeleteMark: h.IntendedSoftDeleteMark, ServerLost: h.ServerLost}
			if !h.ServerLost {
				ih.XID, ih.LSN, ih.CommitLSN = strconv.FormatUint(uint64(h.XID), 10), h.FirstLSN.String(), h.CommitLSN.String()
			}
			rec.Harms = append(rec.Harms, ih)
		}
	}
	slices.SortFunc(rec.Affected, func(a, b incident.Tenant) int { return cmp.Compare(a.ID, b.ID) })
	return rec
}

// errScanEnded stops a WAL dump whose reader has stopped reading.
var errScanEnded = errors.New("WAL scan ended")

// scanWAL reads the transactions of live's WAL from start to end as pg_waldump prints them,
// streamed through Scan as they come: the dump of a harm of millions of rows is never held
// whole, only the transactions Scan keeps.
func scanWAL(ctx context.Context, live cluster.Server, start, end string) ([]*Txn, error) {
	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	go func() {
		err := live.DumpWAL(ctx, start, end, pw)
		pw.CloseWithError(err)
		dumped <- err
	}()
	txns, err := Scan(pr)
	pr.CloseWithError(errScanEnded) // a scan that stopped early stops the dump too
	if derr := <-dumped; derr != nil && !errors.Is(derr, errScanEnded) {
		return nil, derr
	}
	return txns, err
}
