package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/logtail"
)

// ErrNoPgBackRest means a cluster asked for the pgBackRest engine where it is not installed.
var ErrNoPgBackRest = errors.New("pgbackrest is not installed; install it with `apt-get install pgbackrest`")

// pgBackRest reports whether s is a shard protected by pgBackRest (the catalog keeps the plain
// archive: a stanza per shard is what a restore needs).
func (s *server) pgBackRest() bool {
	return s.role == cluster.RoleShard && s.c.spec.Engine == cluster.EnginePgBackRest
}

// pgBackRestDir holds the run's pgBackRest configuration, repository, logs, locks and spool.
func (c *localCluster) pgBackRestDir() string { return filepath.Join(c.home, "pgbackrest") }

func (c *localCluster) pgBackRestConf() string {
	return filepath.Join(c.pgBackRestDir(), "pgbackrest.conf")
}

// writePgBackRestConf writes the run's own configuration file (the host's /etc/pgbackrest.conf
// is never read): one repository under the run's directory, lz4 (gzip, the default, is the
// bottleneck of every backup it compresses), and a stanza per shard.
func (c *localCluster) writePgBackRestConf(shards int) error {
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		return fmt.Errorf("create cluster: %w", ErrNoPgBackRest)
	}
	dir := c.pgBackRestDir()
	for _, d := range []string{dir, filepath.Join(dir, "repo"), filepath.Join(dir, "log"), filepath.Join(dir, "lock"), filepath.Join(dir, "spool")} {
		if err := c.p.user.mkdir(d, 0o700); err != nil {
			return err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by pgdrill for run %s.\n[global]\nrepo1-path=%s\nlog-path=%s\nlock-path=%s\nspool-path=%s\n",
		c.runID, filepath.Join(dir, "repo"), filepath.Join(dir, "log"), filepath.Join(dir, "lock"), filepath.Join(dir, "spool"))
	b.WriteString("compress-type=lz4\nprocess-max=2\nstart-fast=y\nlog-level-console=warn\nlog-level-stderr=off\n")
	for i := range shards {
		name := "shard-" + strconv.Itoa(i)
		fmt.Fprintf(&b, "\n[%s]\npg1-path=%s\npg1-socket-path=%s\npg1-user=postgres\n",
			name, filepath.Join(c.home, name, "data"), filepath.Join(c.home, name))
	}
	path := c.pgBackRestConf()
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return c.p.user.own(path)
}

// pgBackRestCommand is a pgbackrest command line for s's stanza, as Postgres runs it (archive
// and restore commands).
func (c *localCluster) pgBackRestCommand(s *server, args ...string) string {
	return strings.Join(append([]string{"pgbackrest", "--config=" + c.pgBackRestConf(), "--stanza=" + s.name}, args...), " ")
}

// runPgBackRest runs pgbackrest for s's stanza as the run user and returns its standard
// output. s's current port goes in the environment, where pgBackRest ignores it for commands
// that do not connect (on the command line it would be an error).
func (c *localCluster) runPgBackRest(ctx context.Context, s *server, args ...string) ([]byte, error) {
	full := append([]string{"--config=" + c.pgBackRestConf(), "--stanza=" + s.name}, args...)
	cmd := c.p.user.command(exec.CommandContext(ctx, "pgbackrest", full...))
	cmd.Env = append(os.Environ(), "PGBACKREST_PG1_PORT="+strconv.Itoa(s.Info().Port))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("run pgbackrest %s for %s: %w: %s", strings.Join(args, " "), s.name, err,
			logtail.Last(stderr.String()+string(out), 10))
	}
	return out, nil
}

// backupPgBackRest takes a full backup into s's stanza and reads its set label and WAL range
// back from `pgbackrest info`.
func (s *server) backupPgBackRest(ctx context.Context, label string) (cluster.Backup, error) {
	c := s.c
	c.mu.Lock()
	c.seq++
	id := s.name + "-" + strconv.Itoa(c.seq)
	c.mu.Unlock()
	if _, err := c.runPgBackRest(ctx, s, "--type=full", "--annotation=label="+label, "backup"); err != nil {
		return cluster.Backup{}, fmt.Errorf("back up %s: %w", s.name, err)
	}
	out, err := c.runPgBackRest(ctx, s, "--output=json", "info")
	if err != nil {
		return cluster.Backup{}, fmt.Errorf("back up %s: %w", s.name, err)
	}
	var info []struct {
		Backup []struct {
			Label string `json:"label"`
			LSN   struct {
				Start string `json:"start"`
				Stop  string `json:"stop"`
			} `json:"lsn"`
		} `json:"backup"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return cluster.Backup{}, fmt.Errorf("decode pgbackrest info of %s: %w", s.name, err)
	}
	if len(info) != 1 || len(info[0].Backup) == 0 {
		return cluster.Backup{}, fmt.Errorf("back up %s: pgbackrest info lists no backup", s.name)
	}
	last := info[0].Backup[len(info[0].Backup)-1]
	return cluster.Backup{ID: id, Server: s.name, Label: label, Engine: cluster.EnginePgBackRest, Set: last.Label,
		Location: filepath.Join(c.pgBackRestDir(), "repo", "backup", s.name, last.Label),
		StartLSN: last.LSN.Start, EndLSN: last.LSN.Stop, TakenAt: time.Now().UTC()}, nil
}

// restorePgBackRest restores a pgBackRest backup set of origin into the sidecar's data
// directory with the target as pgBackRest's own --type/--target options, which write the
// recovery settings (an archive-get restore_command) into postgresql.auto.conf and
// recovery.signal; the sidecar's pgdrill.conf says the same.
func (c *localCluster) restorePgBackRest(ctx context.Context, origin, sidecar *server, spec cluster.SidecarSpec) error {
	if err := c.p.user.mkdir(sidecar.dataDir(), 0o700); err != nil {
		return err
	}
	args := append([]string{"--set=" + spec.From.Set, "--pg1-path=" + sidecar.dataDir()}, cluster.PgBackRestRecovery(spec.Target)...)
	if _, err := c.runPgBackRest(ctx, origin, append(args, "restore")...); err != nil {
		return fmt.Errorf("prepare sidecar of %s: %w", origin.name, err)
	}
	return nil
}

// archivedPgBackRest lists the WAL segments in s's stanza: files named after the segment, a
// checksum and the compression suffix, one directory per 4 GiB of WAL.
func (s *server) archivedPgBackRest() ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(s.archive, "*", "*", "*"))
	if err != nil {
		return nil, fmt.Errorf("list WAL archive of %s: %w", s.name, err)
	}
	var out []string
	for _, p := range paths {
		if seg := cluster.PgBackRestSegment(filepath.Base(p)); seg != "" {
			out = append(out, seg)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// fetchPgBackRestWAL gets the segments of s's stanza holding from..to (WAL positions) out of the
// pgBackRest repository (archive-get, which decompresses them) into a directory of their own,
// whose path it returns, for pg_waldump to read; the caller removes it. The server names the
// segments (pg_walfile_name), so it must be running.
func (s *server) fetchPgBackRestWAL(ctx context.Context, from, to string) (string, error) {
	var first, last string
	if err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn), pg_walfile_name($2::pg_lsn)", from, to).Scan(&first, &last)
	}); err != nil {
		return "", fmt.Errorf("dump WAL of %s: name its segments: %w", s.name, err)
	}
	archived, err := s.archivedPgBackRest()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(s.dir, "wal-")
	if err != nil {
		return "", fmt.Errorf("dump WAL of %s: %w", s.name, err)
	}
	if err := s.c.p.user.own(dir); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	for _, name := range archived {
		if name[8:] < first[8:] || name[8:] > last[8:] { // after its timeline, a name orders the WAL
			continue
		}
		if _, err := s.c.runPgBackRest(ctx, s, "archive-get", name, filepath.Join(dir, name)); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("dump WAL of %s: %w", s.name, err)
		}
	}
	return dir, nil
}
