package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// BaseBackup runs pg_basebackup in the tools container against the server, over the run's
// network as a backup host would: plain format, the WAL the copy needs streamed along, after a
// fast checkpoint, into the volume's backups.
func (s *server) BaseBackup(ctx context.Context, label string) (cluster.Backup, error) {
	if s.archive == "" {
		return cluster.Backup{}, fmt.Errorf("back up %s: it has no WAL archive to recover a backup with", s.name)
	}
	if s.pgBackRest() {
		return s.backupPgBackRest(ctx, label)
	}
	id := s.name + "-" + s.c.next()
	dir := backupRoot + "/" + id
	if err := s.c.pgBasebackup(ctx, s, dir, label); err != nil {
		return cluster.Backup{}, fmt.Errorf("back up %s: %w", s.name, err)
	}
	manifest, err := s.c.toolOutput(ctx, asPostgres, `cat "$1"/backup_manifest`, dir)
	if err != nil {
		return cluster.Backup{}, fmt.Errorf("back up %s: read its manifest: %w", s.name, err)
	}
	start, end, err := cluster.ManifestWALRange([]byte(manifest))
	if err != nil {
		return cluster.Backup{}, fmt.Errorf("back up %s: %w", s.name, err)
	}
	return cluster.Backup{ID: id, Server: s.name, Label: label, Location: dir, Engine: cluster.EngineBaseBackup,
		StartLSN: start, EndLSN: end, TakenAt: time.Now().UTC()}, nil
}

// pgBasebackup copies the server of into dir of the volume: what base backups and standbys are
// made with; extra holds the options one of them needs besides.
func (c *containers) pgBasebackup(ctx context.Context, of *server, dir, label string, extra ...string) error {
	args := []string{"-h", of.name, "-p", "5432", "-U", "postgres", "-D", dir, "-Fp", "-X", "stream", "-c", "fast", "-l", label, "--no-password"}
	args = append(args, extra...)
	if !c.spec.Durable {
		args = append(args, "--no-sync")
	}
	if err := c.tool(ctx, asPostgres, nil, `pg_basebackup "$@"`, args...); err != nil {
		return fmt.Errorf("run pg_basebackup: %w", err)
	}
	return nil
}

// VerifyBackup runs pg_verifybackup on a backup of this server, in the tools container.
func (s *server) VerifyBackup(ctx context.Context, b cluster.Backup) error {
	if b.Server != s.name {
		return fmt.Errorf("verify backup %s: it is of %s, not %s", b.ID, b.Server, s.name)
	}
	if b.Engine == cluster.EnginePgBackRest {
		if _, err := s.runPgBackRest(ctx, "verify"); err != nil {
			return fmt.Errorf("verify backup %s: %w", b.ID, err)
		}
		return nil
	}
	if err := s.c.tool(ctx, asPostgres, nil, `pg_verifybackup --quiet "$1"`, b.Location); err != nil {
		return fmt.Errorf("verify backup %s: %w", b.ID, err)
	}
	return nil
}

// ArchivedWAL lists the segment files in the server's WAL archive.
func (s *server) ArchivedWAL(ctx context.Context) ([]string, error) {
	if s.archive == "" {
		return nil, nil
	}
	if s.pgBackRest() {
		return s.archivedPgBackRest(ctx)
	}
	out, err := s.c.toolOutput(ctx, asPostgres, `ls -1 "$1"`, s.archive)
	if err != nil {
		return nil, fmt.Errorf("list WAL archive of %s: %w", s.name, err)
	}
	var segs []string
	for name := range strings.FieldsSeq(out) {
		if cluster.IsWALSegment(name) {
			segs = append(segs, name)
		}
	}
	slices.Sort(segs) // name order is WAL order within a timeline
	return segs, nil
}

// VerifyWAL implements cluster.Server with pg_waldump in the tools container; pgBackRest's own
// verify checks its archive.
func (s *server) VerifyWAL(ctx context.Context, from, to string) error {
	if s.archive == "" || s.pgBackRest() {
		return nil
	}
	if err := s.c.tool(ctx, asPostgres, nil, `pg_waldump --quiet --path "$1" --start "$2" --end "$3"`, s.archive, from, to); err != nil {
		return fmt.Errorf("read WAL of %s from %s to %s: %w", s.name, from, to, err)
	}
	return nil
}

// DumpWAL implements cluster.Server with pg_waldump in the tools container, its output
// streamed to w.
func (s *server) DumpWAL(ctx context.Context, from, to string, w io.Writer) error {
	if s.archive == "" {
		return fmt.Errorf("dump WAL of %s: it has no WAL archive of pgdrill's own to read", s.name)
	}
	if s.pgBackRest() {
		return s.dumpPgBackRestWAL(ctx, from, to, w)
	}
	if err := s.c.tool(ctx, asPostgres, w, `pg_waldump --path "$1" --start "$2" --end "$3"`, s.archive, from, to); err != nil {
		return fmt.Errorf("dump WAL of %s from %s to %s: %w", s.name, from, to, err)
	}
	return nil
}

// Files implements cluster.Cluster: the run's archives and backups are in its volume, reached
// through the tools container as the servers' account.
func (c *containers) Files() cluster.Files { return volumeFiles{c} }

// volumeFiles is cluster.Files in the run's volume.
type volumeFiles struct{ c *containers }

func (v volumeFiles) Size(ctx context.Context, path string) (int64, error) {
	out, err := v.c.toolOutput(ctx, asPostgres, `test -f "$1" && stat -c %s "$1"`, path)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", path, err)
	}
	return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
}

func (v volumeFiles) Largest(ctx context.Context, dir string) (string, int64, error) {
	out, err := v.c.toolOutput(ctx, asPostgres, `cd "$1" && find . -type f -printf '%s %P\n' | sort -n | tail -1`, dir)
	if err != nil {
		return "", 0, fmt.Errorf("look for the largest file of %s: %w", dir, err)
	}
	size, rel, ok := strings.Cut(strings.TrimSpace(out), " ")
	if !ok {
		return "", 0, nil
	}
	n, err := strconv.ParseInt(size, 10, 64)
	return rel, n, err
}

func (v volumeFiles) TempDir(ctx context.Context, parent string) (string, error) {
	out, err := v.c.toolOutput(ctx, asPostgres, `mktemp -d "$1"/.pgdrill-fault-XXXXXX`, parent)
	if err != nil {
		return "", fmt.Errorf("make a directory in %s: %w", parent, err)
	}
	return strings.TrimSpace(out), nil
}

func (v volumeFiles) Copy(ctx context.Context, from, to string) error {
	return v.c.tool(ctx, asPostgres, nil, `cp -p "$1" "$2"`, from, to)
}

func (v volumeFiles) Same(ctx context.Context, a, b string) (bool, error) {
	out, err := v.c.toolOutput(ctx, asPostgres, `if cmp -s "$1" "$2"; then echo same; elif [ $? = 1 ]; then echo differ; else exit 2; fi`, a, b)
	if err != nil {
		return false, fmt.Errorf("compare %s with %s: %w", a, b, err)
	}
	return strings.TrimSpace(out) == "same", nil
}

func (v volumeFiles) Overwrite(ctx context.Context, path string, offset int64, data []byte) error {
	return v.c.toolInput(ctx, asPostgres, bytes.NewReader(data), `dd of="$1" bs=1 seek="$2" conv=notrunc,fsync status=none`, path, strconv.FormatInt(offset, 10))
}

func (v volumeFiles) Truncate(ctx context.Context, path string, size int64) error {
	return v.c.tool(ctx, asPostgres, nil, `truncate -s "$2" "$1"`, path, strconv.FormatInt(size, 10))
}

func (v volumeFiles) Remove(ctx context.Context, path string) error {
	return v.c.tool(ctx, asPostgres, nil, `rm -rf "$1"`, path)
}

// AwaitArchived implements cluster.Server: the server's archiver fills its archive.
func (s *server) AwaitArchived(ctx context.Context, segment string, wait time.Duration) error {
	return cluster.AwaitArchiver(ctx, s.name, s.DSN(), segment, wait)
}
