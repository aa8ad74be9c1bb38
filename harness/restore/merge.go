package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// ConflictPolicy decides what a merge does with a row that exists both in the source and live
// with different contents.
type ConflictPolicy string

const (
	// KeepLive keeps the live row: it was written after the incident and is newer than the
	// backup. Right for deletions, where the incident removed rows and changed none.
	KeepLive ConflictPolicy = "keep-live"
	// PreferBackup overwrites the whole live row with the source's: the incident itself changed
	// it. Right when the harm rewrote whole rows in ways the incident record does not pin to one
	// column (a botched import, a job that corrupted rows), so every live column is damage, and
	// only when nothing written to those rows since the source was taken must survive: it is
	// overwritten too. A harm the record pins to one column (an UPDATE without WHERE, a dropped
	// column: incident.Harm.Column) is repaired column by column whatever the policy, which
	// keeps later writes.
	PreferBackup ConflictPolicy = "prefer-backup"
)

// maxConflictKeys bounds how many conflicting rows a tenant's result names.
const maxConflictKeys = 20

// merger copies tenants from a source (a sidecar, a standby, an export) into the same
// database of a live shard.
type merger struct {
	runID  string
	layout fixtures.Layout
	// model is the tenancy model of the tables merged: their order, keys and owners.
	model  *fixtures.Model
	policy ConflictPolicy
	// log takes what a merge leaves undone without failing (a repaired column left nullable).
	log *slog.Logger
	// marks are the soft deletes a purge should have been, by tenant: the rows a merge brings
	// back for those tenants are marked deleted as the job should have left them.
	marks map[int64]incident.IntendedMark
	// tl takes the tenants' transactions retried after a lost connection.
	tl *timeline
	// journal, when set, says which tenants an earlier run of the restore brought back, and
	// takes each tenant's transaction before it commits; harm names the harm restored from in it.
	journal *Journal
	harm    string
}

// newMerger returns the merger a strategy restores rec's tenants with in env, under policy p
// (KeepLive when p is empty: a strategy's zero value must not overwrite newer writes), noting
// its retries on tl.
func newMerger(env Env, rec incident.Record, p ConflictPolicy, tl *timeline) merger {
	return merger{runID: env.Cluster.RunID(), layout: rec.Layout, model: rec.Model, policy: cmp.Or(p, KeepLive), log: env.Log,
		marks: rec.IntendedMarks(), tl: tl, journal: env.Journal}
}

// source is where a merge reads the affected tenants' pre-incident rows: a server recovered to
// before the harm, or a logical export on disk. Every source hands out the same binary COPY
// stream, of the table's written columns (fixtures.Table.WrittenColumns), so the merge SQL is
// written once whatever the rows come from.
type source interface {
	// copyOut writes the tenant's rows of table t of model m, kept at loc on the live shard, to
	// w in binary COPY format.
	copyOut(ctx context.Context, w io.Writer, m *fixtures.Model, loc fixtures.Location, t fixtures.Table, tenantID int64) error
	// copyReference writes every row of reference table t, as the database at loc holds it, to
	// w in binary COPY format: what a tenant database created anew needs beside its own rows.
	copyReference(ctx context.Context, w io.Writer, loc fixtures.Location, t fixtures.Table) error
}

// serverSource reads rows from a server recovered to before the harm. It keeps one connection,
// to the database it last read, so that the database layout's tenants do not hold one each.
type serverSource struct {
	server cluster.Server
	db     string
	conn   *pgx.Conn
}

func (s *serverSource) copyOut(ctx context.Context, w io.Writer, m *fixtures.Model, loc fixtures.Location, t fixtures.Table, tenantID int64) error {
	rows, err := m.TenantRowsSQL(t, loc.Schema, tenantID)
	if err != nil {
		return err
	}
	return s.copy(ctx, w, loc, rows)
}

func (s *serverSource) copyReference(ctx context.Context, w io.Writer, loc fixtures.Location, t fixtures.Table) error {
	return s.copy(ctx, w, loc, "SELECT "+fixtures.ColumnList(t.WrittenColumns())+" FROM "+pgx.Identifier{fixtures.SharedSchema, t.Name}.Sanitize())
}

// copy writes the rows of query, run in the database at loc, to w in binary COPY format.
func (s *serverSource) copy(ctx context.Context, w io.Writer, loc fixtures.Location, query string) error {
	if s.conn == nil || s.conn.IsClosed() || s.db != loc.Database {
		s.close(ctx)
		conn, err := pgx.Connect(ctx, s.server.DSNFor(loc.Database))
		if err != nil {
			return fmt.Errorf("connect to %s on source %s: %w", loc.Database, s.server.Name(), err)
		}
		s.conn, s.db = conn, loc.Database
	}
	if _, err := s.conn.PgConn().CopyTo(ctx, w, "COPY ("+query+") TO STDOUT (FORMAT binary)"); err != nil {
		// A connection to the source lost halfway (a cut, a reset) fails the tenant's transaction
		// as a lost connection: the merge tries the tenant again, on new connections.
		return onConn(s.conn, fmt.Errorf("copy rows out of source %s: %w", s.server.Name(), err))
	}
	return nil
}

// close closes the connection, if one is open.
func (s *serverSource) close(ctx context.Context) {
	if s.conn != nil {
		_ = s.conn.Close(context.WithoutCancel(ctx))
		s.conn = nil
	}
}

// mergeTenant copies one tenant's rows from src into dst in one transaction on dst: table by
// table in foreign-key order, each streamed with binary COPY into a temporary staging table,
// compared with the live rows by primary key, and inserted (or, under PreferBackup, upserted).
// Rows the source lacks are left alone and counted as newer. When the tenant's schema is missing
// on dst (schema layout, dropped) or its database is new (database layout), the tables and their
// constraints are created in the same transaction.
func (m merger) mergeTenant(ctx context.Context, src source, dst *pgx.Conn, tenant incident.Tenant, createTables bool, xid *string) (TenantResult, error) {
	tenantID := tenant.ID
	res := TenantResult{ID: tenantID}
	loc := m.layout.Locate(tenantID)
	if err := cluster.RequireMarker(ctx, dst, m.runID); err != nil {
		return res, err
	}
	err := pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
		if err := m.beginTenant(ctx, tx, tenant, xid); err != nil {
			return err
		}
		tables := m.model.TenantTables()
		if createTables && m.layout == fixtures.LayoutDatabase {
			if err := m.createDatabaseObjects(ctx, src, tx, loc); err != nil {
				return fmt.Errorf("recreate database of tenant %d: %w", tenantID, err)
			}
		}
		if createTables {
			ddl := m.model.CreateTablesSQL(loc.Schema, tables)
			if loc.Schema != fixtures.SharedSchema {
				ddl = "CREATE SCHEMA " + pgx.Identifier{loc.Schema}.Sanitize() + ";\n" + ddl
			}
			if _, err := tx.Exec(ctx, ddl+m.model.ConstraintsSQL(loc.Schema, fixtures.SharedSchema, tables)); err != nil {
				return fmt.Errorf("create tables of tenant %d: %w", tenantID, err)
			}
		}
		// A cycle of foreign keys is broken at a deferrable key: its check waits for the commit,
		// when both ends of every restored row are in.
		if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
			return fmt.Errorf("defer constraints: %w", err)
		}
		for _, t := range tables {
			if err := m.mergeTable(ctx, src, tx, loc, t, tenantID, &res); err != nil {
				return fmt.Errorf("merge %s of tenant %d: %w", t.Name, tenantID, err)
			}
		}
		for _, t := range tables {
			if err := m.linkCycles(ctx, tx, loc, t); err != nil {
				return fmt.Errorf("merge %s of tenant %d: %w", t.Name, tenantID, err)
			}
		}
		if seq := m.model.SequencesSQL(loc.Schema, tables); seq != "" {
			if _, err := tx.Exec(ctx, seq); err != nil {
				return fmt.Errorf("move sequences of tenant %d past its rows: %w", tenantID, err)
			}
		}
		return nil
	})
	return res, err
}

// beginTenant starts tenant t's transaction tx: it takes the transaction's id first, so that if
// the connection is lost at the commit the server can still say whether the tenant is back (see
// committed), and journals it before anything can commit.
func (m merger) beginTenant(ctx context.Context, tx pgx.Tx, t incident.Tenant, xid *string) error {
	if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(xid); err != nil {
		return fmt.Errorf("start transaction of tenant %d: %w", t.ID, err)
	}
	return m.journal.begin(m.harm, t, *xid)
}

// resumed says whether an earlier run of the restore, killed before it ended, brought tenant t
// back already, by its journal: journaled done, or its transaction journaled and committed, as
// the live shard says. Such a tenant is not restored again, and its result is marked Earlier.
func (m merger) resumed(ctx context.Context, live cluster.Server, t incident.Tenant) (TenantResult, bool, error) {
	res, done, xid := m.journal.earlier(m.harm, t)
	if done {
		m.log.Info("an earlier run of the restore brought the tenant back, as its journal says; it is not restored again", "tenant", t.ID)
		res.Earlier = true
		return res, true, nil
	}
	if xid == "" {
		return res, false, nil
	}
	back, err := committed(ctx, live.DSN(), xid)
	if err != nil {
		return res, false, fmt.Errorf("ask whether an earlier run restored tenant %d (transaction %s): %w", t.ID, xid, err)
	}
	if !back {
		return res, false, nil
	}
	m.log.Info("an earlier run of the restore brought the tenant back, as its committed transaction says; it is not restored again", "tenant", t.ID, "xid", xid)
	res = TenantResult{ID: t.ID, Shard: t.Shard, Earlier: true}
	m.finished(res)
	return res, true, nil
}

// allResumed reports whether an earlier run of the restore brought back every one of tenants
// (see resumed), with their results when it did: then the harm needs no source at all.
func (m merger) allResumed(ctx context.Context, live cluster.Server, tenants []incident.Tenant) ([]TenantResult, bool, error) {
	if !m.journal.knows(m.harm, tenants) {
		return nil, false, nil // some tenant was never begun: the merge's own checks do the rest
	}
	var out []TenantResult
	for _, t := range tenants {
		r, done, err := m.resumed(ctx, live, t)
		if err != nil || !done {
			return nil, false, err
		}
		out = append(out, r)
	}
	m.log.Info("an earlier run of the restore brought back every tenant of the harm; nothing is recovered for it", "harm", m.harm)
	return out, true, nil
}

// finished journals that a tenant is back. A journal that cannot take it loses nothing: the
// tenant's transaction, journaled before its commit, says so to the next run.
func (m merger) finished(r TenantResult) {
	if err := m.journal.finish(m.harm, r); err != nil {
		m.log.Warn("could not journal a tenant restored; a run after a crash asks Postgres instead", "tenant", r.ID, "err", err)
	}
}

// createDatabaseObjects gives a tenant database created anew what every tenant database holds
// besides the tenant's tables: the model's types, and its reference tables with their rows as
// the source holds them.
func (m merger) createDatabaseObjects(ctx context.Context, src source, tx pgx.Tx, loc fixtures.Location) error {
	refs := m.model.ReferenceTables()
	if _, err := tx.Exec(ctx, m.model.CreateTypesSQL()+m.model.CreateTablesSQL(fixtures.SharedSchema, refs)); err != nil {
		return fmt.Errorf("create types and reference tables: %w", err)
	}
	for _, t := range refs {
		if _, err := streamCopy(ctx, func(w io.Writer) error { return src.copyReference(ctx, w, loc, t) }, tx.Conn(),
			"COPY "+pgx.Identifier{fixtures.SharedSchema, t.Name}.Sanitize()+" ("+fixtures.ColumnList(t.WrittenColumns())+") FROM STDIN (FORMAT binary)"); err != nil {
			return fmt.Errorf("copy reference table %s: %w", t.Name, err)
		}
	}
	if _, err := tx.Exec(ctx, m.model.ConstraintsSQL(fixtures.SharedSchema, fixtures.SharedSchema, refs)+
		m.model.SequencesSQL(fixtures.SharedSchema, refs)); err != nil {
		return fmt.Errorf("constrain reference tables: %w", err)
	}
	return nil
}

func (m merger) mergeTable(ctx context.Context, src source, tx pgx.Tx, loc fixtures.Location, t fixtures.Table, tenantID int64, res *TenantResult) error {
	live := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
	mark, marked := m.marks[tenantID]
	marked = marked && t.SoftDelete != ""
	links := t.CycleLinks()
	// Rows to mark go through the staging table, where they are marked; rows whose keys close a
	// cycle that cannot be deferred go in without them first.
	if !marked && len(links) == 0 {
		copied, err := m.copyIntoEmpty(ctx, src, tx, loc, t, tenantID)
		if err != nil || copied >= 0 {
			res.RowsRead += max(copied, 0)
			res.RowsWritten += max(copied, 0)
			return err
		}
	}
	stage := m.tempTable("stage", t)
	// Generated columns are computed in the staging table too, so that its rows compare with the
	// live ones whole.
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+stage+" (LIKE "+live+" INCLUDING GENERATED) ON COMMIT DROP"); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	written := fixtures.ColumnList(t.WrittenColumns())
	read, err := streamCopy(ctx, func(w io.Writer) error { return src.copyOut(ctx, w, m.model, loc, t, tenantID) },
		tx.Conn(), "COPY "+stage+" ("+written+") FROM STDIN (FORMAT binary)")
	if err != nil {
		return err
	}
	res.RowsRead += read
	if marked {
		// The tenant should have been soft-deleted, not purged: what comes back comes back marked,
		// as the job should have left it; rows deleted before keep their own mark.
		col := pgx.Identifier{t.SoftDelete}.Sanitize()
		if _, err := tx.Exec(ctx, "UPDATE "+stage+" SET "+col+" = $1 WHERE "+col+" IS NULL", mark.Mark); err != nil {
			return fmt.Errorf("mark staged rows deleted: %w", err)
		}
	}
	// Without statistics the planner guesses the staging table large and joins it to the live
	// table by scanning the whole shard; with them it looks rows up by primary key.
	if _, err := tx.Exec(ctx, "ANALYZE "+stage); err != nil {
		return fmt.Errorf("analyze staging table: %w", err)
	}

	pk := fixtures.ColumnList(t.PrimaryKey)
	join := "(" + fixtures.QualifiedColumns("l", t.PrimaryKey) + ") = (" + fixtures.QualifiedColumns("s", t.PrimaryKey) + ")"
	rows, err := tx.Query(ctx, "SELECT ("+pk+")::text FROM (SELECT s.* FROM "+stage+" s JOIN "+live+" l ON "+join+
		" WHERE l::text IS DISTINCT FROM s::text) c ORDER BY "+pk)
	if err != nil {
		return fmt.Errorf("find conflicts: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find conflicts: %w", err)
	}
	res.Conflicts += int64(len(keys))
	for _, k := range keys {
		if len(res.ConflictKeys) < maxConflictKeys {
			res.ConflictKeys = append(res.ConflictKeys, t.Name+k)
		}
	}

	owned, err := m.model.OwnerCondition(t, loc.Schema, "l", "= $1")
	if err != nil {
		return err
	}
	var newer, absent int64
	if err := tx.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+live+" l WHERE "+owned+" AND NOT EXISTS (SELECT 1 FROM "+
		stage+" s WHERE "+join+")), (SELECT count(*) FROM "+stage+" s WHERE NOT EXISTS (SELECT 1 FROM "+live+" l WHERE "+join+"))",
		tenantID).Scan(&newer, &absent); err != nil {
		return fmt.Errorf("count newer rows: %w", err)
	}
	res.Newer += newer

	// OVERRIDING SYSTEM VALUE: a restored row keeps its identity, GENERATED ALWAYS or not. A row
	// that collides with a live one on any unique key is left out (and counted lost by the judge,
	// not forced in over the live row).
	values := stagedValues(t, links)
	insert := "INSERT INTO " + live + " (" + written + ") OVERRIDING SYSTEM VALUE SELECT " + values + " FROM " + stage +
		" s ON CONFLICT DO NOTHING"
	if m.policy == PreferBackup {
		var set []string
		for _, c := range t.WrittenColumns() {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
		insert = "INSERT INTO " + live + " AS l (" + written + ") OVERRIDING SYSTEM VALUE SELECT " + values + " FROM " + stage +
			" s ON CONFLICT (" + pk + ") DO UPDATE SET " + strings.Join(set, ", ") + " WHERE l::text IS DISTINCT FROM EXCLUDED::text"
	}
	if len(links) > 0 {
		// The rows written are noted, so that only they get their cycle's keys once every table is in.
		linked := m.tempTable("linked", t)
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+linked+" ON COMMIT DROP AS SELECT "+pk+" FROM "+stage+" WITH NO DATA"); err != nil {
			return fmt.Errorf("create table of linked rows: %w", err)
		}
		insert = "WITH written AS (" + insert + " RETURNING " + pk + ") INSERT INTO " + linked + " SELECT * FROM written"
	}
	tag, err := tx.Exec(ctx, insert)
	if err != nil {
		return fmt.Errorf("merge into live table: %w", err)
	}
	res.RowsWritten += tag.RowsAffected()
	if skipped := absent - tag.RowsAffected(); m.policy == KeepLive && skipped > 0 {
		res.Skipped += skipped
		m.log.Warn("restored rows collide with live rows on another unique key and are left out", "table", t.Name,
			"tenant", tenantID, "rows", skipped)
	}
	return nil
}

// stagedValues is the select list of the staging table s's written columns, with the nullable
// columns of links NULL.
func stagedValues(t fixtures.Table, links []fixtures.ForeignKey) string {
	var cols []string
	for _, c := range t.WrittenColumns() {
		v := "s." + pgx.Identifier{c}.Sanitize()
		for _, fk := range links {
			if slices.Contains(fk.NullableColumns(t), c) {
				v = "NULL"
			}
		}
		cols = append(cols, v)
	}
	return strings.Join(cols, ", ")
}

// tempTable names a temporary table of a merge of t (its staging rows, the rows it linked) by
// t's place in the model, so that long table names cannot collide when cut to 63 bytes.
func (m merger) tempTable(role string, t fixtures.Table) string {
	return pgx.Identifier{fmt.Sprintf("pgdrill_%s_%d", role, m.model.TableOrder(t.Name))}.Sanitize()
}

// linkCycles gives the rows mergeTable wrote of t without their cycle's keys the staged values of
// those keys, now that every table is in.
func (m merger) linkCycles(ctx context.Context, tx pgx.Tx, loc fixtures.Location, t fixtures.Table) error {
	links := t.CycleLinks()
	if len(links) == 0 {
		return nil
	}
	var set []string
	for _, fk := range links {
		for _, c := range fk.NullableColumns(t) {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = s."+q)
		}
	}
	pk := func(alias string) string { return "(" + fixtures.QualifiedColumns(alias, t.PrimaryKey) + ")" }
	_, err := tx.Exec(ctx, "UPDATE "+pgx.Identifier{loc.Schema, t.Name}.Sanitize()+" l SET "+strings.Join(set, ", ")+" FROM "+
		m.tempTable("stage", t)+" s, "+m.tempTable("linked", t)+
		" k WHERE "+pk("l")+" = "+pk("s")+" AND "+pk("l")+" = "+pk("k"))
	if err != nil {
		return fmt.Errorf("link the cycle's keys: %w", err)
	}
	return nil
}

// uniqueViolation is Postgres's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// copyIntoEmpty is the fast path of a merge: when the tenant has no row left in the live table
// (a deletion took them all), nothing can conflict, so the rows are copied straight in, checked by
// the table's own keys, instead of through a staging table. It returns -1 when the table is not
// empty, or when a row someone wrote meanwhile collides with a restored one (the copy is then
// rolled back to a savepoint and the staging path takes over).
func (m merger) copyIntoEmpty(ctx context.Context, src source, tx pgx.Tx, loc fixtures.Location, t fixtures.Table, tenantID int64) (int64, error) {
	live := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
	owned, err := m.model.OwnerCondition(t, loc.Schema, "l", "= $1")
	if err != nil {
		return 0, err
	}
	var empty bool
	if err := tx.QueryRow(ctx, "SELECT NOT EXISTS (SELECT 1 FROM "+live+" l WHERE "+owned+")", tenantID).Scan(&empty); err != nil {
		return 0, fmt.Errorf("look for live rows: %w", err)
	}
	if !empty {
		return -1, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("set savepoint: %w", err)
	}
	n, err := streamCopy(ctx, func(w io.Writer) error { return src.copyOut(ctx, w, m.model, loc, t, tenantID) },
		tx.Conn(), "COPY "+live+" ("+fixtures.ColumnList(t.WrittenColumns())+") FROM STDIN (FORMAT binary)")
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return n, sp.Commit(ctx)
	case errors.As(err, &pgErr) && pgErr.Code == uniqueViolation:
		if rerr := sp.Rollback(ctx); rerr != nil {
			return 0, fmt.Errorf("roll back to savepoint: %w", rerr)
		}
		return -1, nil
	default:
		return 0, err
	}
}

// errCopyEnded stops the source of a streamCopy whose destination ended first.
var errCopyEnded = errors.New("copy into destination ended")

// streamCopy pipes the binary COPY data that out writes into a COPY FROM STDIN on dst without
// holding the rows in memory, and returns the number of rows copied.
func streamCopy(ctx context.Context, out func(io.Writer) error, dst *pgx.Conn, in string) (int64, error) {
	pr, pw := io.Pipe()
	readErr := make(chan error, 1)
	go func() {
		err := out(pw)
		pw.CloseWithError(err)
		readErr <- err
	}()
	tag, err := dst.PgConn().CopyFrom(ctx, pr, in)
	pr.CloseWithError(errCopyEnded)
	if rerr := <-readErr; rerr != nil && !errors.Is(rerr, errCopyEnded) {
		// The source failed first, and the destination's COPY failed of it ("COPY from stdin
		// failed"): the cause is the source's, a lost connection to it included.
		err = fmt.Errorf("read from source: %w", rerr)
	}
	if err != nil {
		return 0, fmt.Errorf("copy rows: %w", err)
	}
	return tag.RowsAffected(), nil
}

// merge merges the given tenants from src into the live shard, one transaction per tenant, in
// the databases the layout keeps them in. A tenant whose transaction lost its connection (a
// network cut, a reset) is tried again on a new one, with bounded backoff, unless the server
// says the lost transaction committed: each tenant is merged whole, once, or not at all. With an
// error it returns the results of the tenants merged before it: their transactions are
// committed.
func (m merger) merge(ctx context.Context, src source, live cluster.Server, tenants []incident.Tenant) ([]TenantResult, error) {
	var out []TenantResult
	var dst *pgx.Conn // the shared and schema layouts' connection, kept from tenant to tenant
	defer func() {
		if dst != nil {
			dst.Close(context.WithoutCancel(ctx))
		}
	}()
	for _, t := range tenants {
		r, done, err := m.resumed(ctx, live, t)
		if err != nil {
			return out, err
		}
		if done {
			out = append(out, r)
			continue
		}
		err = transient.retry(ctx, m.tl, m.log, PhaseMerge, t.Shard, t.ID, lostConnection, func() error {
			var err error
			if m.layout == fixtures.LayoutDatabase {
				r, err = m.mergeDatabase(ctx, src, live, t)
				return err
			}
			if dst == nil || dst.IsClosed() {
				if dst, err = pgx.Connect(ctx, live.DSN()); err != nil {
					return fmt.Errorf("connect to %s: %w", live.Name(), err)
				}
			}
			create := false
			if m.layout == fixtures.LayoutSchema {
				if err := dst.QueryRow(ctx, "SELECT to_regnamespace($1) IS NULL", fixtures.TenantContainer(t.ID)).Scan(&create); err != nil {
					return onConn(dst, fmt.Errorf("look up schema of tenant %d: %w", t.ID, err))
				}
			}
			r, err = m.mergeInto(ctx, src, live, dst, live.DSN(), t, create)
			return err
		})
		if err != nil {
			return out, err
		}
		m.finished(r)
		out = append(out, r)
	}
	return out, nil
}

// mergeInto merges tenant t through dst, a connection to the database at dsn of live that
// holds it, creating its tables first when create says they are missing. When the connection is
// lost, the server is asked whether the tenant's transaction committed before the loss is
// returned (as errConnLost, for a retry): a committed one is the tenant's result.
func (m merger) mergeInto(ctx context.Context, src source, live cluster.Server, dst *pgx.Conn, dsn string, t incident.Tenant, create bool) (TenantResult, error) {
	var xid string
	r, err := m.mergeTenant(ctx, src, dst, t, create, &xid)
	r.Shard = t.Shard
	return m.settle(ctx, r, onConn(dst, err), live, dsn, t, xid)
}

// settle is the end of tenant t's transaction xid on the database at dsn of live, which ended
// with err: when err is the connection's loss, the server is asked whether the transaction
// committed before the loss is returned (as errConnLost, for a retry); a committed one is the
// tenant's result r.
func (m merger) settle(ctx context.Context, r TenantResult, err error, live cluster.Server, dsn string, t incident.Tenant, xid string) (TenantResult, error) {
	if !errors.Is(err, errConnLost) {
		return r, err
	}
	done, cerr := committed(ctx, dsn, xid)
	switch {
	case cerr != nil:
		return r, fmt.Errorf("%w; and whether tenant %d's transaction %s committed is unknown: %w", err, t.ID, xid, cerr)
	case done:
		m.log.Warn("the connection was lost as the tenant's transaction committed; it did commit", "tenant", t.ID, "xid", xid, "server", live.Name())
		return r, nil
	}
	return r, err
}

// mergeDatabase merges one tenant of the database layout, creating its database (with the
// run's marker) when the incident dropped it.
func (m merger) mergeDatabase(ctx context.Context, src source, live cluster.Server, t incident.Tenant) (TenantResult, error) {
	name := fixtures.TenantContainer(t.ID)
	admin, err := pgx.Connect(ctx, live.DSN())
	if err != nil {
		return TenantResult{}, fmt.Errorf("connect to %s: %w", live.Name(), err)
	}
	var exists bool
	err = onConn(admin, admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	admin.Close(context.WithoutCancel(ctx))
	if err != nil {
		return TenantResult{}, fmt.Errorf("look up database of tenant %d: %w", t.ID, err)
	}
	dstDSN := live.DSNFor(name)
	if !exists {
		if dstDSN, err = live.CreateDatabase(ctx, name); err != nil {
			return TenantResult{}, err
		}
	}
	dstConn, err := pgx.Connect(ctx, dstDSN)
	if err != nil {
		return TenantResult{}, fmt.Errorf("connect to tenant %d on %s: %w", t.ID, live.Name(), err)
	}
	defer dstConn.Close(context.WithoutCancel(ctx))
	// A database created by an attempt whose transaction was lost holds no tables yet.
	create := !exists
	if exists {
		root := pgx.Identifier{fixtures.SharedSchema, m.model.TenantTables()[0].Name}.Sanitize()
		if err := dstConn.QueryRow(ctx, "SELECT to_regclass($1) IS NULL", root).Scan(&create); err != nil {
			return TenantResult{}, onConn(dstConn, fmt.Errorf("look up tables of tenant %d: %w", t.ID, err))
		}
	}
	return m.mergeInto(ctx, src, live, dstConn, dstDSN, t, create)
}
