package restore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgdrill/pgdrill/harness/backup"
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
	tl := &timeline{}
	m := merger{runID: env.Cluster.RunID(), layout: rec.Layout, policy: s.Policy}
	if m.policy == "" {
		m.policy = KeepLive
	}
	shards := env.Cluster.Shards()
	tenants, err := perShard(ctx, rec, func(ctx context.Context, shard int) ([]TenantResult, error) {
		harms := rec.HarmsOn(shard)
		if len(harms) == 0 {
			return nil, fmt.Errorf("restore shard %d: the incident record has no harm on it", shard)
		}
		if shard >= len(env.Protection.Backups) {
			return nil, fmt.Errorf("restore shard %d: no base backup of it", shard)
		}
		if harms[0].ServerLost {
			return nil, fmt.Errorf("restore shard %d: its server and data were lost, so there is no live shard to merge into; rebuild it with full-shard-pitr", shard)
		}
		live := shards[shard]
		if err := tl.time(PhaseArchive, shard, func() error {
			_, err := backup.ArchiveNow(ctx, live)
			return err
		}); err != nil {
			return nil, err
		}
		// Each harm gets a sidecar recovered to just before it: a tenant harmed later keeps the
		// writes it took between two harms.
		var out []TenantResult
		for _, h := range harms {
			r, err := s.restoreHarm(ctx, env, tl, m, live, h, rec.Affected)
			if err != nil {
				return nil, err
			}
			out = append(out, r...)
		}
		return out, nil
	})
	return Result{Strategy: s.Name(), Phases: tl.sorted(), Tenants: tenants}, err
}

// nameGap turns a failed replay into an error that names the missing WAL segments, when a gap in
// the archive is why: a drill whose backups are broken must say so plainly.
func nameGap(ctx context.Context, live cluster.Server, b cluster.Backup, h incident.Harm, err error) error {
	missing, merr := backup.MissingSegments(ctx, live, b.StartLSN, h.LSN)
	if merr != nil || len(missing) == 0 {
		return err
	}
	return fmt.Errorf("the WAL archive of %s is missing %s, so replay from backup %s cannot reach the incident: %w",
		live.Name(), strings.Join(missing, ", "), b.ID, err)
}

// restoreHarm recovers a sidecar to just before one harm and merges the tenants it harmed.
func (s PITRSidecar) restoreHarm(ctx context.Context, env Env, tl *timeline, m merger, live cluster.Server,
	h incident.Harm, affected []incident.Tenant) ([]TenantResult, error) {
	var sidecar cluster.Server
	if err := tl.time(PhaseProvision, h.Shard, func() error {
		var err error
		sidecar, err = env.Cluster.PrepareSidecar(ctx, cluster.SidecarSpec{
			From: env.Protection.Backups[h.Shard], Target: h.RecoverTo})
		return err
	}); err != nil {
		return nil, err
	}
	defer func() {
		if err := sidecar.Stop(context.WithoutCancel(ctx)); err != nil {
			env.Log.Warn("could not stop sidecar", "sidecar", sidecar.Name(), "err", err)
		}
	}()
	if err := tl.time(PhaseReplay, h.Shard, func() error { return sidecar.Start(ctx) }); err != nil {
		return nil, nameGap(ctx, live, env.Protection.Backups[h.Shard], h, err)
	}
	var tenants []incident.Tenant
	for _, t := range affected {
		if slices.Contains(h.Tenants, t.ID) {
			tenants = append(tenants, t)
		}
	}
	var out []TenantResult
	err := tl.time(PhaseMerge, h.Shard, func() error {
		var err error
		out, err = m.restoreFrom(ctx, sidecar, live, tenants, h.Column)
		return err
	})
	return out, err
}
