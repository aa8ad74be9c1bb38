package truth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// RowFile keeps tenant tables' per-row hashes out of memory, in a temporary file removed from
// its directory as soon as it is made: it lives while the process holds it open and is gone
// with the process however it ends, so a killed run leaves nothing behind. Only an index stays
// in memory, with each table's digest, against which its rows are checked when read back: a
// file edited under a running judge fails the read rather than steering the verdict. This is
// how a baseline of 883 victims' millions of rows keeps pgdrill's memory flat.
type RowFile struct {
	f     *os.File
	end   int64
	index map[TenantTable]rowSegment
}

// rowSegment is where one table's rows lie in the file, how many, and their digest.
type rowSegment struct {
	off, size int64
	rows      int64
	digest    [sha256.Size]byte
}

var _ RowReader = (*RowFile)(nil)

// NewRowFile makes an empty RowFile in the system's temporary directory.
func NewRowFile() (*RowFile, error) {
	f, err := os.CreateTemp("", "pgdrill-rows-*")
	if err != nil {
		return nil, fmt.Errorf("create row file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlink row file: %w", err)
	}
	return &RowFile{f: f, index: map[TenantTable]rowSegment{}}, nil
}

// Add appends the rows of each table given; a table added twice keeps its last rows.
func (r *RowFile) Add(rows map[TenantTable][]RowHash) error {
	var buf bytes.Buffer
	for tt, rs := range rows {
		buf.Reset()
		for _, row := range rs {
			buf.Write(binary.AppendUvarint(nil, uint64(len(row.Key))))
			for _, k := range row.Key {
				buf.Write(binary.AppendUvarint(nil, uint64(len(k))))
				buf.WriteString(k)
			}
			buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(row.Hash)))
		}
		if _, err := r.f.WriteAt(buf.Bytes(), r.end); err != nil {
			return fmt.Errorf("write rows of tenant %d table %s: %w", tt.Tenant, tt.Table, err)
		}
		r.index[tt] = rowSegment{off: r.end, size: int64(buf.Len()), rows: int64(len(rs)), digest: sha256.Sum256(buf.Bytes())}
		r.end += int64(buf.Len())
	}
	return nil
}

// Count returns how many rows of tt the file holds, without reading them.
func (r *RowFile) Count(tt TenantTable) int64 { return r.index[tt].rows }

// RowHashes implements RowReader: the rows of each table asked for, each checked against the
// digest taken when it was added.
func (r *RowFile) RowHashes(_ context.Context, tables []TenantTable) (map[TenantTable][]RowHash, error) {
	out := make(map[TenantTable][]RowHash, len(tables))
	for _, tt := range tables {
		seg, ok := r.index[tt]
		if !ok {
			continue
		}
		data := make([]byte, seg.size)
		if _, err := r.f.ReadAt(data, seg.off); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read rows of tenant %d table %s: %w", tt.Tenant, tt.Table, err)
		}
		if sha256.Sum256(data) != seg.digest {
			return nil, fmt.Errorf("read rows of tenant %d table %s: the row file was changed since they were written", tt.Tenant, tt.Table)
		}
		rows, err := decodeRows(data, seg.rows)
		if err != nil {
			return nil, fmt.Errorf("read rows of tenant %d table %s: %w", tt.Tenant, tt.Table, err)
		}
		out[tt] = rows
	}
	return out, nil
}

func decodeRows(data []byte, n int64) ([]RowHash, error) {
	rd := bytes.NewReader(data)
	out := make([]RowHash, 0, n)
	for range n {
		keys, err := binary.ReadUvarint(rd)
		if err != nil {
			return nil, err
		}
		row := RowHash{Key: make([]string, keys)}
		for i := range row.Key {
			l, err := binary.ReadUvarint(rd)
			if err != nil {
				return nil, err
			}
			b := make([]byte, l)
			if _, err := io.ReadFull(rd, b); err != nil {
				return nil, err
			}
			row.Key[i] = string(b)
		}
		var h [8]byte
		if _, err := io.ReadFull(rd, h[:]); err != nil {
			return nil, err
		}
		row.Hash = int64(binary.LittleEndian.Uint64(h[:]))
		out = append(out, row)
	}
	return out, nil
}

// Close releases the file, and with it its space. A nil RowFile closes as nothing.
func (r *RowFile) Close() error {
	if r == nil {
		return nil
	}
	return r.f.Close()
}
