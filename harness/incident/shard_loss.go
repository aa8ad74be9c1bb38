package incident

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// LoseShard destroys one shard as the loss of its disk would (cluster.Server.Lose: kill -9, data
// directory gone, WAL archive and base backups kept) and records every tenant the catalog places
// on it as affected. There is no harmful transaction: the harm's RecoverTo is empty — recover
// everything archived — and WAL the shard had not archived yet died with it, so acknowledged
// writes in it are lost, and a drill measures how many (its RPO). Before the loss it notes the
// shard's WAL position, the last segment its archiver had sent and its rows, for the record.
func LoseShard(ctx context.Context, c cluster.Cluster, kind string, shard int) (Record, error) {
	shards := c.Shards()
	if shard < 0 || shard >= len(shards) {
		return Record{}, fmt.Errorf("lose shard %d: it does not exist (the cluster has %d)", shard, len(shards))
	}
	var tenants []fixtures.CatalogTenant
	var d fixtures.Dataset
	if err := cluster.WithConn(ctx, c.Catalog().DSN(), func(conn *pgx.Conn) error {
		var err error
		if d, err = fixtures.ReadDataset(ctx, conn); err != nil {
			return err
		}
		tenants, err = fixtures.ReadTenants(ctx, conn)
		return err
	}); err != nil {
		return Record{}, fmt.Errorf("lose shard %d: read catalog: %w", shard, err)
	}
	rec := Record{Kind: kind, RunID: c.RunID(), Layout: d.Layout, Model: d.Model}
	h := Harm{Shard: shard, ServerLost: true}
	for _, t := range tenants {
		if t.Shard == shard {
			rec.Affected = append(rec.Affected, Tenant{ID: t.ID, Shard: shard})
			h.Tenants = append(h.Tenants, t.ID)
		}
	}
	s := shards[shard]
	if err := noteLoss(ctx, s, c.RunID(), d, h.Tenants, &h); err != nil {
		return rec, fmt.Errorf("lose shard %d: %w", shard, err)
	}
	if err := s.Lose(ctx); err != nil {
		return rec, err
	}
	h.Noted = time.Now()
	h.Time = h.Noted.UTC()
	rec.Harms = []Harm{h}
	return rec, nil
}

// noteLoss checks the shard's marker and notes, just before the loss, its WAL insert position
// (LSN and CommitLSN alike: nothing commits the loss), the last WAL segment it archived and how
// many rows its tenants hold (approximate: writers keep writing until the loss).
func noteLoss(ctx context.Context, s cluster.Server, runID string, d fixtures.Dataset, ids []int64, h *Harm) error {
	layout := d.Layout
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := cluster.RequireMarker(ctx, conn, runID); err != nil {
		return err
	}
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text, coalesce(last_archived_wal, '') FROM pg_stat_archiver`).
		Scan(&h.LSN, &h.LastArchivedWAL); err != nil {
		return fmt.Errorf("note WAL position: %w", err)
	}
	h.CommitLSN = h.LSN
	if layout == fixtures.LayoutShared {
		h.Rows, err = countRows(ctx, conn, d.Model, fixtures.SharedSchema)
		return err
	}
	for _, id := range ids {
		loc := layout.Locate(id)
		var n int64
		if layout == fixtures.LayoutSchema {
			n, err = countRows(ctx, conn, d.Model, loc.Schema)
		} else {
			n, err = inspectTenantDatabase(ctx, s.DSNFor(loc.Database), runID, d.Model)
		}
		if err != nil {
			return err
		}
		h.Rows += n
	}
	return nil
}
