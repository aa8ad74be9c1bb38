package incident

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// DeleteTenants hard-deletes every row of the given tenants, shard by shard, one transaction
// per shard — what a cleanup script handed the wrong ids does — and records each harmful
// transaction. Under the schema layout it drops the tenants' schemas; under the database layout
// their databases. Every database is checked for the run's marker before anything is deleted.
func DeleteTenants(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant) (Record, error) {
	return harmTenants(ctx, c, kind, tenants, "delete", func(s cluster.Server, d fixtures.Dataset, ids []int64) ([]Harm, error) {
		if d.Layout == fixtures.LayoutDatabase {
			return dropDatabases(ctx, s, c.RunID(), d.Model, ids)
		}
		h, err := deleteInTransaction(ctx, s.DSN(), c.RunID(), d, ids)
		return []Harm{h}, err
	})
}

// PurgeTenants is DeleteTenants run by a job that should only have soft-deleted the tenants: each
// harm also records the mark the job should have written (Harm.IntendedSoftDeleteMark, its commit
// time), which is what the tenants' truth is marked with, and what a restore marks them with.
func PurgeTenants(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant) (Record, error) {
	rec, err := DeleteTenants(ctx, c, kind, tenants)
	for i := range rec.Harms {
		rec.Harms[i].IntendedSoftDeleteMark = rec.Harms[i].Time.Truncate(time.Microsecond) // timestamptz's precision
	}
	return rec, err
}

// harmTenants records an incident of the given tenants: it reads the dataset from the catalog,
// checks every tenant's shard exists, then runs harm on every shard holding some of them, in
// shard order, and collects the harms it reports. verb names what harm does, for errors.
func harmTenants(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant, verb string,
	harm func(s cluster.Server, d fixtures.Dataset, ids []int64) ([]Harm, error)) (Record, error) {
	d, err := readDataset(ctx, c)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Kind: kind, RunID: c.RunID(), Layout: d.Layout, Model: d.Model, Affected: slices.Clone(tenants)}
	slices.SortFunc(rec.Affected, func(a, b Tenant) int { return cmp.Compare(a.ID, b.ID) })
	shards := c.Shards()
	for _, t := range rec.Affected {
		if t.Shard < 0 || t.Shard >= len(shards) {
			return Record{}, fmt.Errorf("%s tenant %d: shard %d does not exist", verb, t.ID, t.Shard)
		}
	}
	for i, s := range shards {
		var ids []int64
		for _, t := range rec.OnShard(i) {
			ids = append(ids, t.ID)
		}
		if len(ids) == 0 {
			continue
		}
		harms, err := harm(s, d, ids)
		if err != nil {
			return rec, fmt.Errorf("%s tenants on %s: %w", verb, s.Name(), err)
		}
		for _, h := range harms {
			h.Shard = i
			rec.Harms = append(rec.Harms, h)
		}
	}
	return rec, nil
}

// readDataset asks the catalog how tenants are stored and what their tables are.
func readDataset(ctx context.Context, c cluster.Cluster) (fixtures.Dataset, error) {
	var d fixtures.Dataset
	err := cluster.WithConn(ctx, c.Catalog().DSN(), func(conn *pgx.Conn) error {
		var err error
		d, err = fixtures.ReadDataset(ctx, conn)
		return err
	})
	if err != nil {
		return d, fmt.Errorf("read dataset from catalog: %w", err)
	}
	return d, nil
}

// deleteInTransaction deletes the tenants' rows children first (shared layout) or drops their
// schemas (schema layout) in one transaction, noting its xid and WAL positions.
func deleteInTransaction(ctx context.Context, dsn, runID string, d fixtures.Dataset, ids []int64) (Harm, error) {
	return harmInTransaction(ctx, dsn, runID, Harm{Tenants: ids}, func(tx pgx.Tx, h *Harm) error {
		if d.Layout == fixtures.LayoutSchema {
			return dropSchemas(ctx, tx, d.Model, ids, h)
		}
		n, err := deleteOwned(ctx, tx, d.Model, fixtures.SharedSchema, ids)
		h.Rows += n
		return err
	})
}

// deleteOwned deletes the tenants' rows of every tenant table in schema, children first along the
// model's foreign keys, in the transaction tx: the parents are locked first, the keys that break a
// cycle are deferred (or, where they cannot be, set NULL in the rows to delete), and a table owned
// through foreign keys loses the rows its path leads to the tenants from.
func deleteOwned(ctx context.Context, tx pgx.Tx, m *fixtures.Model, schema string, ids []int64) (int64, error) {
	if err := lockParents(ctx, tx, m, schema, ids); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, "SET CONSTRAINTS ALL DEFERRED"); err != nil {
		return 0, fmt.Errorf("defer constraints: %w", err)
	}
	anyTenant := "= ANY ($1)"
	tables := m.TenantTables()
	for _, t := range tables {
		for _, fk := range t.CycleLinks() {
			cond, err := m.OwnerCondition(t, schema, "t", anyTenant)
			if err != nil {
				return 0, err
			}
			var set []string
			for _, c := range fk.NullableColumns(t) {
				set = append(set, pgx.Identifier{c}.Sanitize()+" = NULL")
			}
			if _, err := tx.Exec(ctx, "UPDATE "+pgx.Identifier{schema, t.Name}.Sanitize()+" t SET "+strings.Join(set, ", ")+
				" WHERE "+cond, ids); err != nil {
				return 0, fmt.Errorf("unlink %s from its cycle: %w", t.Name, err)
			}
		}
	}
	var rows int64
	for i := len(tables) - 1; i >= 0; i-- { // children first
		cond, err := m.OwnerCondition(tables[i], schema, "t", anyTenant)
		if err != nil {
			return rows, err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM "+pgx.Identifier{schema, tables[i].Name}.Sanitize()+" t WHERE "+cond, ids)
		if err != nil {
			return rows, fmt.Errorf("delete from %s: %w", tables[i].Name, err)
		}
		rows += tag.RowsAffected()
	}
	return rows, nil
}

// dropSchemas drops the tenants' schemas (schema layout) in the transaction tx.
func dropSchemas(ctx context.Context, tx pgx.Tx, m *fixtures.Model, ids []int64, h *Harm) error {
	for _, id := range ids {
		schema := fixtures.TenantContainer(id)
		// Lock the tables children first, as a writer's insert does (its table, then the
		// parents its foreign keys check): DROP SCHEMA's own order would deadlock with it.
		tables := m.TenantTables()
		names := make([]string, len(tables))
		for i, t := range tables {
			names[len(tables)-1-i] = pgx.Identifier{schema, t.Name}.Sanitize()
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock schema %s: %w", schema, err)
		}
		n, err := countRows(ctx, tx, m, schema)
		if err != nil {
			return err
		}
		h.Rows += n
		if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
	}
	return nil
}

// harmInTransaction checks the database at dsn for runID's marker, then runs do in one
// transaction there, which harms it and adds what it did to h: the one shape of every harm that
// is a single transaction. It notes the transaction's id and the WAL insert position before do
// runs, the transaction as the recovery target (exclusive: the harm lands at its commit) and,
// once committed, the commit's WAL position and time. The session is set up as truth's
// (truth.ConfigureSession) so that hashes a harm records compare with later sessions'.
func harmInTransaction(ctx context.Context, dsn, runID string, h Harm, do func(tx pgx.Tx, h *Harm) error) (Harm, error) {
	conn, err := truth.Connect(ctx, dsn, "")
	if err != nil {
		return h, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := cluster.RequireMarker(ctx, conn, runID); err != nil {
		return h, err
	}
	// The workload's inserts take key-share locks on parent rows in their foreign keys' order,
	// which the harm's own row locks cannot follow: Postgres may break the deadlock by aborting
	// the harm, which then changed nothing and is tried again, as a script would be.
	for attempt := 1; ; attempt++ {
		try := h
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text, pg_current_wal_insert_lsn()::text`).Scan(&try.XID, &try.LSN); err != nil {
				return fmt.Errorf("note transaction: %w", err)
			}
			return do(tx, &try)
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == deadlockDetected && attempt < maxHarmAttempts {
			continue
		}
		if err != nil {
			return h, err
		}
		h = try
		break
	}
	h.RecoverTo = cluster.RecoveryTarget{XID: h.XID}
	return h, noteCommit(ctx, conn, &h)
}

// deadlockDetected is Postgres's SQLSTATE for a transaction aborted to break a deadlock.
const deadlockDetected = "40P01"

// maxHarmAttempts bounds how often a harm aborted by the deadlock detector is tried.
const maxHarmAttempts = 5

// perDatabase runs harm on the database of shard s that keeps the tenants ids and returns its
// one harm — or, under the database layout, where each tenant has a database of its own, runs it
// once per tenant database with that tenant alone and returns the harms in the order of ids.
func perDatabase(s cluster.Server, layout fixtures.Layout, ids []int64,
	harm func(dsn string, ids []int64) (Harm, error)) ([]Harm, error) {
	if layout != fixtures.LayoutDatabase {
		h, err := harm(s.DSN(), ids)
		return []Harm{h}, err
	}
	var harms []Harm
	for _, id := range ids {
		h, err := harm(s.DSNFor(fixtures.TenantContainer(id)), []int64{id})
		if err != nil {
			return harms, err
		}
		harms = append(harms, h)
	}
	return harms, nil
}

// lockParents locks the tenants' rows of every tenant table another table references, parents
// first. A concurrent insert of a child row takes a key-share lock on its parent for its
// foreign-key check; once the parents are locked it waits for the deletion and then fails,
// instead of committing between the delete of the children and the delete of its parent (which
// would then violate the foreign key and abort the whole deletion).
func lockParents(ctx context.Context, tx pgx.Tx, m *fixtures.Model, schema string, ids []int64) error {
	for _, t := range m.TenantTables() {
		if !m.Referenced(t.Name) {
			continue
		}
		cond, err := m.OwnerCondition(t, schema, "t", "= ANY ($1)")
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT FROM "+pgx.Identifier{schema, t.Name}.Sanitize()+" t WHERE "+cond+" FOR UPDATE OF t", ids); err != nil {
			return fmt.Errorf("lock %s: %w", t.Name, err)
		}
	}
	return nil
}

// dropDatabases drops the tenants' databases, one DROP DATABASE (its own transaction) each, and
// finds each drop in the WAL with pg_walinspect: DROP DATABASE cannot run in a transaction block,
// so its id cannot be asked for beforehand, and it damages the database before it commits — it
// first marks pg_database's row invalid in place, then removes the files — so the restore target
// is the start of the first of those records, not the transaction.
func dropDatabases(ctx context.Context, s cluster.Server, runID string, m *fixtures.Model, ids []int64) ([]Harm, error) {
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := cluster.RequireMarker(ctx, conn, runID); err != nil {
		return nil, err
	}
	// The drop's commit must be flushed for pg_walinspect to read it.
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_walinspect; SET synchronous_commit = on"); err != nil {
		return nil, fmt.Errorf("prepare WAL inspection: %w", err)
	}
	var harms []Harm
	for _, id := range ids {
		name := fixtures.TenantContainer(id)
		h := Harm{Tenants: []int64{id}}
		if h.Rows, err = inspectTenantDatabase(ctx, s.DSNFor(name), runID, m); err != nil {
			return harms, err
		}
		if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&h.LSN); err != nil {
			return harms, fmt.Errorf("note WAL position: %w", err)
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return harms, fmt.Errorf("drop database %s: %w", name, err)
		}
		if err := noteCommit(ctx, conn, &h); err != nil {
			return harms, err
		}
		var first string
		err := conn.QueryRow(ctx, `SELECT
			(SELECT min(start_lsn)::text FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn())
			  WHERE (resource_manager = 'Heap' AND record_type = 'INPLACE' AND block_ref LIKE '%/'||$2::int::text||' fork %')
			     OR (resource_manager = 'Database' AND record_type = 'DROP')),
			(SELECT xid::text FROM pg_get_wal_records_info($1::pg_lsn, pg_current_wal_flush_lsn())
			  WHERE resource_manager = 'Database' AND record_type = 'DROP' ORDER BY start_lsn LIMIT 1)`,
			h.LSN, pgDatabaseRelfilenode).Scan(&first, &h.XID)
		if err != nil {
			return harms, fmt.Errorf("find the drop of %s in the WAL: %w", name, err)
		}
		h.RecoverTo = cluster.RecoveryTarget{LSN: first}
		if err := dateCommit(ctx, conn, &h); err != nil {
			return harms, err
		}
		harms = append(harms, h)
	}
	return harms, nil
}

// pgDatabaseRelfilenode is pg_database's file number (a shared, mapped catalog: 1262 unless a
// VACUUM FULL rewrote it, which pgdrill's throwaway servers never do).
const pgDatabaseRelfilenode int32 = 1262

// inspectTenantDatabase checks a tenant database's marker and counts its rows.
func inspectTenantDatabase(ctx context.Context, dsn, runID string, m *fixtures.Model) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := cluster.RequireMarker(ctx, conn, runID); err != nil {
		return 0, err
	}
	return countRows(ctx, conn, m, fixtures.SharedSchema)
}

// countRows counts the rows of every tenant table in schema.
func countRows(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, m *fixtures.Model, schema string) (int64, error) {
	var total int64
	for _, t := range m.TenantTables() {
		var n int64
		if err := q.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, t.Name}.Sanitize()).Scan(&n); err != nil {
			return 0, fmt.Errorf("count %s.%s: %w", schema, t.Name, err)
		}
		total += n
	}
	return total, nil
}

// noteCommit records the WAL position right after the harm committed, and when it committed: by
// the harness's clock, and by the server's (see dateCommit).
func noteCommit(ctx context.Context, conn *pgx.Conn, h *Harm) error {
	h.Noted = time.Now()
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text, clock_timestamp()`).Scan(&h.CommitLSN, &h.Time); err != nil {
		return fmt.Errorf("note commit: %w", err)
	}
	h.Time = h.Time.UTC()
	return dateCommit(ctx, conn, h)
}

// dateCommit sets h.Time to the time h's commit record holds, where the server keeps commit
// times (track_commit_timestamp) and h.XID is known: what a responder reading the WAL finds, to
// the microsecond. Otherwise h.Time stays the server's clock just after the commit.
func dateCommit(ctx context.Context, conn *pgx.Conn, h *Harm) error {
	full, err := strconv.ParseUint(h.XID, 10, 64)
	if err != nil {
		return nil
	}
	var at *time.Time
	err = conn.QueryRow(ctx, `SELECT CASE WHEN current_setting('track_commit_timestamp')::bool THEN pg_xact_commit_timestamp($1::text::xid) END`,
		strconv.FormatUint(full&0xffffffff, 10)).Scan(&at) // the 32-bit xid of an xid8
	if err != nil {
		return fmt.Errorf("read the commit time of transaction %s: %w", h.XID, err)
	}
	if at != nil {
		h.Time = at.UTC()
	}
	return nil
}
