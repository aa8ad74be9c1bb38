package restore

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// restoreFrom brings tenants back from a source server (a recovered sidecar or standby), reading
// it over one connection at a time: a merge of their rows, or, where the harm overwrote or dropped
// one column, a repair of that column (see restore).
func (m merger) restoreFrom(ctx context.Context, src, live cluster.Server, h incident.Harm) ([]TenantResult, error) {
	s := &serverSource{server: src}
	defer s.close(ctx)
	return m.restore(ctx, s, live, h)
}

// restore brings back the tenants harm h harmed from src: it merges their rows, or, where the harm
// overwrote or dropped one column (h.Column), repairs that column only. Tenants an earlier run
// of the restore brought back (its journal says so) are left as they are.
//
// A column harm removed no rows, so a merge has nothing to insert: under KeepLive it would keep
// the damage, and under PreferBackup it would overwrite every column of every harmed row with the
// source's — losing what the tenant wrote to those rows after the source was taken (status
// changes, for example), or, for an export, everything since the export. The repair writes the
// one column back, and only into rows that still hold the harm's value (NULL, for a dropped column
// added back): what anyone wrote since, in that column or any other, is kept; such rows are
// counted as conflicts.
func (m merger) restore(ctx context.Context, src source, live cluster.Server, h incident.Harm) ([]TenantResult, error) {
	m.harm = harmKey(h)
	tenants, col := harmed(h), h.Column
	if col == nil {
		return m.merge(ctx, src, live, tenants)
	}
	t, ok := m.model.LookupTable(col.Table)
	if !ok {
		return nil, fmt.Errorf("repair column %s.%s: no such table", col.Table, col.Column)
	}
	c, ok := t.Column(col.Column)
	if !ok {
		return nil, fmt.Errorf("repair column %s.%s: no such column", col.Table, col.Column)
	}
	var out []TenantResult
	dropped := map[string]bool{} // tables a dropped column was added back to, for SET NOT NULL
	for _, tenant := range tenants {
		loc := m.layout.Locate(tenant.ID)
		table := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
		r, done, err := m.resumed(ctx, live, tenant)
		if err != nil {
			return out, err
		}
		if !done {
			err = transient.retry(ctx, m.tl, m.log, PhaseMerge, tenant.Shard, tenant.ID, lostConnection, func() error {
				var err error
				r, err = m.repairTenant(ctx, src, live, live.DSNFor(loc.Database), loc, t, c, col, tenant)
				return err
			})
			if err != nil {
				return out, err
			}
			m.finished(r)
		}
		out = append(out, r)
		if col.Dropped {
			dropped[loc.Database+"\x00"+table] = true
		}
	}
	if !c.Nullable {
		for k := range dropped {
			db, table, _ := strings.Cut(k, "\x00")
			m.restoreNotNull(ctx, live.DSNFor(db), table, c.Name)
		}
	}
	return out, nil
}

// repairTenant repairs one tenant's column in one transaction on the database at dsn of server:
// the tenant's rows of the table are streamed from src into a staging table, the column is added
// back if the harm dropped it, and each row still holding the harm's value takes the source's
// value by primary key. A lost connection is returned as errConnLost unless the server says the
// transaction committed (see settle).
func (m merger) repairTenant(ctx context.Context, src source, server cluster.Server, dsn string, loc fixtures.Location, t fixtures.Table,
	c fixtures.Column, col *incident.ColumnHarm, tenant incident.Tenant) (TenantResult, error) {
	res := TenantResult{ID: tenant.ID, Shard: tenant.Shard}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return res, fmt.Errorf("connect to repair tenant %d: %w", tenant.ID, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := cluster.RequireMarker(ctx, conn, m.runID); err != nil {
		return res, err
	}
	live := pgx.Identifier{loc.Schema, t.Name}.Sanitize()
	stage := m.tempTable("repair", t)
	name := pgx.Identifier{c.Name}.Sanitize()
	var xid string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := m.beginTenants(ctx, tx, []incident.Tenant{tenant}, &xid); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, t.CreateSQL("pg_temp."+stage)+" ON COMMIT DROP"); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		read, err := streamCopy(ctx, func(w io.Writer) error {
			return src.copyOut(ctx, w, m.model, loc, t, []int64{tenant.ID})
		}, tx.Conn(), "COPY "+stage+" ("+fixtures.ColumnList(t.WrittenColumns())+") FROM STDIN (FORMAT binary)")
		if err != nil {
			return err
		}
		res.RowsRead = read
		if _, err := tx.Exec(ctx, "ANALYZE "+stage); err != nil {
			return fmt.Errorf("analyze staging table: %w", err)
		}
		var damaged any // the dropped column comes back NULL
		if col.Dropped {
			if _, err := tx.Exec(ctx, "ALTER TABLE "+live+" ADD COLUMN IF NOT EXISTS "+name+" "+c.Type); err != nil {
				return fmt.Errorf("add column %s back: %w", c.Name, err)
			}
		} else if col.Value != nil {
			damaged = *col.Value
		}
		join := "(" + fixtures.QualifiedColumns("l", t.PrimaryKey) + ") = (" + fixtures.QualifiedColumns("s", t.PrimaryKey) + ")"
		owned, err := m.model.OwnerCondition(t, loc.Schema, "l", "= $1")
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "UPDATE "+live+" l SET "+name+" = s."+name+" FROM "+stage+" s WHERE "+join+
			" AND "+owned+" AND l."+name+" IS NOT DISTINCT FROM $2::"+c.Type+" AND l."+name+" IS DISTINCT FROM s."+name,
			tenant.ID, damaged)
		if err != nil {
			return fmt.Errorf("repair column %s: %w", c.Name, err)
		}
		res.RowsWritten = tag.RowsAffected()
		// What still differs was written since the harm: kept, and reported.
		rows, err := tx.Query(ctx, "SELECT ("+fixtures.ColumnList(t.PrimaryKey)+")::text FROM (SELECT s.* FROM "+stage+" s JOIN "+live+
			" l ON "+join+" WHERE l."+name+" IS DISTINCT FROM s."+name+") c ORDER BY "+fixtures.ColumnList(t.PrimaryKey))
		if err != nil {
			return fmt.Errorf("find conflicts: %w", err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("find conflicts: %w", err)
		}
		res.Conflicts = int64(len(keys))
		for _, k := range keys[:min(len(keys), maxConflictKeys)] {
			res.ConflictKeys = append(res.ConflictKeys, t.Name+k)
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("repair %s.%s of tenant %d: %w", t.Name, c.Name, tenant.ID, err)
	}
	return res, m.settle(ctx, onConn(conn, err), server, dsn, fmt.Sprintf("tenant %d", tenant.ID), xid)
}

// restoreNotNull gives a column added back its NOT NULL once every row has a value again. Rows
// written while the column was gone may have none; then the column stays nullable, which is
// logged, not a failure of the repair.
func (m merger) restoreNotNull(ctx context.Context, dsn, table, column string) {
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		_, err = conn.Exec(ctx, "ALTER TABLE "+table+" ALTER COLUMN "+pgx.Identifier{column}.Sanitize()+" SET NOT NULL")
		conn.Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		m.log.Warn("a repaired column stays nullable", "table", table, "column", column, "err", err)
	}
}
