package drill

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/scenarios"
)

// strategyName is the restore strategy the drill protects for: the one it runs, or on a game day
// the scenario's.
func (r *run) strategyName() scenarios.Strategy {
	if r.strategy != nil {
		return scenarios.Strategy(r.strategy.Name())
	}
	return r.cfg.Scenario.Spec.Restore.Strategy
}

// engine is the backup engine the cluster is created with: pgBackRest where the scenario's
// protection asks for it or the strategy restores with it (pgbackrest-sidecar refuses other
// backups), else Postgres's own.
func (r *run) engine() cluster.Engine {
	if r.cfg.Scenario.Spec.Protection.PgBackRest || r.strategyName() == scenarios.PgBackRestSidecar {
		return cluster.EnginePgBackRest
	}
	return cluster.EngineBaseBackup
}

// protect takes what the scenario's protection section and the restore strategy need, before the
// workload starts: a base backup of every shard (with the cluster's engine), a delayed standby
// of every shard when protection.standbyApplyDelay is set, and a logical export of every tenant
// when protection.logicalExportInterval is set or the strategy is logical-export. One export is
// taken, before the workload, so its age at the incident is the whole workload's: the worst case
// of a periodic export.
func (r *run) protect(ctx context.Context) error {
	p := r.cfg.Scenario.Spec.Protection
	var err error
	if r.prot, err = backup.Protect(ctx, r.c, "pgdrill-"+r.c.RunID()); err != nil {
		return err
	}
	if err := r.measureData(ctx); err != nil {
		return err
	}
	if d := p.StandbyApplyDelay.Std(); d > 0 {
		if r.standbys, err = restore.StartStandbys(ctx, r.c, d); err != nil {
			return err
		}
	}
	if p.LogicalExportInterval > 0 || r.strategyName() == scenarios.LogicalExport {
		if r.exportDir, err = os.MkdirTemp("", "pgdrill-exports-"+r.c.RunID()+"-"); err != nil {
			return fmt.Errorf("create export directory: %w", err)
		}
		if _, err := backup.ExportTenants(ctx, r.c, nil, filepath.Join(r.exportDir, "0001")); err != nil {
			return err
		}
	}
	return nil
}

// equip gives a strategy what the protection phase made for it: LogicalExport its exports.
func (r *run) equip(s restore.Strategy) restore.Strategy {
	switch st := s.(type) {
	case restore.LogicalExport:
		if st.Dir == "" {
			st.Dir = r.exportDir
		}
		return st
	case restore.Runbook:
		if st.Stream == nil {
			st.Stream = r.cfg.RunbookOutput
		}
		st.Environ = append(st.Environ, r.cfg.RunbookEnv...)
		return st
	}
	return s
}

// removeExports removes the exports the protection phase took.
func (r *run) removeExports() error {
	if r.exportDir == "" {
		return nil
	}
	if err := os.RemoveAll(r.exportDir); err != nil {
		return fmt.Errorf("remove logical exports: %w", err)
	}
	r.exportDir = ""
	return nil
}
