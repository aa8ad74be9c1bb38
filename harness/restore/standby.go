package restore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// PhasePause stops a delayed standby's replay, so that its delay cannot run out during the
// restore.
const PhasePause = "pause"

// StartStandbys starts a streaming standby of every shard, in parallel, each applying
// transactions delay after their commit: the protection DelayedStandby restores from. The
// standbys belong to the cluster and are destroyed with it; on error, those started so far are
// too.
func StartStandbys(ctx context.Context, c cluster.Cluster, delay time.Duration) ([]cluster.Standby, error) {
	shards := c.Shards()
	standbys := make([]cluster.Standby, len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, s := range shards {
		wg.Go(func() { standbys[i], errs[i] = c.StartStandby(ctx, s, cluster.StandbySpec{ApplyDelay: delay}) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("start standbys of cluster %s: %w", c.RunID(), err)
	}
	return standbys, nil
}

// DelayedStandby restores from a streaming standby of each affected shard that applies
// transactions only after a delay (StartStandbys): its replay is paused, advanced without delay
// to just before each harmful transaction in turn, and the tenants that transaction harmed are
// merged back from it; at the last harm the standby is promoted.
//
// Choose it when an RTO of minutes is a must: nothing is copied and only the WAL of the last
// delay is replayed, so its time is the merge. The price is a second server per shard and a
// restore that must start before the delay runs out (it fails with cluster.ErrPastTarget
// otherwise, and the slower PITRSidecar is the fallback), and a standby used up by each restore.
// Postgres delays commits only: harm that acts before its commit — DROP DATABASE, under the
// database layout — is held back only while an earlier commit is, which a busy shard always has
// and an idle one may not. It works for every layout; a shard harmed by several transactions that
// each lock tables exclusively (none of pgdrill's incidents) would wait at the earlier ones.
type DelayedStandby struct {
	// Policy decides conflicts between standby and live rows. Default: KeepLive.
	Policy ConflictPolicy
}

// Name implements Strategy.
func (DelayedStandby) Name() string { return "delayed-standby" }

// Restore implements Strategy.
func (s DelayedStandby) Restore(ctx context.Context, env Env, rec incident.Record) (Result, error) {
	tl := newTimeline(env)
	m := newMerger(env, rec, s.Policy, tl)
	shards := env.Cluster.Shards()
	tenants, err := perShard(ctx, rec, func(ctx context.Context, shard int, harms []incident.Harm) ([]TenantResult, error) {
		if shard >= len(env.Standbys) || env.Standbys[shard] == nil {
			return nil, fmt.Errorf("restore shard %d: no standby of it", shard)
		}
		standby := env.Standbys[shard]
		if err := tl.time(PhasePause, shard, func() error { return standby.PauseReplay(ctx) }); err != nil {
			return nil, err
		}
		// In WAL order: a tenant harmed later keeps the writes it took between two harms. The
		// standby is promoted at the last harm, which rolls that transaction back and frees
		// what it locked (a dropped schema's tables); earlier harms are read while it holds.
		var out []TenantResult
		for i, h := range harms {
			if err := tl.time(PhaseReplay, shard, func() error {
				if err := standby.ReplayTo(ctx, h.RecoverTo); err != nil || i < len(harms)-1 {
					return err
				}
				return standby.Promote(ctx)
			}); err != nil {
				return out, err
			}
			r, err := mergeStep(ctx, tl, m, standby, shards[shard], h)
			out = append(out, r...)
			if err != nil {
				return out, err
			}
		}
		return out, nil
	})
	return tl.result(s.Name(), tenants), err
}
