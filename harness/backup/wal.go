// Package backup is a drill's protection phase: base backups of every shard, named restore
// points, per-tenant logical exports, and the verification that the chain a restore will need —
// backup, then every WAL segment from the backup to now — is really there, with any gap named.
package backup

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a WAL location, as Postgres prints it ("16/B374D848").
type LSN uint64

// ParseLSN parses Postgres's X/Y notation.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parse LSN %q: want X/Y", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

// MarshalText writes the LSN as Postgres does, so JSON shows "16/B374D848", not a number.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (l *LSN) UnmarshalText(text []byte) error {
	v, err := ParseLSN(string(text))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Segment is one WAL segment file: a timeline and a segment number.
type Segment struct {
	Timeline uint32
	Number   uint64
}

// segmentsPerID is how many segments of segSize bytes make up one 4 GiB "xlogid", the middle
// part of a segment file name.
func segmentsPerID(segSize uint64) uint64 { return 0x100000000 / segSize }

// SegmentOf returns the segment holding lsn.
func SegmentOf(lsn LSN, timeline uint32, segSize uint64) Segment {
	return Segment{Timeline: timeline, Number: uint64(lsn) / segSize}
}

// Name is the segment's file name, as in pg_wal and the archive.
func (s Segment) Name(segSize uint64) string {
	per := segmentsPerID(segSize)
	return fmt.Sprintf("%08X%08X%08X", s.Timeline, s.Number/per, s.Number%per)
}

// ParseSegment parses a 24-hex-digit segment file name.
func ParseSegment(name string, segSize uint64) (Segment, error) {
	if len(name) != 24 {
		return Segment{}, fmt.Errorf("parse WAL segment name %q: want 24 hex digits", name)
	}
	var parts [3]uint64
	for i := range parts {
		v, err := strconv.ParseUint(name[i*8:i*8+8], 16, 32)
		if err != nil {
			return Segment{}, fmt.Errorf("parse WAL segment name %q: %w", name, err)
		}
		parts[i] = v
	}
	per := segmentsPerID(segSize)
	if parts[2] >= per {
		return Segment{}, fmt.Errorf("parse WAL segment name %q: segment part %X is out of range for %d-byte segments",
			name, parts[2], segSize)
	}
	return Segment{Timeline: uint32(parts[0]), Number: parts[1]*per + parts[2]}, nil
}

// Missing returns the names of the segments from..to (inclusive, on from's timeline) that are
// not in archived, in WAL order.
func Missing(archived []string, from, to Segment, segSize uint64) []string {
	have := make(map[string]bool, len(archived))
	for _, name := range archived {
		have[name] = true
	}
	var missing []string
	for n := from.Number; n <= to.Number; n++ {
		name := Segment{Timeline: from.Timeline, Number: n}.Name(segSize)
		if !have[name] {
			missing = append(missing, name)
		}
	}
	return missing
}
