package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// archiveWait bounds how long VerifyChain waits for the archiver to catch up.
const archiveWait = time.Minute

// ChainReport says whether one shard's restore chain is whole: its base backup verifies, and
// every WAL segment from the backup's start to the segment just switched away from is archived.
type ChainReport struct {
	Shard  string `json:"shard"`
	Backup string `json:"backup"`
	// First and Last name the segments the chain must hold, inclusive.
	First string `json:"first_segment"`
	Last  string `json:"last_segment"`
	// Missing names every segment of First..Last absent from the archive.
	Missing []string `json:"missing,omitempty"`
	// BackupProblem is pg_verifybackup's complaint; empty when the backup verified.
	BackupProblem string `json:"backup_problem,omitempty"`
	// ArchiveProblem says why the archiver did not catch up; empty when it did.
	ArchiveProblem string `json:"archive_problem,omitempty"`
	// WALProblem says where the archive's records stop reading (a corrupt segment); empty when
	// every record from the backup's start to the present reads.
	WALProblem string `json:"wal_problem,omitempty"`
}

// Whole reports whether a restore from this chain can reach the present.
func (r ChainReport) Whole() bool {
	return len(r.Missing) == 0 && r.BackupProblem == "" && r.ArchiveProblem == "" && r.WALProblem == ""
}

// Problem describes what is broken, in words for a report; empty when the chain is whole.
func (r ChainReport) Problem() string {
	var p []string
	if len(r.Missing) > 0 {
		p = append(p, fmt.Sprintf("WAL archive is missing %d segment(s): %s", len(r.Missing), strings.Join(r.Missing, ", ")))
	}
	if r.ArchiveProblem != "" {
		p = append(p, r.ArchiveProblem)
	}
	if r.WALProblem != "" {
		p = append(p, "WAL archive does not read through: "+r.WALProblem)
	}
	if r.BackupProblem != "" {
		p = append(p, "base backup "+r.Backup+" does not verify: "+r.BackupProblem)
	}
	return strings.Join(p, "; ")
}

// VerifyChain checks every shard's chain in parallel. It forces a WAL switch on each shard so
// that everything written so far must be in the archive, waits for the archiver, lists the
// archive and names the gaps, and runs pg_verifybackup. A shard in lost (a server whose data is
// gone) cannot switch WAL: its chain must reach the segment lost names, the last it archived. A
// broken chain is reported, not returned as an error: errors are for a verification that could
// not run.
func VerifyChain(ctx context.Context, c cluster.Cluster, p Protection, lost map[int]string) ([]ChainReport, error) {
	shards := c.Shards()
	if len(p.Backups) != len(shards) {
		return nil, fmt.Errorf("verify chain: %d backups for %d shards", len(p.Backups), len(shards))
	}
	reports := make([]ChainReport, len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, s := range shards {
		if last, gone := lost[i]; gone {
			wg.Go(func() { reports[i], errs[i] = verifyLost(ctx, s, p.Backups[i], last) })
			continue
		}
		wg.Go(func() { reports[i], errs[i] = verifyShard(ctx, s, p.Backups[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return reports, err
		}
	}
	return reports, nil
}

func verifyShard(ctx context.Context, s cluster.Server, b cluster.Backup) (ChainReport, error) {
	r := ChainReport{Shard: s.Name(), Backup: b.ID}
	var segSize uint64
	var now string // everything written before it is in the segments the switch below closes
	err := queryRow(ctx, s.DSN(), `SELECT pg_walfile_name($1::pg_lsn),
		(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), pg_current_wal_lsn()::text`,
		[]any{b.StartLSN}, &r.First, &segSize, &now)
	if err != nil {
		return r, fmt.Errorf("verify chain of %s: %w", s.Name(), err)
	}
	r.Last, err = ArchiveNow(ctx, s)
	switch {
	case errors.Is(err, cluster.ErrArchiveStalled):
		r.ArchiveProblem = err.Error()
	case err != nil:
		return r, err
	}
	if r.Missing, err = missingNames(ctx, s, r.First, r.Last, segSize); err != nil {
		return r, err
	}
	// pg_waldump follows one timeline: a chain that crossed to another (a shard rolled back by a
	// restore before a game day's check) has its segments checked by name only.
	sameTimeline := len(r.First) >= 8 && len(r.Last) >= 8 && r.First[:8] == r.Last[:8]
	if len(r.Missing) == 0 && r.ArchiveProblem == "" && sameTimeline {
		if err := s.VerifyWAL(ctx, b.StartLSN, now); err != nil {
			r.WALProblem = err.Error()
		}
	}
	if err := s.VerifyBackup(ctx, b); err != nil {
		r.BackupProblem = err.Error()
	}
	return r, nil
}

// segmentNameLen is the length of a WAL segment file's name.
const segmentNameLen = 24

// defaultSegmentSize is the WAL segment size of every server pgdrill starts (initdb's default):
// what a lost server's segments are named by, since it cannot be asked.
const defaultSegmentSize = 16 << 20

// verifyLost checks the chain of a server that is gone: its backup, and its archive from the
// backup's start through last, the newest file it archived (a segment, or a backup history file
// named after the segment it follows: 000000010000000000000002.00000028.backup).
func verifyLost(ctx context.Context, s cluster.Server, b cluster.Backup, last string) (ChainReport, error) {
	if len(last) > segmentNameLen {
		last = last[:segmentNameLen]
	}
	r := ChainReport{Shard: s.Name(), Backup: b.ID, Last: last}
	to, err := ParseSegment(last, defaultSegmentSize)
	if err != nil {
		return r, fmt.Errorf("verify chain of %s: %w", s.Name(), err)
	}
	start, err := ParseLSN(b.StartLSN)
	if err != nil {
		return r, fmt.Errorf("verify chain of %s: %w", s.Name(), err)
	}
	from := SegmentOf(start, to.Timeline, defaultSegmentSize)
	r.First = from.Name(defaultSegmentSize)
	archived, err := s.ArchivedWAL(ctx)
	if err != nil {
		return r, err
	}
	r.Missing = Missing(archived, from, to, defaultSegmentSize)
	if err := s.VerifyBackup(ctx, b); err != nil {
		r.BackupProblem = err.Error()
	}
	return r, nil
}

// MissingSegments names the segments the server's WAL archive lacks between the one holding
// fromLSN and the one holding toLSN, inclusive: what a replay from a backup starting at fromLSN
// to a target at toLSN would stop at. A restore that failed to replay says which gap it hit.
func MissingSegments(ctx context.Context, s cluster.Server, fromLSN, toLSN string) ([]string, error) {
	var first, last string
	var segSize uint64
	err := queryRow(ctx, s.DSN(), `SELECT pg_walfile_name($1::pg_lsn), pg_walfile_name($2::pg_lsn),
		(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')`,
		[]any{fromLSN, toLSN}, &first, &last, &segSize)
	if err != nil {
		return nil, fmt.Errorf("name the WAL segments of %s: %w", s.Name(), err)
	}
	return missingNames(ctx, s, first, last, segSize)
}

// missingNames lists the segments first..last absent from the server's archive.
func missingNames(ctx context.Context, s cluster.Server, first, last string, segSize uint64) ([]string, error) {
	archived, err := s.ArchivedWAL(ctx)
	if err != nil {
		return nil, err
	}
	from, err := ParseSegment(first, segSize)
	if err != nil {
		return nil, err
	}
	to, err := ParseSegment(last, segSize)
	if err != nil {
		return nil, err
	}
	return Missing(archived, from, to, segSize), nil
}

// ArchiveNow closes the server's current WAL segment (pg_switch_wal) and waits until its WAL
// archive holds it, so that everything committed so far can be replayed from the archive. It
// returns the segment's name.
func ArchiveNow(ctx context.Context, s cluster.Server) (string, error) {
	segment, _, err := ArchiveNowThrough(ctx, s)
	return segment, err
}

// ArchiveNowThrough is ArchiveNow, and also returns the WAL position just past the segment
// archived: everything written before the call is archived up to there. (With nothing written
// since the last switch, the current segment holds no record and stays unarchived; the position
// is then its start.)
func ArchiveNowThrough(ctx context.Context, s cluster.Server) (string, LSN, error) {
	var segment string
	if err := queryRow(ctx, s.DSN(), `SELECT pg_walfile_name(pg_switch_wal())`, nil, &segment); err != nil {
		return "", 0, fmt.Errorf("switch WAL on %s: %w", s.Name(), err)
	}
	seg, err := ParseSegment(segment, defaultSegmentSize)
	if err != nil {
		return "", 0, err
	}
	return segment, LSN((seg.Number + 1) * defaultSegmentSize), s.AwaitArchived(ctx, segment, archiveWait)
}
