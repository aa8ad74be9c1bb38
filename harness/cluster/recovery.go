package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// What every provider does the same way to bring a server back from a backup or hold a standby
// short of harm: the settings a recovery target becomes, the WAL range a backup's manifest
// names, and the SQL that pauses, checks and awaits a recovery. Only where the files are and how
// a server is started differ between providers.

// RecoverySettings translates a target into Postgres 15 recovery_target settings; where recovery
// gets its WAL from and what it does at the target are the caller's.
func RecoverySettings(t RecoveryTarget) (map[string]string, error) {
	set := map[string]string{}
	n := 0
	if t.XID != "" {
		set["recovery_target_xid"] = t.XID
		n++
	}
	if t.LSN != "" {
		set["recovery_target_lsn"] = t.LSN
		n++
	}
	if t.Name != "" {
		set["recovery_target_name"] = t.Name
		n++
	}
	if !t.Time.IsZero() {
		set["recovery_target_time"] = t.Time.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
		n++
	}
	if n > 1 {
		return nil, fmt.Errorf("recovery target sets %d of xid, lsn, name, time; set one", n)
	}
	if n == 1 {
		set["recovery_target_inclusive"] = strconv.FormatBool(t.Inclusive)
	}
	return set, nil
}

// ManifestWALRange reads the WAL range a backup needs from the contents of its backup_manifest.
func ManifestWALRange(manifest []byte) (start, end string, err error) {
	var m struct {
		WALRanges []struct {
			Start string `json:"Start-LSN"`
			End   string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return "", "", fmt.Errorf("decode backup manifest: %w", err)
	}
	if len(m.WALRanges) == 0 {
		return "", "", errors.New("decode backup manifest: no WAL range")
	}
	return m.WALRanges[0].Start, m.WALRanges[len(m.WALRanges)-1].End, nil
}

// walSegmentName matches archived WAL segment files (not .history, .backup or .partial files).
var walSegmentName = regexp.MustCompile(`^[0-9A-F]{24}$`)

// IsWALSegment reports whether a file name in a WAL archive is a segment, not a history,
// backup-label or partial file: what ArchivedWAL lists.
func IsWALSegment(name string) bool { return walSegmentName.MatchString(name) }

// PgBackRestSegment names the WAL segment a file of a pgBackRest archive holds
// (SEGMENT-CHECKSUM[.lz4]), or "" for anything else, a push still being written
// (.pgbackrest.tmp) included: a segment is listed once archive-get can fetch it.
func PgBackRestSegment(file string) string {
	if strings.HasSuffix(file, ".tmp") {
		return ""
	}
	if seg, _, _ := strings.Cut(file, "-"); IsWALSegment(seg) {
		return seg
	}
	return ""
}

// recoveryPoll is how often a wait on a recovering server looks again.
const recoveryPoll = 5 * time.Millisecond

// pauseChecks bounds how often PauseReplay looks for the pause to take effect.
const pauseChecks = 20

// PauseReplay stops a standby's WAL replay with pg_wal_replay_pause. Postgres honours a pause
// between two records, and not while it waits out the delay of a commit (it pauses right before
// applying that commit instead), so the pause is awaited briefly and then taken as given.
func PauseReplay(ctx context.Context, dsn string) error {
	return WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
			return err
		}
		for range pauseChecks {
			var state string
			if err := conn.QueryRow(ctx, "SELECT pg_get_wal_replay_pause_state()").Scan(&state); err != nil {
				return err
			}
			if state == "paused" {
				return nil
			}
		}
		return nil // waiting out a commit's delay: it stops before applying it
	})
}

// RequireBefore fails with ErrPastTarget when the standby at dsn already applied target: a
// transaction's commit (or abort) it knows, a WAL position it replayed beyond, a commit time it
// replayed beyond. A named restore point cannot be checked and is taken on trust.
func RequireBefore(ctx context.Context, dsn string, t RecoveryTarget) error {
	var past bool
	err := WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		switch {
		case t.XID != "":
			var status *string
			err := conn.QueryRow(ctx, "SELECT pg_xact_status($1::xid8)", t.XID).Scan(&status)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "22023" { // "transaction ID ... is in the future"
				err = nil
			}
			past = status != nil && (*status == "committed" || *status == "aborted")
			return err
		case t.LSN != "":
			return conn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() > $1::pg_lsn", t.LSN).Scan(&past)
		case !t.Time.IsZero():
			return conn.QueryRow(ctx, "SELECT coalesce(pg_last_xact_replay_timestamp() > $1, false)", t.Time).Scan(&past)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read replay position: %w", err)
	}
	if past {
		return fmt.Errorf("replay to %+v: %w", t, ErrPastTarget)
	}
	return nil
}

// AwaitPromoted waits until the server at dsn has ended recovery and promoted. A server accepts
// read-only connections ("ready") long before that. ended reports, each round, why the server
// is gone (nil while it runs): if recovery cannot reach its target the server exits, and that is
// the error.
func AwaitPromoted(ctx context.Context, dsn string, ended func() error) error {
	return awaitRecovery(ctx, dsn, ended, "SELECT NOT pg_is_in_recovery()")
}

// AwaitHeld waits until a standby restarted with a recovery target has replayed up to it and
// paused there (recovery_target_action=pause); ended is as for AwaitPromoted.
func AwaitHeld(ctx context.Context, dsn string, ended func() error) error {
	return awaitRecovery(ctx, dsn, ended, "SELECT pg_get_wal_replay_pause_state() = 'paused'")
}

// awaitRecovery polls done on the server until it answers true, the server ends, or ctx does. A
// failing connection or query is retried: the server may be starting, or exiting, which the next
// round tells.
func awaitRecovery(ctx context.Context, dsn string, ended func() error, done string) error {
	t := time.NewTicker(recoveryPoll)
	defer t.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		if err := ended(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for recovery: %w", ctx.Err())
		case <-t.C:
		}
		if conn == nil {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				continue
			}
			conn = c
		}
		var ok bool
		if err := conn.QueryRow(ctx, done).Scan(&ok); err != nil {
			_ = conn.Close(ctx)
			conn = nil
			continue
		}
		if ok {
			return nil
		}
	}
}

// SidecarSettings are the recovery settings of a sidecar recovering to t: the target, and
// promotion once there (what a sidecar is for). Where its WAL comes from is the provider's.
func SidecarSettings(t RecoveryTarget) (map[string]string, error) {
	set, err := RecoverySettings(t)
	if err != nil {
		return nil, err
	}
	set["recovery_target_action"] = "promote"
	return set, nil
}

// PrepareHold readies the standby at dsn to be restarted held at target (Standby.ReplayTo): it
// pauses replay, refuses (ErrPastTarget) a target already applied, and makes a restartpoint where
// the standby stands (at the last checkpoint record it replayed), so that the restart does not
// replay since its base backup. It returns the settings to restart it with: the target, no
// delay, and recovery_target_action=pause, so that it holds there, still a standby.
func PrepareHold(ctx context.Context, dsn string, target RecoveryTarget) (map[string]string, error) {
	set, err := RecoverySettings(target)
	if err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return nil, errors.New("a streaming standby needs a target to stop at")
	}
	if err := PauseReplay(ctx, dsn); err != nil {
		return nil, fmt.Errorf("pause replay: %w", err)
	}
	if err := RequireBefore(ctx, dsn, target); err != nil {
		return nil, err
	}
	if err := WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CHECKPOINT")
		return err
	}); err != nil {
		return nil, fmt.Errorf("make a restartpoint: %w", err)
	}
	set["recovery_target_action"] = "pause"
	set["recovery_min_apply_delay"] = "0"
	return set, nil
}

// Promote ends the recovery of the standby at dsn and waits until it is a writable server: one
// held at a target (held) ends recovery when replay resumes (recovery_target_action=pause says
// so), one that follows its primary is promoted. ended is as for AwaitPromoted.
func Promote(ctx context.Context, dsn string, held bool, ended func() error) error {
	query := "SELECT pg_promote(wait => false)"
	if held {
		query = "SELECT pg_wal_replay_resume()"
	}
	if err := WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, query)
		return err
	}); err != nil {
		return err
	}
	return AwaitPromoted(ctx, dsn, ended)
}

// AwaitTarget waits, after a start with recovery settings, until the server reached its target:
// a standby holds there (AwaitHeld), a sidecar promoted (AwaitPromoted). name is the server's,
// for the error.
func AwaitTarget(ctx context.Context, name string, role Role, dsn string, ended func() error) error {
	if role == RoleStandby {
		if err := AwaitHeld(ctx, dsn, ended); err != nil {
			return fmt.Errorf("replay %s to its target: %w", name, err)
		}
		return nil
	}
	if err := AwaitPromoted(ctx, dsn, ended); err != nil {
		return fmt.Errorf("recover %s: %w", name, err)
	}
	return nil
}

// PgBackRestRecovery are the `pgbackrest restore` options of a sidecar recovering to t and
// promoting there (--type, --target, --target-exclusive, --target-action); replaying everything
// archived is --type=default, which takes no action.
func PgBackRestRecovery(t RecoveryTarget) []string {
	var args []string
	switch {
	case t.XID != "":
		args = []string{"--type=xid", "--target=" + t.XID}
	case t.LSN != "":
		args = []string{"--type=lsn", "--target=" + t.LSN}
	case t.Name != "":
		return []string{"--type=name", "--target=" + t.Name, "--target-action=promote"}
	case !t.Time.IsZero():
		args = []string{"--type=time", "--target=" + t.Time.UTC().Format("2006-01-02 15:04:05.999999") + "+00"}
	default:
		return []string{"--type=default"}
	}
	if !t.Inclusive {
		args = append(args, "--target-exclusive")
	}
	return append(args, "--target-action=promote")
}

// PrimaryRole tells the catalog and the shards from a run's other servers by their names
// ("catalog", "shard-N"), for a process attaching to a run another owns.
func PrimaryRole(name string) (Role, int, bool) {
	if name == "catalog" {
		return RoleCatalog, -1, true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "shard-"))
	if !strings.HasPrefix(name, "shard-") || err != nil {
		return "", 0, false
	}
	return RoleShard, n, true
}
