package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// pgBackRest in the run's volume: one configuration and one repository for the run, a stanza
// per shard. A shard's archive_command pushes with it from the shard's own container; backups,
// restores, verification and archive-get run in the tools container, which reaches each shard's
// data directory in the volume and its server through a socket directory there. The image must
// carry pgbackrest (pgdrill's own does).
const (
	pgBackRestRoot = mountPoint + "/pgbackrest"
	pgBackRestConf = pgBackRestRoot + "/pgbackrest.conf"
	pgBackRestRepo = pgBackRestRoot + "/repo"
	socketRoot     = mountPoint + "/sock"
)

// pgBackRest reports whether s is a shard protected by pgBackRest (the catalog keeps the plain
// archive: a stanza per shard is what a restore needs).
func (s *server) pgBackRest() bool {
	return s.role == cluster.RoleShard && s.c.spec.Engine == cluster.EnginePgBackRest
}

// socketDir is where a server protected by pgBackRest also listens on a unix socket, for the
// tools container's pgbackrest to reach it; "" for the others.
func (s *server) socketDir() string {
	if !s.pgBackRest() {
		return ""
	}
	return socketRoot + "/" + s.name
}

// writePgBackRestConf writes the run's own configuration (no host's /etc/pgbackrest.conf is
// read): lz4 (gzip, the default, is the bottleneck of every backup it compresses) and a stanza
// per shard.
func (c *containers) writePgBackRestConf(ctx context.Context, shards []*server) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by pgdrill for run %s.\n[global]\nrepo1-path=%s\nlog-path=%[3]s/log\nlock-path=%[3]s/lock\nspool-path=%[3]s/spool\n",
		c.runID, pgBackRestRepo, pgBackRestRoot)
	b.WriteString("compress-type=lz4\nprocess-max=2\nstart-fast=y\nlog-level-console=warn\nlog-level-stderr=off\n")
	dirs := []string{pgBackRestRepo, pgBackRestRoot + "/log", pgBackRestRoot + "/lock", pgBackRestRoot + "/spool"}
	for _, s := range shards {
		fmt.Fprintf(&b, "\n[%s]\npg1-path=%s\npg1-socket-path=%s\npg1-user=postgres\n", s.name, s.dataDir(), s.socketDir())
		dirs = append(dirs, s.socketDir())
	}
	script := `conf="$1"; shift; mkdir -p "$@" && cat > "$conf"`
	if err := c.toolInput(ctx, asPostgres, strings.NewReader(b.String()), script, append([]string{pgBackRestConf}, dirs...)...); err != nil {
		return fmt.Errorf("write %s: %w", pgBackRestConf, err)
	}
	return nil
}

// pgBackRestCommand is a pgbackrest command line for s's stanza, as Postgres runs it (archive
// and restore commands).
func (s *server) pgBackRestCommand(args ...string) string {
	return strings.Join(append([]string{"pgbackrest", "--config=" + pgBackRestConf, "--stanza=" + s.name}, args...), " ")
}

// runPgBackRest runs pgbackrest for s's stanza in the tools container and returns its standard
// output.
func (s *server) runPgBackRest(ctx context.Context, args ...string) (string, error) {
	out, err := s.c.toolOutput(ctx, asPostgres, `pgbackrest "$@"`, append([]string{"--config=" + pgBackRestConf, "--stanza=" + s.name}, args...)...)
	if err != nil {
		return out, fmt.Errorf("run pgbackrest %s for %s: %w", strings.Join(args, " "), s.name, err)
	}
	return out, nil
}

// backupPgBackRest takes a full backup into s's stanza and reads its set label and WAL range
// back from `pgbackrest info`.
func (s *server) backupPgBackRest(ctx context.Context, label string) (cluster.Backup, error) {
	id := s.name + "-" + s.c.next()
	if _, err := s.runPgBackRest(ctx, "--type=full", "--annotation=label="+label, "backup"); err != nil {
		return cluster.Backup{}, fmt.Errorf("back up %s: %w", s.name, err)
	}
	out, err := s.runPgBackRest(ctx, "--output=json", "info")
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
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return cluster.Backup{}, fmt.Errorf("decode pgbackrest info of %s: %w", s.name, err)
	}
	if len(info) != 1 || len(info[0].Backup) == 0 {
		return cluster.Backup{}, fmt.Errorf("back up %s: pgbackrest info lists no backup", s.name)
	}
	last := info[0].Backup[len(info[0].Backup)-1]
	return cluster.Backup{ID: id, Server: s.name, Label: label, Engine: cluster.EnginePgBackRest, Set: last.Label,
		Location: pgBackRestRepo + "/backup/" + s.name + "/" + last.Label,
		StartLSN: last.LSN.Start, EndLSN: last.LSN.Stop, TakenAt: time.Now().UTC()}, nil
}

// restorePgBackRest restores a backup set of origin into the sidecar's data directory with the
// target as pgBackRest's own --type/--target options, which write the recovery settings (an
// archive-get restore_command) and recovery.signal; the sidecar's command line says the same.
func (c *containers) restorePgBackRest(ctx context.Context, origin, sidecar *server, spec cluster.SidecarSpec) error {
	if err := c.tool(ctx, asPostgres, nil, `mkdir -m 700 "$1"`, sidecar.dataDir()); err != nil {
		return fmt.Errorf("prepare sidecar of %s: %w", origin.name, err)
	}
	args := append([]string{"--set=" + spec.From.Set, "--pg1-path=" + sidecar.dataDir()}, cluster.PgBackRestRecovery(spec.Target)...)
	if _, err := origin.runPgBackRest(ctx, append(args, "restore")...); err != nil {
		return fmt.Errorf("prepare sidecar of %s: %w", origin.name, err)
	}
	return nil
}

// archivedPgBackRest lists the WAL segments in s's stanza: files named after the segment, a
// checksum and the compression suffix, one directory per 4 GiB of WAL.
func (s *server) archivedPgBackRest(ctx context.Context) ([]string, error) {
	out, err := s.c.toolOutput(ctx, asPostgres, `ls -1 "$1"/*/*/ 2>/dev/null || true`, s.archive)
	if err != nil {
		return nil, fmt.Errorf("list WAL archive of %s: %w", s.name, err)
	}
	var segs []string
	for name := range strings.FieldsSeq(out) {
		if seg := cluster.PgBackRestSegment(name); seg != "" {
			segs = append(segs, seg)
		}
	}
	slices.Sort(segs)
	return slices.Compact(segs), nil
}

// dumpPgBackRestWAL gets the segments of s's stanza holding from..to out of the repository
// (archive-get, which decompresses them) into a directory of their own in the volume, runs
// pg_waldump on it, and removes it. The server names the segments (pg_walfile_name), so it must
// be running.
func (s *server) dumpPgBackRestWAL(ctx context.Context, from, to string, w io.Writer) error {
	var first, last string
	if err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn), pg_walfile_name($2::pg_lsn)", from, to).Scan(&first, &last)
	}); err != nil {
		return fmt.Errorf("dump WAL of %s: name its segments: %w", s.name, err)
	}
	archived, err := s.archivedPgBackRest(ctx)
	if err != nil {
		return err
	}
	var wanted []string
	for _, name := range archived {
		if name[8:] >= first[8:] && name[8:] <= last[8:] { // after its timeline, a name orders the WAL
			wanted = append(wanted, name)
		}
	}
	script := `conf="$1" stanza="$2" from="$3" to="$4"; shift 4
dir=$(mktemp -d ` + mountPoint + `/wal-XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
for seg in "$@"; do pgbackrest --config="$conf" --stanza="$stanza" archive-get "$seg" "$dir/$seg" || exit 1; done
pg_waldump --path "$dir" --start "$from" --end "$to"`
	args := append([]string{pgBackRestConf, s.name, from, to}, wanted...)
	if err := s.c.tool(ctx, asPostgres, w, script, args...); err != nil {
		return fmt.Errorf("dump WAL of %s from %s to %s: %w", s.name, from, to, err)
	}
	return nil
}
