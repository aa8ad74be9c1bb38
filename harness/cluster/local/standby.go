package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/logtail"
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

// PauseReplay implements cluster.Standby with pg_wal_replay_pause. Postgres honours a pause
// between two records, and not while it waits out the delay of a commit (it pauses right before
// applying that commit instead), so the pause is awaited briefly and then taken as given.
func (s *server) PauseReplay(ctx context.Context) error {
	if s.role != cluster.RoleStandby {
		return fmt.Errorf("pause replay of %s: not a standby", s.name)
	}
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return fmt.Errorf("pause replay of %s: connect: %w", s.name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		return fmt.Errorf("pause replay of %s: %w", s.name, err)
	}
	for range pauseChecks {
		var state string
		if err := conn.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err != nil {
			return fmt.Errorf("pause replay of %s: %w", s.name, err)
		}
		if state == "paused" {
			return nil
		}
	}
	return nil // waiting out a commit's delay: it stops before applying it
}

// pauseChecks bounds how often PauseReplay looks for the pause to take effect.
const pauseChecks = 20

// ReplayTo implements cluster.Standby: it pauses replay, refuses a target already applied, then
// restarts the standby (kill -9 and start) with the target, no delay and recovery_target_action=pause — the recovery
// path a sidecar takes, except that the standby holds at the target instead of promoting — and
// waits until it holds there.
func (s *server) ReplayTo(ctx context.Context, target cluster.RecoveryTarget) error {
	set, err := targetSettings(target)
	if err != nil {
		return fmt.Errorf("replay %s: %w", s.name, err)
	}
	if len(set) == 0 {
		return fmt.Errorf("replay %s: a streaming standby needs a target to stop at", s.name)
	}
	if err := s.PauseReplay(ctx); err != nil {
		return err
	}
	if err := s.requireBefore(ctx, target); err != nil {
		return err
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

// requireBefore fails with cluster.ErrPastTarget when the standby already applied target: a
// transaction's commit (or abort) it knows, a WAL position it replayed beyond, a commit time it
// replayed beyond. A named restore point cannot be checked and is taken on trust.
func (s *server) requireBefore(ctx context.Context, t cluster.RecoveryTarget) error {
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return fmt.Errorf("replay %s: connect: %w", s.name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var past bool
	switch {
	case t.XID != "":
		var status *string
		err = conn.QueryRow(ctx, "SELECT pg_xact_status($1::xid8)", t.XID).Scan(&status)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "22023" { // "transaction ID ... is in the future"
			err = nil
		}
		past = status != nil && (*status == "committed" || *status == "aborted")
	case t.LSN != "":
		err = conn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() > $1::pg_lsn", t.LSN).Scan(&past)
	case !t.Time.IsZero():
		err = conn.QueryRow(ctx, "SELECT coalesce(pg_last_xact_replay_timestamp() > $1, false)", t.Time).Scan(&past)
	}
	if err != nil {
		return fmt.Errorf("replay %s: read replay position: %w", s.name, err)
	}
	if past {
		return fmt.Errorf("replay %s to %+v: %w", s.name, t, cluster.ErrPastTarget)
	}
	return nil
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
	if err := s.waitPromoted(ctx); err != nil {
		return fmt.Errorf("promote %s: %w", s.name, err)
	}
	s.recovery = nil // promoted: a restart is an ordinary start
	return nil
}

// waitHeld waits until a standby restarted with a target has replayed up to it and paused. If
// the server exits instead, the error quotes its log.
func (s *server) waitHeld(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		var state string
		if err := conn.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err != nil {
			select {
			case <-s.exited:
				return fmt.Errorf("postgres exited during recovery: %s", logtail.Last(s.Log(), 15))
			default:
				return fmt.Errorf("read replay state: %w", err)
			}
		}
		if state == "paused" {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited during recovery: %s", logtail.Last(s.Log(), 15))
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to reach its target: %w", s.name, ctx.Err())
		case <-t.C:
		}
	}
}
