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
	return harmTenants(ctx, c, kind, tenants, "soft-delete", func(s cluster.Server, d fixtures.Dataset, ids []int64) ([]Harm, error) {
		return perDatabase(s, d.Layout, ids, func(dsn string, ids []int64) (Harm, error) {
			return softDeleteInTransaction(ctx, dsn, c.RunID(), d, ids)
		})
	})
}

// softDeleteInTransaction marks the tenants' live rows deleted in one transaction on one
// database, noting its xid, WAL positions and the mark it wrote.
func softDeleteInTransaction(ctx context.Context, dsn, runID string, d fixtures.Dataset, ids []int64) (Harm, error) {
	return harmInTransaction(ctx, dsn, runID, Harm{Tenants: ids}, func(tx pgx.Tx, h *Harm) error {
		var mark time.Time
		if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&mark); err != nil {
			return fmt.Errorf("read the mark to write: %w", err)
		}
		h.SoftDeleteMark = mark.UTC()
		for _, id := range ids {
			schema := d.Layout.Locate(id).Schema
			for _, t := range d.Model.TenantTables() {
				if t.SoftDelete == "" {
					continue
				}
				cond, err := d.Model.OwnerCondition(t, schema, "t", "= $2")
				if err != nil {
					return err
				}
				col := pgx.Identifier{t.SoftDelete}.Sanitize()
				tag, err := tx.Exec(ctx, "UPDATE "+pgx.Identifier{schema, t.Name}.Sanitize()+
					" t SET "+col+" = $1 WHERE "+cond+" AND t."+col+" IS NULL", h.SoftDeleteMark, id)
				if err != nil {
					return fmt.Errorf("soft-delete %s of tenant %d: %w", t.Name, id, err)
				}
				h.Rows += tag.RowsAffected()
			}
		}
		return nil
	})
}
