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
	s.upstream, s.applyDelay, s.superuser, s.database = primary, spec.ApplyDelay, primary.superuser, primary.database
	c.standbys = append(c.standbys, s)
	c.mu.Unlock()
	if err := c.p.user.mkdir(s.dir, 0o700); err != nil {
		return s, err
	}
	if err := c.pgBasebackup(ctx, primary, s.dataDir(), s.name, "--no-manifest"); err != nil {
		return s, fmt.Errorf("start standby of %s: back up: %w", primary.name, err)
	}
	if primary.remote != nil {
		if err := c.adoptConfig(s.dataDir()); err != nil {
			return s, fmt.Errorf("start standby of %s: %w", primary.name, err)
		}
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

// ReplayTo implements cluster.Standby: once cluster.PrepareHold readied it, the standby is
// restarted (kill -9 and start) with the target, no delay and recovery_target_action=pause — the
// recovery path a sidecar takes, except that the standby holds at the target instead of
// promoting — and Start waits until it holds there. Killed, not shut down: a paused startup
// process looks at a shutdown request only once a second, and a standby restarts from its last
// restartpoint either way.
func (s *server) ReplayTo(ctx context.Context, target cluster.RecoveryTarget) error {
	if s.role != cluster.RoleStandby {
		return fmt.Errorf("replay %s: not a standby", s.name)
	}
	set, err := cluster.PrepareHold(ctx, s.DSN(), target)
	if err != nil {
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	if err := s.Kill(ctx); err != nil {
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	s.recovery = set
	return s.Start(ctx)
}

// Promote implements cluster.Standby (cluster.Promote).
func (s *server) Promote(ctx context.Context) error {
	if s.role != cluster.RoleStandby {
		return fmt.Errorf("promote %s: not a standby", s.name)
	}
	if err := cluster.Promote(ctx, s.DSN(), s.recovery != nil, s.endedInRecovery); err != nil {
		return fmt.Errorf("promote %s: %w", s.name, err)
	}
	s.recovery = nil // promoted: a restart is an ordinary start
	return nil
}
