package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

var _ cluster.Standby = (*server)(nil)

// StartStandby takes a base backup of the primary straight into the standby's data directory
// (pg_basebackup, WAL streamed along), marks it a standby and starts it. Its primary_conninfo,
// apply delay and restore_command are written into pgdrill.conf on every start, not by
// pg_basebackup -R into postgresql.auto.conf, which would outrank them.
func (c *localCluster) StartStandby(ctx context.Context, of cluster.Server, spec cluster.StandbySpec) (cluster.Standby, error) {
	primary := c.find(of.Name())
	if primary == nil || primary.role == cluster.RoleStandby {
		return nil, fmt.Errorf("start standby of %s: not a primary server of run %s", of.Name(), c.runID)
	}
	if spec.ApplyDelay < 0 {
		return nil, fmt.Errorf("start standby of %s: negative apply delay %s", of.Name(), spec.ApplyDelay)
	}
	c.mu.Lock()
	c.seq++
	s := c.newServer("standby-"+primary.name+"-"+strconv.Itoa(c.seq), cluster.RoleStandby, primary.index, false)
	s.upstream, s.applyDelay = primary, spec.ApplyDelay
	c.standbys = append(c.standbys, s)
	c.mu.Unlock()
	if err := c.p.user.mkdir(s.dir, 0o700); err != nil {
		return s, err
	}
	if err := c.pgBasebackup(ctx, primary, s.dataDir(), s.name, "--no-manifest"); err != nil {
		return s, fmt.Errorf("start standby of %s: back up: %w", primary.name, err)
	}
	signal := filepath.Join(s.dataDir(), "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		return s, fmt.Errorf("write standby.signal: %w", err)
	}
	if err := c.p.user.own(signal); err != nil {
		return s, err
	}
	if err := s.Start(ctx); err != nil {
		return s, fmt.Errorf("start standby of %s: %w", primary.name, err)
	}
	return s, nil
}

// find returns the cluster's server of that name, or nil.
func (c *localCluster) find(name string) *server {
	for _, s := range c.servers() {
		if s.name == name {
			return s
		}
	}
	return nil
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

// ReplayTo implements cluster.Standby: it pauses replay, refuses a target already applied, then
// restarts the standby (kill -9 and start) with the target, no delay and recovery_target_action=pause — the recovery
// path a sidecar takes, except that the standby holds at the target instead of promoting — and
// waits until it holds there.
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
	// A standby restarts replay from its last restartpoint: make one where it stands (at the
	// last checkpoint record it replayed), so the restart does not replay since the base backup.
	if err := s.exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("replay %s: make a restartpoint: %w", s.name, err)
	}
	set["recovery_target_action"] = "pause"
	set["recovery_min_apply_delay"] = "0"
	// Killed, not shut down: a paused startup process looks at a shutdown request only once a
	// second, and a standby restarts from its last restartpoint either way.
	if err := s.Kill(ctx); err != nil {
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	s.recovery = set
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
