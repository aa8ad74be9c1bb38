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
	// copyOut writes the given tenants' rows of table t of model m, kept at loc on the live
	// shard, to w in binary COPY format, as one stream.
	copyOut(ctx context.Context, w io.Writer, m *fixtures.Model, loc fixtures.Location, t fixtures.Table, tenantIDs []int64) error
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

func (s *serverSource) copyOut(ctx context.Context, w io.Writer, m *fixtures.Model, loc fixtures.Location, t fixtures.Table, tenantIDs []int64) error {
	rows, err := m.TenantRowsSQL(t, loc.Schema, tenantIDs...)
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

// mergeTenants copies a group of tenants' rows from src into dst in one transaction on dst:
// table by table in foreign-key order, each table's rows of the whole group in one statement,
// streamed with binary COPY into a temporary staging table, compared with the live rows by
// primary key, and inserted (or, under PreferBackup, upserted). Rows the source lacks are left
// alone and counted as newer. A group is all or nothing, so each tenant in it is. When the
// tenant's schema is missing on dst (schema layout, dropped) or its database is new (database
// layout), the tables and their constraints are created in the same transaction; a group of
// those holds one tenant, for it lives in a place of its own.
func (m merger) mergeTenants(ctx context.Context, src source, dst *pgx.Conn, tenants []incident.Tenant, createTables bool, xid *string) ([]TenantResult, error) {
	g := newGroup(tenants)
	loc := m.layout.Locate(tenants[0].ID)
	if len(tenants) > 1 && m.layout != fixtures.LayoutShared {
		return nil, fmt.Errorf("merge %d tenants in one transaction: the %s layout keeps each in a place of its own", len(tenants), m.layout)
	}
	if err := cluster.RequireMarker(ctx, dst, m.runID); err != nil {
		return g.list(), err
	}
	err := pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
		if err := m.beginTenants(ctx, tx, tenants, xid); err != nil {
			return err
		}
		tables := m.model.TenantTables()
		if createTables && m.layout == fixtures.LayoutDatabase {
			if err := m.createDatabaseObjects(ctx, src, tx, loc); err != nil {
				return fmt.Errorf("recreate database of %s: %w", g, err)
			}
		}
		if createTables {
			ddl := m.model.CreateTablesSQL(loc.Schema, tables)
			if loc.Schema != fixtures.SharedSchema {
				ddl = "CREATE SCHEMA " + pgx.Identifier{loc.Schema}.Sanitize() + ";\n" + ddl
			}
			if _, err := tx.Exec(ctx, ddl+m.model.ConstraintsSQL(loc.Schema, fixtures.SharedSchema, tables)); err != nil {
				return fmt.Errorf("create tables of %s: %w", g, err)
			}
		}
		// A cycle of foreign keys is broken at a deferrable key: its check waits for the commit,
		// when both ends of every restored row are in.
		if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
			return fmt.Errorf("defer constraints: %w", err)
		}
		for _, t := range tables {
			if err := m.mergeTable(ctx, src, tx, loc, t, g); err != nil {
				return fmt.Errorf("merge %s of %s: %w", t.Name, g, err)
			}
		}
		for _, t := range tables {
			if err := m.linkCycles(ctx, tx, loc, t); err != nil {
				return fmt.Errorf("merge %s of %s: %w", t.Name, g, err)
			}
		}
		// Where rows went in with their row-by-row checks off, each key is checked once for
		// the group, now that every table is in, as a deferred check would be at the commit.
		for _, c := range g.checks {
			if err := c.run(ctx, tx, g.ids); err != nil {
				return fmt.Errorf("merge %s: %w", g, err)
			}
		}
		if seq := m.model.SequencesSQL(loc.Schema, tables); seq != "" {
			if _, err := tx.Exec(ctx, seq); err != nil {
				return fmt.Errorf("move sequences of %s past their rows: %w", g, err)
			}
		}
		return nil
	})
	return g.list(), err
}

// group is the tenants one merge transaction brings back, with each one's result so far.
type group struct {
	tenants []incident.Tenant
	ids     []int64
	results map[int64]*TenantResult
	// checks are the foreign keys still to check, set-based, of the tables whose rows were
	// copied in with the row-by-row checks off.
	checks []groupCheck
}

func newGroup(tenants []incident.Tenant) *group {
	g := &group{tenants: tenants, results: make(map[int64]*TenantResult, len(tenants))}
	for _, t := range tenants {
		g.ids = append(g.ids, t.ID)
		g.results[t.ID] = &TenantResult{ID: t.ID, Shard: t.Shard}
	}
	return g
}

// String names the group in errors: "tenant 7", or "12 tenants (7, 9, …)".
func (g *group) String() string {
	if len(g.ids) == 1 {
		return fmt.Sprintf("tenant %d", g.ids[0])
	}
	return fmt.Sprintf("%d tenants (%d, %d, …)", len(g.ids), g.ids[0], g.ids[1])
}

// list returns the results in the group's order.
func (g *group) list() []TenantResult {
	out := make([]TenantResult, len(g.tenants))
	for i, t := range g.tenants {
		out[i] = *g.results[t.ID]
	}
	return out
}

// perTenant is a count a merge statement made of the whole group, split by tenant.
type perTenant struct {
	total    int64
	byTenant map[int64]int64
}

// attribute adds each tenant's share of c to the field of its result that add picks. A count of
// one tenant is its total; a group's shares must add up to its total, or the rows were not all
// found to belong to a tenant of the group, and the group is refused (it is merged again tenant
// by tenant).
func (g *group) attribute(what string, c perTenant, add func(*TenantResult) *int64) error {
	if len(g.ids) == 1 {
		*add(g.results[g.ids[0]]) += c.total
		return nil
	}
	var sum int64
	for id, n := range c.byTenant {
		r, ok := g.results[id]
		if !ok {
			return fmt.Errorf("count %s by tenant: %d rows belong to tenant %d, outside the group", what, n, id)
		}
		*add(r) += n
		sum += n
	}
	if sum != c.total {
		return fmt.Errorf("count %s by tenant: %d of %d rows found a tenant of the group", what, sum, c.total)
	}
	return nil
}

// countPerTenant runs query, whose rows are (tenant, count, ...) and end with one row of NULL
// tenant holding the totals, and returns each count column's split.
func countPerTenant(ctx context.Context, tx pgx.Tx, columns int, query string, args ...any) ([]perTenant, error) {
	out := make([]perTenant, columns)
	for i := range out {
		out[i].byTenant = map[int64]int64{}
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var tenant *int64
		counts := make([]int64, columns)
		dest := []any{&tenant}
		for i := range counts {
			dest = append(dest, &counts[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		for i, n := range counts {
			if tenant == nil {
				out[i].total = n
			} else {
				out[i].byTenant[*tenant] = n
			}
		}
	}
	return out, rows.Err()
}

// beginTenants starts the transaction tx of tenants: it takes the transaction's id first, so
// that if the connection is lost at the commit the server can still say whether the tenants are
// back (see committed), and journals each of them with it before anything can commit.
func (m merger) beginTenants(ctx context.Context, tx pgx.Tx, tenants []incident.Tenant, xid *string) error {
	if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(xid); err != nil {
		return fmt.Errorf("start transaction of %s: %w", newGroup(tenants), err)
	}
	for _, t := range tenants {
		if err := m.journal.begin(m.harm, t, *xid); err != nil {
			return err
		}
	}
	return nil
}

func (m merger) mergeTable(ctx context.Context, src source, tx pgx.Tx, loc fixtures.Location, t fixtures.Table, g *group) error {
	live := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
	mark, marked := m.marks[g.ids[0]] // a group's tenants share their mark (see groups)
	marked = marked && t.SoftDelete != ""
	links := t.CycleLinks()
	liveOwned, err := m.model.OwnerSQL(t, loc.Schema, "l")
	if err != nil {
		return err
	}
	// Rows to mark go through the staging table, where they are marked; rows whose keys close a
	// cycle that cannot be deferred go in without them first.
	if !marked && len(links) == 0 {
		copied, err := m.copyIntoEmpty(ctx, src, tx, loc, t, g, liveOwned)
		if err != nil || copied {
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
	read, err := streamCopy(ctx, func(w io.Writer) error { return src.copyOut(ctx, w, m.model, loc, t, g.ids) },
		tx.Conn(), "COPY "+stage+" ("+written+") FROM STDIN (FORMAT binary)")
	if err != nil {
		return err
	}
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
	rows, err := tx.Query(ctx, "SELECT "+liveOwned.Tenant+", ("+fixtures.QualifiedColumns("s", t.PrimaryKey)+")::text FROM "+liveOwned.From+
		" JOIN "+stage+" s ON "+join+" WHERE l::text IS DISTINCT FROM s::text ORDER BY "+fixtures.QualifiedColumns("s", t.PrimaryKey))
	if err != nil {
		return fmt.Errorf("find conflicts: %w", err)
	}
	var (
		tenant int64
		key    string
	)
	if _, err := pgx.ForEachRow(rows, []any{&tenant, &key}, func() error {
		r := g.results[tenant]
		switch {
		case len(g.ids) == 1:
			r = g.results[g.ids[0]] // a live row of another tenant under the restored row's key is still its conflict
		case r == nil:
			return fmt.Errorf("a live row of tenant %d, outside the group, holds the key %s of a restored row", tenant, key)
		}
		r.Conflicts++
		if len(r.ConflictKeys) < maxConflictKeys {
			r.ConflictKeys = append(r.ConflictKeys, t.Name+key)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("find conflicts: %w", err)
	}

	stageOwned, err := m.model.OwnerSQLOf(t, loc.Schema, stage, "s")
	if err != nil {
		return err
	}
	absentRow := "count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM " + live + " l WHERE " + join + "))"
	counts, err := countPerTenant(ctx, tx, 2, "SELECT "+stageOwned.Tenant+", count(*), "+absentRow+" FROM "+stageOwned.From+
		" GROUP BY 1 UNION ALL SELECT NULL, count(*), "+absentRow+" FROM "+stage+" s")
	if err != nil {
		return fmt.Errorf("count staged rows: %w", err)
	}
	if counts[0].total != read {
		return fmt.Errorf("count staged rows: %d staged, %d copied", counts[0].total, read)
	}
	if err := g.attribute("rows read", counts[0], func(r *TenantResult) *int64 { return &r.RowsRead }); err != nil {
		return err
	}
	absent := counts[1]
	newer, err := countPerTenant(ctx, tx, 1, "SELECT "+liveOwned.Tenant+", count(*) FROM "+liveOwned.From+" WHERE "+liveOwned.Key+
		" = ANY ($1) AND NOT EXISTS (SELECT 1 FROM "+stage+" s WHERE "+join+") GROUP BY 1", g.ids)
	if err != nil {
		return fmt.Errorf("count newer rows: %w", err)
	}
	for id, n := range newer[0].byTenant {
		if r := g.results[id]; r != nil {
			r.Newer += n
		}
	}

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
	with := "WITH w AS (" + insert + " RETURNING *)"
	if len(links) > 0 {
		// The rows written are noted, so that only they get their cycle's keys once every table is in.
		linked := m.tempTable("linked", t)
		if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+linked+" ON COMMIT DROP AS SELECT "+pk+" FROM "+stage+" WITH NO DATA"); err != nil {
			return fmt.Errorf("create table of linked rows: %w", err)
		}
		with += ", k AS (INSERT INTO " + linked + " SELECT " + fixtures.QualifiedColumns("w", t.PrimaryKey) + " FROM w)"
	}
	writtenOwned, err := m.model.OwnerSQLOf(t, loc.Schema, "w", "w")
	if err != nil {
		return err
	}
	wrote, err := countPerTenant(ctx, tx, 1, with+" SELECT "+writtenOwned.Tenant+", count(*) FROM "+writtenOwned.From+
		" GROUP BY 1 UNION ALL SELECT NULL, count(*) FROM w")
	if err != nil {
		return fmt.Errorf("merge into live table: %w", err)
	}
	if err := g.attribute("rows written", wrote[0], func(r *TenantResult) *int64 { return &r.RowsWritten }); err != nil {
		return err
	}
	if m.policy != KeepLive {
		return nil
	}
	for _, id := range g.ids {
		skipped := absent.byTenant[id] - wrote[0].byTenant[id]
		if len(g.ids) == 1 {
			skipped = absent.total - wrote[0].total
		}
		if skipped > 0 {
			g.results[id].Skipped += skipped
			m.log.Warn("restored rows collide with live rows on another unique key and are left out", "table", t.Name,
				"tenant", id, "rows", skipped)
		}
	}
	return nil
}

// copyIntoEmpty is the fast path of a merge: when no tenant of the group has a row left in the
// live table (a deletion took them all), nothing can conflict, so the rows are copied straight
// in, checked by the table's own keys, instead of through a staging table. It reports false
// when the table is not empty, or when a row someone wrote meanwhile collides with a restored
// one (the copy is then rolled back to a savepoint and the staging path takes over).
func (m merger) copyIntoEmpty(ctx context.Context, src source, tx pgx.Tx, loc fixtures.Location, t fixtures.Table, g *group, liveOwned fixtures.Owned) (bool, error) {
	live := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
	ofGroup := liveOwned.From + " WHERE " + liveOwned.Key + " = ANY ($1)"
	var empty bool
	if err := tx.QueryRow(ctx, "SELECT NOT EXISTS (SELECT 1 FROM "+ofGroup+")", g.ids).Scan(&empty); err != nil {
		return false, fmt.Errorf("look for live rows: %w", err)
	}
	if !empty {
		return false, nil
	}
	fks, bulk, err := bulkForeignKeys(ctx, tx, live)
	if err != nil {
		return false, err
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("set savepoint: %w", err)
	}
	if bulk {
		// Set inside the savepoint: rolling it back turns the triggers on again by itself.
		if err := replicaRole(ctx, sp, true); err != nil {
			return false, err
		}
	}
	n, err := streamCopy(ctx, func(w io.Writer) error { return src.copyOut(ctx, w, m.model, loc, t, g.ids) },
		tx.Conn(), "COPY "+live+" ("+fixtures.ColumnList(t.WrittenColumns())+") FROM STDIN (FORMAT binary)")
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		if err := sp.Commit(ctx); err != nil {
			return false, fmt.Errorf("release savepoint: %w", err)
		}
	case errors.As(err, &pgErr) && pgErr.Code == uniqueViolation:
		if rerr := sp.Rollback(ctx); rerr != nil {
			return false, fmt.Errorf("roll back to savepoint: %w", rerr)
		}
		return false, nil
	default:
		return false, err
	}
	if bulk {
		if err := replicaRole(ctx, tx, false); err != nil {
			return false, err
		}
		g.checks = append(g.checks, groupCheck{table: live, ofGroup: ofGroup, fks: fks})
	}
	copied := perTenant{total: n}
	if len(g.ids) > 1 {
		// The group had no row here before the copy: what the table holds of each tenant now is
		// what was copied, unless someone committed a row of theirs meanwhile, which makes the
		// shares exceed the copy and the group merge again tenant by tenant.
		counts, err := countPerTenant(ctx, tx, 1, "SELECT "+liveOwned.Tenant+", count(*) FROM "+ofGroup+" GROUP BY 1", g.ids)
		if err != nil {
			return false, fmt.Errorf("count copied rows: %w", err)
		}
		copied.byTenant = counts[0].byTenant
	}
	if err := g.attribute("rows copied", copied, func(r *TenantResult) *int64 { return &r.RowsRead }); err != nil {
		return false, err
	}
	return true, g.attribute("rows copied", copied, func(r *TenantResult) *int64 { return &r.RowsWritten })
}

// groupSize bounds how many tenants of the shared layout one merge transaction brings back. A
// group's rows are copied table by table in one statement each, so a merge's statements grow
// with tables × groups, not with tenants; a group failing for one bad tenant is merged again
// tenant by tenant, and the bound keeps that repeat, and each transaction, short.
const groupSize = 128

// groups splits tenants into the merge transactions that bring them back, in order: in the
// shared layout runs of up to groupSize tenants that share their intended soft-delete mark (a
// group's staged rows are marked in one statement), in the others one tenant each (each lives in
// a schema or database of its own).
func (m merger) groups(tenants []incident.Tenant) [][]incident.Tenant {
	var out [][]incident.Tenant
	for _, t := range tenants {
		if n := len(out); n > 0 && m.layout == fixtures.LayoutShared && len(out[n-1]) < groupSize &&
			m.marks[out[n-1][0].ID] == m.marks[t.ID] {
			out[n-1] = append(out[n-1], t)
			continue
		}
		out = append(out, []incident.Tenant{t})
	}
	return out
}

// merge merges the given tenants from src into the live shard, in groups (see groups), one
// transaction per group, in the databases the layout keeps them in. A group whose transaction
// lost its connection (a network cut, a reset) is tried again on a new one, with bounded
// backoff, unless the server says the lost transaction committed; a group that fails otherwise
// is merged again tenant by tenant, so that the error is the failing tenant's own and the
// tenants before it come back: each tenant is merged whole, once, or not at all. With an error
// it returns the results of the tenants merged before it: their transactions are committed.
func (m merger) merge(ctx context.Context, src source, live cluster.Server, tenants []incident.Tenant) ([]TenantResult, error) {
	var todo []incident.Tenant
	var results []TenantResult
	for _, t := range tenants {
		r, done, err := m.resumed(ctx, live, t)
		if err != nil {
			return results, err
		}
		if done {
			results = append(results, r)
			continue
		}
		todo = append(todo, t)
	}
	dst := &liveConn{server: live}
	defer dst.close(ctx)
	for _, g := range m.groups(todo) {
		rs, err := m.mergeGroup(ctx, src, live, dst, g)
		if err == nil || len(g) == 1 || lostConnection(err) || ctx.Err() != nil {
			results = append(results, rs...)
			if err != nil {
				return results, err
			}
			continue
		}
		m.log.Warn("a group of tenants could not be merged in one transaction; merging them one by one", "tenants", len(g), "err", err)
		for _, t := range g {
			rs, err := m.mergeGroup(ctx, src, live, dst, []incident.Tenant{t})
			if err != nil {
				return results, err
			}
			results = append(results, rs...)
		}
	}
	return results, nil
}

// liveConn is a connection to a live shard's database kept from one merge transaction to the
// next (shared and schema layouts), opened again once lost.
type liveConn struct {
	server cluster.Server
	conn   *pgx.Conn
}

func (c *liveConn) get(ctx context.Context) (*pgx.Conn, error) {
	if c.conn == nil || c.conn.IsClosed() {
		conn, err := pgx.Connect(ctx, c.server.DSN())
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", c.server.Name(), err)
		}
		c.conn = conn
	}
	return c.conn, nil
}

func (c *liveConn) close(ctx context.Context) {
	if c.conn != nil {
		c.conn.Close(context.WithoutCancel(ctx))
	}
}

// mergeGroup merges one group of tenants in one transaction, retried after a lost connection,
// and journals each tenant back. It returns their results only when they are committed.
func (m merger) mergeGroup(ctx context.Context, src source, live cluster.Server, dst *liveConn, tenants []incident.Tenant) ([]TenantResult, error) {
	first := tenants[0]
	var out []TenantResult
	err := transient.retry(ctx, m.tl, m.log, PhaseMerge, first.Shard, first.ID, lostConnection, func() error {
		var err error
		if m.layout == fixtures.LayoutDatabase {
			out, err = m.mergeDatabase(ctx, src, live, first)
			return err
		}
		conn, err := dst.get(ctx)
		if err != nil {
			return err
		}
		create := false
		if m.layout == fixtures.LayoutSchema {
			if err := conn.QueryRow(ctx, "SELECT to_regnamespace($1) IS NULL", fixtures.TenantContainer(first.ID)).Scan(&create); err != nil {
				return onConn(conn, fmt.Errorf("look up schema of tenant %d: %w", first.ID, err))
			}
		}
		out, err = m.mergeInto(ctx, src, live, conn, live.DSN(), tenants, create)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, r := range out {
		m.finished(r)
	}
	return out, nil
}

// mergeInto merges tenants through dst, a connection to the database at dsn of live that holds
// them, creating their tables first when create says they are missing. When the connection is
// lost, the server is asked whether the transaction committed before the loss is returned (as
// errConnLost, for a retry): a committed one is the tenants' result.
func (m merger) mergeInto(ctx context.Context, src source, live cluster.Server, dst *pgx.Conn, dsn string, tenants []incident.Tenant, create bool) ([]TenantResult, error) {
	var xid string
	rs, err := m.mergeTenants(ctx, src, dst, tenants, create, &xid)
	return rs, m.settle(ctx, onConn(dst, err), live, dsn, newGroup(tenants).String(), xid)
}

// settle is the end of the transaction xid of the tenants named (for messages) on the database
// at dsn of live, which ended with err: when err is the connection's loss, the server is asked
// whether the transaction committed before the loss is returned (as errConnLost, for a retry);
// nil when it did commit.
func (m merger) settle(ctx context.Context, err error, live cluster.Server, dsn, tenants, xid string) error {
	if !errors.Is(err, errConnLost) {
		return err
	}
	done, cerr := committed(ctx, dsn, xid)
	switch {
	case cerr != nil:
		return fmt.Errorf("%w; and whether the transaction %s of %s committed is unknown: %w", err, xid, tenants, cerr)
	case done:
		m.log.Warn("the connection was lost as the tenants' transaction committed; it did commit", "tenants", tenants, "xid", xid, "server", live.Name())
		return nil
	}
	return err
}

// mergeDatabase merges one tenant of the database layout, creating its database (with the
// run's marker) when the incident dropped it.
func (m merger) mergeDatabase(ctx context.Context, src source, live cluster.Server, t incident.Tenant) ([]TenantResult, error) {
	name := fixtures.TenantContainer(t.ID)
	admin, err := pgx.Connect(ctx, live.DSN())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", live.Name(), err)
	}
	var exists bool
	err = onConn(admin, admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	admin.Close(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("look up database of tenant %d: %w", t.ID, err)
	}
	dstDSN := live.DSNFor(name)
	if !exists {
		if dstDSN, err = live.CreateDatabase(ctx, name); err != nil {
			return nil, err
		}
	}
	dstConn, err := pgx.Connect(ctx, dstDSN)
	if err != nil {
		return nil, fmt.Errorf("connect to tenant %d on %s: %w", t.ID, live.Name(), err)
	}
	defer dstConn.Close(context.WithoutCancel(ctx))
	// A database created by an attempt whose transaction was lost holds no tables yet.
	create := !exists
	if exists {
		root := pgx.Identifier{fixtures.SharedSchema, m.model.TenantTables()[0].Name}.Sanitize()
		if err := dstConn.QueryRow(ctx, "SELECT to_regclass($1) IS NULL", root).Scan(&create); err != nil {
			return nil, onConn(dstConn, fmt.Errorf("look up tables of tenant %d: %w", t.ID, err))
		}
	}
	return m.mergeInto(ctx, src, live, dstConn, dstDSN, []incident.Tenant{t}, create)
}
