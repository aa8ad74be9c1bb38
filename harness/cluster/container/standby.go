package container

import (
	"context"
	"fmt"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

var _ cluster.Standby = (*server)(nil)

// StartStandby takes a base backup of the primary, from the tools container, straight into the
// standby's data directory, marks it a standby and starts its container. Its primary_conninfo
// (the primary's name on the run's network), apply delay and restore_command are on its
// command line.
func (c *containers) StartStandby(ctx context.Context, of cluster.Server, spec cluster.StandbySpec) (cluster.Standby, error) {
	primary := c.find(of.Name())
	if primary == nil || primary.role == cluster.RoleStandby || primary.role == cluster.RoleSidecar {
		return nil, fmt.Errorf("start standby of %s: not a primary server of run %s", of.Name(), c.runID)
	}
	if spec.ApplyDelay < 0 {
		return nil, fmt.Errorf("start standby of %s: negative apply delay %s", of.Name(), spec.ApplyDelay)
	}
	s := c.newServer("standby-"+primary.name+"-"+c.next(), cluster.RoleStandby, primary.index, false)
	s.upstream, s.applyDelay = primary, spec.ApplyDelay
	c.mu.Lock()
	c.standbys = append(c.standbys, s)
	c.mu.Unlock()
	if err := c.pgBasebackup(ctx, primary, s.dataDir(), s.name, "--no-manifest"); err != nil {
		return s, fmt.Errorf("start standby of %s: back up: %w", primary.name, err)
	}
	if err := c.tool(ctx, asPostgres, nil, `touch "$1"/standby.signal`, s.dataDir()); err != nil {
		return s, fmt.Errorf("start standby of %s: %w", primary.name, err)
	}
	if err := s.create(ctx); err != nil {
		return s, fmt.Errorf("start standby of %s: %w", primary.name, err)
	}
	if err := s.Start(ctx); err != nil {
		return s, fmt.Errorf("start standby of %s: %w", primary.name, err)
	}
	return s, c.saveRecord()
}

// PauseReplay implements cluster.Standby (cluster.PauseReplay).
func (s *server) PauseReplay(ctx context.Context) error {
	if s.role != cluster.RoleStandby {
		return fmt.Errorf("pause replay of %s: not a standby", s.name)
	}
	if err := cluster.PauseReplay(ctx, s.DSN()); err != nil {
		return fmt.Errorf("pause replay of %s: %w", s.name, err)
	}
	return nil
}

// ReplayTo implements cluster.Standby: it pauses replay, refuses a target already applied, makes
// a restartpoint where the standby stands, then replaces its container by one with the target,
// no delay and recovery_target_action=pause (killed, not shut down: a paused startup process
// looks at a shutdown request only once a second) and waits until it holds there.
func (s *server) ReplayTo(ctx context.Context, target cluster.RecoveryTarget) error {
	set, err := cluster.RecoverySettings(target)
	if err != nil {
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	if len(set) == 0 {
		return fmt.Errorf("replay %s: a streaming standby needs a target to stop at", s.name)
	}
	if err := s.PauseReplay(ctx); err != nil {
		return err
	}
	if err := cluster.RequireBefore(ctx, s.DSN(), target); err != nil {
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	if err := s.exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("replay %s: make a restartpoint: %w", s.name, err)
	}
	set["recovery_target_action"] = "pause"
	set["recovery_min_apply_delay"] = "0"
	s.recovery = set
	if err := s.create(ctx); err != nil { // removes the running container: a kill
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	return s.Start(ctx)
}

// Promote implements cluster.Standby. A standby held at its target ends recovery when replay is
// resumed (recovery_target_action=pause says so); one that follows its primary is promoted.
func (s *server) Promote(ctx context.Context) error {
	if s.role != cluster.RoleStandby {
		return fmt.Errorf("promote %s: not a standby", s.name)
	}
	query := "SELECT pg_promote(wait => false)"
	if s.recovery != nil {
		query = "SELECT pg_wal_replay_resume()"
	}
	if err := s.exec(ctx, query); err != nil {
		return fmt.Errorf("promote %s: %w", s.name, err)
	}
	if err := cluster.AwaitPromoted(ctx, s.DSN(), s.endedInRecovery); err != nil {
		return fmt.Errorf("promote %s: %w", s.name, err)
	}
	s.recovery = nil // promoted: a restart is an ordinary start
	return nil
}
