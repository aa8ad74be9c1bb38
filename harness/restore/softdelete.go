package restore

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// SoftDeleteUndo clears the deletion marks an incident wrote, and nothing else: the rows of the
// harmed tenants whose soft-delete column holds exactly the harm's mark
// (incident.Harm.SoftDeleteMark) get it back to NULL, in one transaction per harm and database.
//
// Choose it when the harm only soft-deleted — a deletion job run against the wrong ids whose
// rows are all still there. It needs no backup and no sidecar, takes seconds whatever the
// tenants' size and loses nothing; rows the application deleted before or after the incident
// stay deleted (bringing those back would be a resurrection, scored as a failure). It cannot undo
// a hard delete: a record with a harm that wrote no mark is refused before anything changes.
// It works for every layout.
type SoftDeleteUndo struct{}

// Name implements Strategy.
func (SoftDeleteUndo) Name() string { return "soft-delete-undo" }

// Restore implements Strategy.
func (s SoftDeleteUndo) Restore(ctx context.Context, env Env, rec incident.Record) (Result, error) {
	res := Result{Strategy: s.Name()}
	for _, h := range rec.Harms {
		if h.SoftDeleteMark.IsZero() {
			return res, fmt.Errorf("undo soft delete: the harm %s on shard %d wrote no deletion mark (not a soft delete)", h.XID, h.Shard)
		}
	}
	tl := newTimeline(env)
	shards := env.Cluster.Shards()
	var err error
	res.Tenants, err = perShard(ctx, rec, func(ctx context.Context, shard int, harms []incident.Harm) ([]TenantResult, error) {
		var out []TenantResult
		for _, h := range harms {
			if err := tl.time(PhaseUndo, shard, func() error {
				r, err := undoHarm(ctx, env, shards[shard], rec, h)
				out = append(out, r...)
				return err
			}); err != nil {
				return out, err
			}
		}
		return out, nil
	})
	res.Phases = tl.sorted()
	return res, err
}

// undoHarm clears one harm's marks, one transaction per database its tenants live in.
func undoHarm(ctx context.Context, env Env, live cluster.Server, rec incident.Record, h incident.Harm) ([]TenantResult, error) {
	var databases []string
	for _, id := range h.Tenants {
		if db := rec.Layout.Locate(id).Database; !slices.Contains(databases, db) {
			databases = append(databases, db)
		}
	}
	var out []TenantResult
	for _, db := range databases {
		conn, err := pgx.Connect(ctx, live.DSNFor(db))
		if err != nil {
			return out, fmt.Errorf("connect to %s on %s: %w", db, live.Name(), err)
		}
		r, err := undoInTransaction(ctx, conn, env.Cluster.RunID(), rec, db, h)
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return out, err
		}
		out = append(out, r...)
	}
	var cleared int64
	for _, r := range out {
		cleared += r.RowsWritten
	}
	if cleared != h.Rows {
		env.Log.Warn("a soft delete's marks were not all there to clear: the application changed or removed rows since",
			"shard", h.Shard, "xid", h.XID, "marked", h.Rows, "cleared", cleared)
	}
	return out, nil
}

// undoInTransaction clears the harm's marks of its tenants kept in database db.
func undoInTransaction(ctx context.Context, conn *pgx.Conn, runID string, rec incident.Record, db string, h incident.Harm) ([]TenantResult, error) {
	if err := cluster.RequireMarker(ctx, conn, runID); err != nil {
		return nil, err
	}
	var out []TenantResult
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, id := range h.Tenants {
			loc := rec.Layout.Locate(id)
			if loc.Database != db {
				continue
			}
			r := TenantResult{ID: id, Shard: h.Shard}
			for _, t := range rec.Model.TenantTables() {
				if t.SoftDelete == "" {
					continue
				}
				owned, err := rec.Model.OwnerCondition(t, loc.Schema, "t", "= $1")
				if err != nil {
					return err
				}
				col := pgx.Identifier{t.SoftDelete}.Sanitize()
				tag, err := tx.Exec(ctx, "UPDATE "+pgx.Identifier{loc.Schema, t.Name}.Sanitize()+" t SET "+col+
					" = NULL WHERE "+owned+" AND t."+col+" = $2", id, h.SoftDeleteMark)
				if err != nil {
					return fmt.Errorf("clear marks in %s of tenant %d: %w", t.Name, id, err)
				}
				r.RowsWritten += tag.RowsAffected()
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
