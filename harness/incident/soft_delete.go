package incident

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// SoftDeleteTenants marks every row of the given tenants deleted — sets the soft-delete column
// (fixtures.Table.SoftDelete) of each row not deleted already — in one transaction per shard
// (under the database layout, per tenant database): the harm of a deletion job that ran
// against the wrong ids but only soft-deleted. Each harm records the one timestamp it wrote
// (clock_timestamp(), read once at the transaction's start) as its SoftDeleteMark, so an undo
// can clear exactly the rows it marked. Every database is checked for the run's marker first.
func SoftDeleteTenants(ctx context.Context, c cluster.Cluster, kind string, tenants []Tenant) (Record, error) {
	return harmTenants(ctx, c, kind, tenants, "soft-delete", func(s cluster.Server, layout fixtures.Layout, ids []int64) ([]Harm, error) {
		if layout != fixtures.LayoutDatabase {
			h, err := softDeleteInTransaction(ctx, s.DSN(), c.RunID(), layout, ids)
			return []Harm{h}, err
		}
		var harms []Harm
		for _, id := range ids {
			h, err := softDeleteInTransaction(ctx, s.DSNFor(fixtures.TenantContainer(id)), c.RunID(), layout, []int64{id})
			if err != nil {
				return harms, err
			}
			harms = append(harms, h)
		}
		return harms, nil
	})
}

// softDeleteInTransaction marks the tenants' live rows deleted in one transaction on one
// database, noting its xid, WAL positions and the mark it wrote.
func softDeleteInTransaction(ctx context.Context, dsn, runID string, layout fixtures.Layout, ids []int64) (Harm, error) {
	h := Harm{Tenants: ids}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return h, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := cluster.RequireMarker(ctx, conn, runID); err != nil {
		return h, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var mark time.Time
		if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text, pg_current_wal_insert_lsn()::text, clock_timestamp()`).
			Scan(&h.XID, &h.LSN, &mark); err != nil {
			return fmt.Errorf("note transaction: %w", err)
		}
		h.SoftDeleteMark = mark.UTC()
		for _, id := range ids {
			for _, t := range fixtures.Tables() {
				if t.SoftDelete == "" {
					continue
				}
				col := pgx.Identifier{t.SoftDelete}.Sanitize()
				tag, err := tx.Exec(ctx, "UPDATE "+pgx.Identifier{layout.Locate(id).Schema, t.Name}.Sanitize()+
					" SET "+col+" = $1 WHERE tenant_id = $2 AND "+col+" IS NULL", h.SoftDeleteMark, id)
				if err != nil {
					return fmt.Errorf("soft-delete %s of tenant %d: %w", t.Name, id, err)
				}
				h.Rows += tag.RowsAffected()
			}
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	h.RecoverTo = cluster.RecoveryTarget{XID: h.XID}
	return h, noteCommit(ctx, conn, &h)
}
