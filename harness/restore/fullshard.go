package restore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// PhaseSwap replaces a live shard's data with a recovered sidecar's and restarts the shard.
const PhaseSwap = "swap"

// FullShardPITR rolls every affected shard back to just before its first harmful transaction:
// a sidecar is recovered from the base backup and archived WAL, exactly as PITRSidecar does, and
// then takes the shard's place (cluster.ReplaceData) instead of lending it rows.
//
// It is the blunt instrument a team reaches for when it has no tenant-aware tooling: one
// restart, no merge, every layout alike, and a time independent of how many tenants were harmed.
// It destroys every write any tenant of those shards made after the harm — the drill's ledger
// check shows that collateral tenant by tenant — so choose it only where the shard's other
// tenants can lose those writes, or to show what the alternatives are worth.
//
// A shard whose server and data were lost (incident.Harm.ServerLost) is rebuilt the same way: its
// sidecar replays everything archived (the harm has no target) and takes its place at the same
// address; writes whose WAL was not archived yet are gone, and the score shows them as lost.
//
// The swap is a provider operation rather than a copy of every table out of the sidecar in one
// transaction: it is what a real whole-server restore does (databases, schemas, sequences and
// catalogs included, which the database layout needs anyway, where one transaction cannot span
// the tenants' databases), and it costs a restart instead of rewriting the whole shard.
type FullShardPITR struct{}

// Name implements Strategy.
func (FullShardPITR) Name() string { return "full-shard-pitr" }

// Restore implements Strategy.
func (s FullShardPITR) Restore(ctx context.Context, env Env, rec incident.Record) (Result, error) {
	tl := newTimeline(env)
	shards := env.Cluster.Shards()
	tenants, err := perShard(ctx, rec, func(ctx context.Context, shard int, harms []incident.Harm) ([]TenantResult, error) {
		b, err := shardBackup(env, shard)
		if err != nil {
			return nil, err
		}
		live := shards[shard]
		// A lost server has nothing more to archive: the rebuild gets what its archive holds.
		if !harms[0].ServerLost {
			if err := archiveStep(ctx, tl, live, shard); err != nil {
				return nil, err
			}
		}
		sidecar, err := recoverSidecar(ctx, env, tl, live, b, harms[0]) // the earliest, in WAL order
		if err != nil {
			return nil, err
		}
		var out []TenantResult
		if err := tl.time(PhaseSwap, shard, func() error {
			for _, t := range rec.OnShard(shard) {
				n, err := countTenant(ctx, sidecar, rec, t.ID)
				if err != nil {
					return err
				}
				out = append(out, TenantResult{ID: t.ID, Shard: shard, RowsRead: n, RowsWritten: n})
			}
			return env.Cluster.ReplaceData(ctx, live, sidecar)
		}); err != nil {
			return nil, err // counted, but not swapped in: nothing was restored
		}
		return out, nil
	})
	return tl.result(s.Name(), tenants), err
}

// countTenant counts one tenant's rows on a server.
func countTenant(ctx context.Context, s cluster.Server, rec incident.Record, tenantID int64) (int64, error) {
	loc := rec.Layout.Locate(tenantID)
	conn, err := pgx.Connect(ctx, s.DSNFor(loc.Database))
	if err != nil {
		return 0, fmt.Errorf("connect to tenant %d on %s: %w", tenantID, s.Name(), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var total int64
	for _, t := range rec.Model.TenantTables() {
		owned, err := rec.Model.OwnerSQL(t, loc.Schema, "t")
		if err != nil {
			return 0, err
		}
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+owned.From+" WHERE "+owned.Where(tenantID)).Scan(&n); err != nil {
			return 0, fmt.Errorf("count %s of tenant %d on %s: %w", t.Name, tenantID, s.Name(), err)
		}
		total += n
	}
	return total, nil
}
