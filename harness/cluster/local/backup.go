package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/logtail"
)

// BaseBackup runs pg_basebackup (plain format, WAL streamed into the backup, fast checkpoint) as
// the run user into the run's backups directory; on a shard protected by pgBackRest, a full
// pgBackRest backup into its stanza.
func (s *server) BaseBackup(ctx context.Context, label string) (cluster.Backup, error) {
	if s.pgBackRest() {
		return s.backupPgBackRest(ctx, label)
	}
	c := s.c
	c.mu.Lock()
	c.seq++
	id := s.name + "-" + strconv.Itoa(c.seq)
	c.mu.Unlock()
	parent := filepath.Join(c.dir, "backups")
	if err := c.p.user.mkdir(parent, 0o700); err != nil {
		return cluster.Backup{}, err
	}
	dir := filepath.Join(parent, id)
	if err := c.pgBasebackup(ctx, s, dir, label); err != nil {
		return cluster.Backup{}, fmt.Errorf("back up %s: %w", s.name, err)
	}
	start, end, err := manifestWALRange(dir)
	if err != nil {
		return cluster.Backup{}, err
	}
	return cluster.Backup{ID: id, Server: s.name, Label: label, Location: dir, Engine: cluster.EngineBaseBackup,
		StartLSN: start, EndLSN: end, TakenAt: time.Now().UTC()}, nil
}

// pgBasebackup copies the server of into dir with pg_basebackup, run as the run user: plain
// format, the WAL the copy needs streamed along, after a fast checkpoint, and without syncing to
// disk unless the run is durable. Base backups and standbys are both made this way; extra holds
// the options one of them needs besides (a standby has no use for a manifest).
func (c *localCluster) pgBasebackup(ctx context.Context, of *server, dir, label string, extra ...string) error {
	args := append(of.connArgs(), "-D", dir, "-Fp", "-X", "stream", "-c", "fast", "-l", label, "--no-password")
	args = append(args, extra...)
	if !c.spec.Durable {
		args = append(args, "--no-sync")
	}
	cmd := c.p.user.command(exec.CommandContext(ctx, c.p.bins.Path("pg_basebackup"), args...))
	cmd.Env = of.clientEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("run pg_basebackup: %w: %s", err, logtail.Last(string(out), 10))
	}
	return nil
}

// manifestWALRange reads the WAL range a backup needs from its backup_manifest.
func manifestWALRange(dir string) (start, end string, err error) {
	data, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		return "", "", fmt.Errorf("read backup manifest: %w", err)
	}
	if start, end, err = cluster.ManifestWALRange(data); err != nil {
		return "", "", fmt.Errorf("backup %s: %w", dir, err)
	}
	return start, end, nil
}

// PrepareSidecar copies a backup into a new server directory, points its restore_command at the
// backed-up server's WAL archive and writes recovery.signal; Start then recovers it. If the
// archive runs out before the target (a missing segment, say), Postgres stops with "recovery
// ended before configured recovery target was reached", and Start's error quotes that log.
func (c *localCluster) PrepareSidecar(ctx context.Context, spec cluster.SidecarSpec) (cluster.Server, error) {
	origin := c.find(spec.From.Server)
	if origin == nil || origin.archive == "" {
		return nil, fmt.Errorf("prepare sidecar: backup %s is of server %q, which has no WAL archive in run %s",
			spec.From.ID, spec.From.Server, c.runID)
	}
	recovery, err := cluster.SidecarSettings(spec.Target)
	if err != nil {
		return nil, fmt.Errorf("prepare sidecar: %w", err)
	}
	recovery["restore_command"] = origin.restoreCommand()
	c.mu.Lock()
	c.seq++
	name := "sidecar-" + spec.From.Server + "-" + strconv.Itoa(c.seq)
	s := c.newServer(name, cluster.RoleSidecar, origin.index, false)
	s.upstream, s.recovery, s.superuser, s.database = origin, recovery, origin.superuser, origin.database
	c.sidecars = append(c.sidecars, s)
	c.mu.Unlock()
	if err := c.p.user.mkdir(s.dir, 0o700); err != nil {
		return s, err
	}
	if spec.From.Engine == cluster.EnginePgBackRest {
		return s, c.restorePgBackRest(ctx, origin, s, spec)
	}
	if c.spec.SidecarDisks {
		if err := s.mountDisk(); err != nil {
			return s, fmt.Errorf("prepare sidecar: %w", err)
		}
	}
	if err := copyTree(ctx, spec.From.Location, s.dataDir()); err != nil {
		return s, err
	}
	if origin.remote != nil {
		if err := c.adoptConfig(s.dataDir()); err != nil {
			return s, fmt.Errorf("prepare sidecar: %w", err)
		}
	}
	signal := filepath.Join(s.dataDir(), "recovery.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		return s, fmt.Errorf("write recovery.signal: %w", err)
	}
	return s, c.p.user.own(signal)
}

// endedInRecovery says why the server's process ended during a recovery, quoting its log; nil
// while it runs.
func (s *server) endedInRecovery() error {
	select {
	case <-s.exited:
		log := logtail.Last(s.Log(), 15)
		return fmt.Errorf("postgres %w during recovery: %s", s.exitCause(log), log)
	default:
		return nil
	}
}

// restoreCommand fetches WAL segments of s from its archive.
func (s *server) restoreCommand() string {
	if s.pgBackRest() {
		return s.c.pgBackRestCommand(s, "archive-get", "%f", `"%p"`)
	}
	return fmt.Sprintf("cp %s/%%f %%p", s.archive)
}

// VerifyBackup runs pg_verifybackup on a backup of this server.
func (s *server) VerifyBackup(ctx context.Context, b cluster.Backup) error {
	if b.Server != s.name {
		return fmt.Errorf("verify backup %s: it is of %s, not %s", b.ID, b.Server, s.name)
	}
	if b.Engine == cluster.EnginePgBackRest {
		if _, err := s.c.runPgBackRest(ctx, s, "verify"); err != nil {
			return fmt.Errorf("verify backup %s: %w", b.ID, err)
		}
		return nil
	}
	cmd := s.c.p.user.command(exec.CommandContext(ctx, s.c.p.bins.Path("pg_verifybackup"), "--quiet", b.Location))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("verify backup %s: %w: %s", b.ID, err, logtail.Last(string(out), 10))
	}
	return nil
}

// VerifyWAL implements cluster.Server.
func (s *server) VerifyWAL(ctx context.Context, from, to string) error {
	if s.archive == "" || s.pgBackRest() {
		return nil
	}
	cmd := exec.CommandContext(ctx, s.c.p.bins.Path("pg_waldump"), "--quiet", "--path", s.archive, "--start", from, "--end", to)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("read WAL of %s from %s to %s: %w: %s", s.name, from, to, err, logtail.Last(string(out), 5))
	}
	return nil
}

// DumpWAL implements cluster.Server.
func (s *server) DumpWAL(ctx context.Context, from, to string, w io.Writer) error {
	if s.archive == "" {
		return fmt.Errorf("dump WAL of %s: it has no WAL archive of pgdrill's own to read", s.name)
	}
	dir := s.archive
	if s.pgBackRest() {
		fetched, err := s.fetchPgBackRestWAL(ctx, from, to)
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(fetched) }()
		dir = fetched
	}
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, s.c.p.bins.Path("pg_waldump"), "--path", dir, "--start", from, "--end", to)
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dump WAL of %s from %s to %s: %w: %s", s.name, from, to, err, logtail.Last(stderr.String(), 5))
	}
	return nil
}

// ArchivedWAL lists the segment files in the server's WAL archive.
func (s *server) ArchivedWAL(context.Context) ([]string, error) {
	if s.archive == "" {
		return nil, nil
	}
	if s.pgBackRest() {
		return s.archivedPgBackRest()
	}
	entries, err := os.ReadDir(s.archive)
	if err != nil {
		return nil, fmt.Errorf("list WAL archive of %s: %w", s.name, err)
	}
	var out []string
	for _, e := range entries {
		if cluster.IsWALSegment(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil // os.ReadDir sorts by name, which is WAL order within a timeline
}

// AwaitArchived implements cluster.Server: the server's archiver fills its archive, or, for a
// server pgdrill did not start, the WAL receiver streaming from it.
func (s *server) AwaitArchived(ctx context.Context, segment string, wait time.Duration) error {
	if s.remote != nil {
		err := cluster.AwaitArchiveFile(ctx, s.name, s.archive, segment, wait)
		if errors.Is(err, cluster.ErrArchiveStalled) {
			// Why the receiver stopped receiving is in its own output, which only this host has.
			return fmt.Errorf("%w; %s", err, s.receiverState())
		}
		return err
	}
	return cluster.AwaitArchiver(ctx, s.name, s.DSN(), segment, wait)
}

// receiverState says whether the server's WAL receiver still runs (where this handle started
// it) and quotes the end of its output.
func (s *server) receiverState() string {
	state := "its WAL receiver"
	s.c.mu.Lock()
	r := s.remote.receiver
	s.c.mu.Unlock()
	if r != nil {
		select {
		case <-r.exited:
			state += " has exited"
		default:
			state += " still runs"
		}
	}
	return state + ", its output ending: " + logtail.Last(readFile(filepath.Join(s.dir, "receivewal.log")), 10)
}
