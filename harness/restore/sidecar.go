package restore

import (
	"context"
	"fmt"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// PITRSidecar restores from the last base backup plus archived WAL: a sidecar server per affected
// shard is recovered to just before the harmful transaction (its xid, exclusive; its LSN when the
// harm had no transaction), and the affected tenants are merged back from it.
//
// Choose it when base backups and a WAL archive are all you have — the common case. Its time grows
// with the WAL written since the backup (replay) and the size of the affected tenants (merge),
// not with the size of the shard beyond the backup copy. It works for every layout.
type PITRSidecar struct {
	// Policy decides conflicts between backup and live rows. Default: KeepLive.
	Policy ConflictPolicy
}

// Name implements Strategy.
func (PITRSidecar) Name() string { return "pitr-sidecar" }

// Restore implements Strategy.
func (s PITRSidecar) Restore(ctx context.Context, env Env, rec incident.Record) (Result, error) {
	tl := newTimeline(env)
	m := newMerger(env, rec, s.Policy, tl)
	shards := env.Cluster.Shards()
	tenants, err := perShard(ctx, rec, func(ctx context.Context, shard int, harms []incident.Harm) ([]TenantResult, error) {
		b, err := shardBackup(env, shard)
		if err != nil {
			return nil, err
		}
		if harms[0].ServerLost {
			return nil, fmt.Errorf("restore shard %d: its server and data were lost, so there is no live shard to merge into; rebuild it with full-shard-pitr", shard)
		}
		live := shards[shard]
		if err := archiveStep(ctx, tl, live, shard); err != nil {
			return nil, err
		}
		// Each harm gets a sidecar recovered to just before it: a tenant harmed later keeps the
		// writes it took between two harms.
		var out []TenantResult
		for _, h := range harms {
			r, err := restoreHarm(ctx, env, tl, m, live, b, h)
			out = append(out, r...)
			if err != nil {
				return out, err
			}
		}
		return out, nil
	})
	return tl.result(s.Name(), tenants), err
}

// restoreHarm recovers a sidecar from b to just before one harm and merges the tenants it
// harmed.
func restoreHarm(ctx context.Context, env Env, tl *timeline, m merger, live cluster.Server, b cluster.Backup,
	h incident.Harm) ([]TenantResult, error) {
	m.harm = harmKey(h)
	if back, all, err := m.allResumed(ctx, live, harmed(h)); err != nil || all {
		return back, err
	}
	sidecar, err := recoverSidecar(ctx, env, tl, live, b, h)
	if err != nil {
		return nil, err
	}
	defer stopSidecar(ctx, env.Log, sidecar)
	return mergeStep(ctx, tl, m, sidecar, live, h)
}
