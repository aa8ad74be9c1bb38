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

// ReplayTo implements cluster.Standby: once cluster.PrepareHold readied it, the standby's
// container is replaced by one with the target, no delay and recovery_target_action=pause
// (killed, not shut down: a paused startup process looks at a shutdown request only once a
// second), and Start waits until it holds there.
func (s *server) ReplayTo(ctx context.Context, target cluster.RecoveryTarget) error {
	if s.role != cluster.RoleStandby {
		return fmt.Errorf("replay %s: not a standby", s.name)
	}
	set, err := cluster.PrepareHold(ctx, s.DSN(), target)
	if err != nil {
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	s.recovery = set
	if err := s.create(ctx); err != nil { // removes the running container: a kill
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
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
