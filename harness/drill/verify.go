package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/costmodel"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// installTools installs on every shard the extension the harness reads WAL with
// (pg_walinspect), before anything is filled or fingerprinted: it is part of the baseline's
// schema, so using it later changes nothing the verification compares.
func installTools(ctx context.Context, c cluster.Cluster) error {
	shards := c.Shards()
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, s := range shards {
		wg.Go(func() {
			errs[i] = cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
				_, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_walinspect")
				return err
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// Only superusers may install it: on servers pgdrill did not start, a role that is not
		// one finds it in the databases it creates once their owner installed it in template1.
		return fmt.Errorf("install pg_walinspect (a role that is not a superuser needs the server's owner to run CREATE EXTENSION pg_walinspect in template1): %w", err)
	}
	return nil
}

// checkBackups verifies, before the restore, every base backup (pg_verifybackup) and the WAL
// archive of every shard from its backup's start through the present (through the last segment
// it archived, for a shard the incident lost). A broken chain is a finding, not an error.
func (r *run) checkBackups(ctx context.Context) error {
	start := time.Now()
	defer func() { r.clock.Checks += time.Since(start) }() // the harness's check, not the responders' time
	lost := map[int]string{}
	for _, h := range r.out.Incident.Harms {
		if h.ServerLost {
			lost[h.Shard] = h.LastArchivedWAL
		}
	}
	chains, err := backup.VerifyChain(ctx, r.c, r.prot, lost)
	r.out.Backups = chains
	return err
}

// backupsBroken reports whether a backup chain check found a problem.
func (r *run) backupsBroken() bool {
	return slices.ContainsFunc(r.out.Backups, func(c backup.ChainReport) bool { return !c.Whole() })
}

// restoresFromBackups reports whether a strategy restores out of the base backups and the WAL
// archive, and so has nothing to restore from when their chain is broken.
func restoresFromBackups(s restore.Strategy) bool {
	switch s.(type) {
	case restore.PITRSidecar, restore.PgBackRestSidecar, restore.FullShardPITR:
		return true
	}
	return false
}

// verify compares every tenant, the tenant directory and the schema with what they must hold.
func (r *run) verify(ctx context.Context) error {
	r.clock.Verified = time.Now()
	f, err := score.Verify(ctx, score.Facts{Plan: r.plan, Source: r.src, Baseline: r.base, Affected: r.victims,
		Incident: r.out.Incident, Ledger: r.ledger.Entries()})
	if err != nil {
		return err
	}
	r.findings = f
	r.out.Writes = f.Writes
	r.out.Affected, r.out.Collateral, r.out.Integrity, r.out.Schema = f.Affected, f.Collateral, f.Integrity, f.Schema
	return nil
}

// finish judges the drill and writes the judgement into the outcome.
func (r *run) finish(ctx context.Context, err error) {
	o := r.out
	o.Finished = time.Now().UTC()
	if o.Incident != nil {
		r.clock.Incident = o.Incident.FirstNoted()
	}
	var end score.Ending
	switch {
	case ctx.Err() != nil:
		end.Interrupted = context.Cause(ctx).Error()
	case errors.Is(err, errRestore):
		end.Restore = err
	case exitcode.Of(err) == exitcode.InvalidInput:
		end.Input = err
		o.InvalidInput = true
	case err != nil:
		end.Harness = err
	}
	sc := r.cfg.Scenario.Spec.Workload
	o.Faults = r.chaos.records()
	var faults []score.Fault
	for _, f := range o.Faults {
		faults = append(faults, score.Fault{Description: f.Description, Confirmed: f.Confirmed, Healed: f.Healed, Problem: f.Problem})
	}
	var located *score.Located
	if l := o.Located; l != nil && o.Incident != nil {
		located = &score.Located{Victims: len(o.Incident.Affected), Found: len(l.Found) - len(l.Innocent), TargetsExact: l.TargetsExact}
	}
	j := score.Judge(score.Drill{Baseline: r.base, Ledger: r.ledgerEntries(), Clock: r.clock, Chains: o.Backups, Findings: r.findings,
		WorkloadExpected: sc.Writers > 0 && sc.Rate > 0, Faults: faults, Located: located}, r.cfg.Scenario.Objectives(), end)
	o.Measures, o.Results, o.Verdict, o.Reason = j.Measures, j.Results, j.Verdict, j.Reason
	o.Problems = append(o.Problems, j.Problems...)
	r.project()
	r.log.Info("drill finished", "verdict", o.Verdict, "reason", o.Reason)
}

// project projects the restore to the scenario's production size from the curves the drill was
// given. A projection that cannot be made is a problem of the report, not of the drill: it is a
// forecast beside the measurements, never one of them.
func (r *run) project() {
	p := r.cfg.Scenario.Spec.Projection
	if p == nil || r.cfg.Curves == nil {
		return
	}
	proj, err := costmodel.Project(*r.cfg.Curves, p.Production())
	if err != nil {
		r.out.Problems = append(r.out.Problems, fmt.Sprintf("no projection: %v", err))
		return
	}
	r.out.Projection = &proj
	r.log.Info("restore projected to the production size", "label", proj.Label, "summary", proj.Summary())
}

// ledgerEntries is the workload's ledger so far; none before the workload stopped.
func (r *run) ledgerEntries() []workload.Entry {
	if r.ledger == nil {
		return nil
	}
	return r.ledger.Entries()
}
