package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrArchiveStalled means a server's WAL archive did not receive a segment in time: the WAL a
// restore needs is not where restores look for it.
var ErrArchiveStalled = errors.New("WAL archiving stalled")

// archivePoll is how often an archive's progress is looked at while waiting for it.
const archivePoll = 10 * time.Millisecond

// AwaitArchiver waits until the archiver of the server at dsn (named name in errors) has archived
// segment or a later one (pg_stat_archiver), polling over one connection: how Server.AwaitArchived
// works for a server whose own archive_command fills its archive. It fails with
// ErrArchiveStalled, naming the last segment archived and the last that failed, once wait is out.
func AwaitArchiver(ctx context.Context, name, dsn, segment string, wait time.Duration) error {
	var archived, failed string
	err := WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		deadline := time.Now().Add(wait)
		for {
			// Each query is a transaction of its own, so it sees fresh statistics.
			if err := conn.QueryRow(ctx, `SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, '')
				FROM pg_stat_archiver`).Scan(&archived, &failed); err != nil {
				return fmt.Errorf("read archiver state: %w", err)
			}
			// Segment names of one timeline sort in WAL order.
			if archived >= segment || time.Now().After(deadline) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(archivePoll):
			}
		}
	})
	if err != nil {
		return fmt.Errorf("wait for archiver of %s: %w", name, err)
	}
	if archived >= segment {
		return nil
	}
	msg := fmt.Sprintf("archiver of %s has not archived %s after %s (last archived %q", name, segment, wait, archived)
	if failed != "" {
		msg += fmt.Sprintf(", last failed %q", failed)
	}
	return fmt.Errorf("%w: %s)", ErrArchiveStalled, msg)
}

// AwaitArchiveFile waits until the WAL archive directory dir, on this machine, holds segment (or
// a later one of its timeline) as a complete file: how Server.AwaitArchived works for an archive
// that a WAL receiver (pg_receivewal) fills, which renames a segment from its .partial name only
// once it is whole.
func AwaitArchiveFile(ctx context.Context, name, dir, segment string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("look for %s in the WAL archive of %s: %w", segment, name, err)
		}
		for _, e := range entries {
			// Segment names of one timeline sort in WAL order.
			if IsWALSegment(e.Name()) && len(segment) >= 8 && e.Name()[:8] == segment[:8] && e.Name() >= segment {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: the WAL archive of %s has not received %s after %s", ErrArchiveStalled, name, segment, wait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s in the WAL archive of %s: %w", segment, name, ctx.Err())
		case <-time.After(archivePoll):
		}
	}
}
