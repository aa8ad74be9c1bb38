package container

import (
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
	id := s.name + "-" + strconv.Itoa(s.c.next())
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

// VerifyWAL implements cluster.Server with pg_waldump in the tools container.
func (s *server) VerifyWAL(ctx context.Context, from, to string) error {
	if s.archive == "" {
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
	if err := s.c.tool(ctx, asPostgres, w, `pg_waldump --path "$1" --start "$2" --end "$3"`, s.archive, from, to); err != nil {
		return fmt.Errorf("dump WAL of %s from %s to %s: %w", s.name, from, to, err)
	}
	return nil
}
