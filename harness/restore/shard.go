package restore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// The steps strategies share on one shard, written once so that every strategy times them under
// the same phase names and fails them with the same words.

// harmed returns the tenants one harm touched, on the harm's shard: what a strategy restores
// from a source recovered to just before that harm.
func harmed(h incident.Harm) []incident.Tenant {
	out := make([]incident.Tenant, len(h.Tenants))
	for i, id := range h.Tenants {
		out[i] = incident.Tenant{ID: id, Shard: h.Shard}
	}
	return out
}

// shardBackup returns the base backup the protection phase took of shard: what a sidecar of it
// recovers from. A shard the protection phase did not back up cannot be restored from a backup.
func shardBackup(env Env, shard int) (cluster.Backup, error) {
	if shard < 0 || shard >= len(env.Protection.Backups) {
		return cluster.Backup{}, fmt.Errorf("restore shard %d: no base backup of it", shard)
	}
	return env.Protection.Backups[shard], nil
}

// archiveStep closes the live shard's WAL segment and waits for the archiver (PhaseArchive): a
// sidecar replays the archive, and the harm must be in it.
func archiveStep(ctx context.Context, tl *timeline, live cluster.Server, shard int) error {
	return tl.time(PhaseArchive, shard, func() error {
		_, err := backup.ArchiveNow(ctx, live)
		return err
	})
}

// recoverSidecar lays out a sidecar of live from base backup b (PhaseProvision) and replays the
// archive into it up to just before harm h (PhaseReplay). When the replay fails it stops the
// sidecar and names the missing WAL segments, if a gap in the archive is why; otherwise the
// caller stops the sidecar (stopSidecar) when done with it, or hands it on (cluster.ReplaceData).
func recoverSidecar(ctx context.Context, env Env, tl *timeline, live cluster.Server, b cluster.Backup, h incident.Harm) (cluster.Server, error) {
	var sidecar cluster.Server
	if err := tl.time(PhaseProvision, h.Shard, func() error {
		var err error
		sidecar, err = env.Cluster.PrepareSidecar(ctx, cluster.SidecarSpec{From: b, Target: h.RecoverTo})
		return err
	}); err != nil {
		return nil, err
	}
	// A sidecar that died replaying (killed, crashed, its disk full) resumes recovery where it
	// stopped when started again.
	if err := tl.time(PhaseReplay, h.Shard, func() error {
		return transient.retry(ctx, tl, env.Log, PhaseReplay, h.Shard, 0, died, func() error { return sidecar.Start(ctx) })
	}, sidecar); err != nil {
		stopSidecar(ctx, env.Log, sidecar)
		return nil, nameGap(ctx, live, b, h, err)
	}
	return sidecar, nil
}

// stopSidecar stops a sidecar a restore is done with. A sidecar that will not stop is destroyed
// with its cluster anyway, so the restore goes on and the failure is only logged.
func stopSidecar(ctx context.Context, log *slog.Logger, sidecar cluster.Server) {
	if err := sidecar.Stop(context.WithoutCancel(ctx)); err != nil {
		log.Warn("could not stop sidecar", "sidecar", sidecar.Name(), "err", err)
	}
}

// nameGap turns a failed replay into an error that names the missing WAL segments, when a gap in
// the archive is why: a drill whose backups are broken must say so plainly. A lost server cannot
// be asked where its WAL stood, so its replay error is returned as it is.
func nameGap(ctx context.Context, live cluster.Server, b cluster.Backup, h incident.Harm, err error) error {
	if h.ServerLost {
		return err
	}
	missing, merr := backup.MissingSegments(ctx, live, b.StartLSN, h.LSN)
	if merr != nil || len(missing) == 0 {
		return err
	}
	return fmt.Errorf("the WAL archive of %s is missing %s, so replay from backup %s cannot reach the incident: %w",
		live.Name(), strings.Join(missing, ", "), b.ID, err)
}

// mergeStep brings the tenants harm h touched back from src, a server recovered to just before
// it, into live (PhaseMerge): a merge of their rows, or the repair of the one column the harm
// overwrote or dropped.
func mergeStep(ctx context.Context, tl *timeline, m merger, src, live cluster.Server, h incident.Harm) ([]TenantResult, error) {
	var out []TenantResult
	err := tl.time(PhaseMerge, h.Shard, func() error {
		var err error
		out, err = m.restoreFrom(ctx, src, live, h)
		return err
	}, src, live)
	return out, err
}
