package truth

import (
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
// with the process however it ends, so a killed run leaves nothing behind. Rows go in one at a
// time (Put) and come back one at a time (EachRowHash): only an index stays in memory, and a
// small buffer per table being written, so a victim of millions of rows costs no more memory
// than a small one. Each stretch of rows is checked against the digest taken as it was written
// before any row of it is handed on: a file edited under a running judge fails the read rather
// than steering the verdict.
// It is not safe for concurrent use.
type RowFile struct {
	f     *os.File
	end   int64
	index map[TenantTable]*rowSegment
	// open are the tables written since the last Flush, with what is not yet in the file.
	open map[TenantTable]*openSegment
}

// rowSegment is where one table's rows lie in the file (extents, in order) and how many.
type rowSegment struct {
	extents []extent
	rows    int64
}

// extent is one stretch of a table's rows in the file, whole rows only, and its digest.
type extent struct {
	off, size int64
	digest    [sha256.Size]byte
}

// openSegment is a table being written: its segment so far and the rows not yet written out.
type openSegment struct {
	seg     rowSegment
	pending []byte
}

// extentSize is how many bytes of a table's rows are buffered before they are written out:
// what bounds a RowFile's memory per table being written.
const extentSize = 32 << 10

var (
	_ RowReader = (*RowFile)(nil)
	_ RowStream = (*RowFile)(nil)
)

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
	return &RowFile{f: f, index: map[TenantTable]*rowSegment{}, open: map[TenantTable]*openSegment{}}, nil
}

// Put adds one row of tt. A table's rows may come in any order and interleaved with other
// tables'; they can be read once Flush has sealed them, and a table sealed once takes no more.
func (r *RowFile) Put(tt TenantTable, row RowHash) error {
	if _, sealed := r.index[tt]; sealed {
		return fmt.Errorf("write rows of tenant %d table %s: its rows were written already", tt.Tenant, tt.Table)
	}
	o := r.open[tt]
	if o == nil {
		o = &openSegment{}
		r.open[tt] = o
	}
	o.pending = binary.AppendUvarint(o.pending, uint64(len(row.Key)))
	for _, k := range row.Key {
		o.pending = binary.AppendUvarint(o.pending, uint64(len(k)))
		o.pending = append(o.pending, k...)
	}
	o.pending = binary.LittleEndian.AppendUint64(o.pending, uint64(row.Hash))
	o.seg.rows++
	if len(o.pending) >= extentSize {
		return r.writeOut(tt, o)
	}
	return nil
}

// writeOut appends what o has pending to the file as one extent of its table.
func (r *RowFile) writeOut(tt TenantTable, o *openSegment) error {
	if len(o.pending) == 0 {
		return nil
	}
	if _, err := r.f.WriteAt(o.pending, r.end); err != nil {
		return fmt.Errorf("write rows of tenant %d table %s: %w", tt.Tenant, tt.Table, err)
	}
	o.seg.extents = append(o.seg.extents, extent{off: r.end, size: int64(len(o.pending)), digest: sha256.Sum256(o.pending)})
	r.end += int64(len(o.pending))
	o.pending = o.pending[:0]
	return nil
}

// Flush writes out every table written since the last Flush and seals them: they can be read
// from now on.
func (r *RowFile) Flush() error {
	for tt, o := range r.open {
		if err := r.writeOut(tt, o); err != nil {
			return err
		}
		r.index[tt] = &o.seg
		delete(r.open, tt)
	}
	return nil
}

// Count returns how many rows of tt the file holds, without reading them.
func (r *RowFile) Count(tt TenantTable) int64 {
	if seg, ok := r.index[tt]; ok {
		return seg.rows
	}
	return 0
}

// EachRowHash implements RowStream: the rows of each sealed table asked for, one at a time,
// an extent in memory at once. An extent whose bytes do not match the digest taken when it was
// written fails the read before any of its rows is handed on.
func (r *RowFile) EachRowHash(ctx context.Context, tables []TenantTable, fn func(TenantTable, RowHash) error) error {
	var buf []byte
	for _, tt := range tables {
		seg, ok := r.index[tt]
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int64
		for _, e := range seg.extents {
			if int64(cap(buf)) < e.size {
				buf = make([]byte, e.size)
			}
			buf = buf[:e.size]
			if _, err := r.f.ReadAt(buf, e.off); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read rows of tenant %d table %s: %w", tt.Tenant, tt.Table, err)
			}
			if sha256.Sum256(buf) != e.digest {
				return fmt.Errorf("read rows of tenant %d table %s: the row file was changed since they were written", tt.Tenant, tt.Table)
			}
			rows, err := decodeRows(buf, func(row RowHash) error { return fn(tt, row) })
			if err != nil {
				return fmt.Errorf("read rows of tenant %d table %s: %w", tt.Tenant, tt.Table, err)
			}
			n += rows
		}
		if n != seg.rows {
			return fmt.Errorf("read rows of tenant %d table %s: %d rows, %d written", tt.Tenant, tt.Table, n, seg.rows)
		}
	}
	return nil
}

// RowHashes implements RowReader: the rows of each table asked for, checked as EachRowHash
// checks them.
func (r *RowFile) RowHashes(ctx context.Context, tables []TenantTable) (map[TenantTable][]RowHash, error) {
	return collectRows(ctx, r, tables)
}

// errTruncated is what decodeRows says of an extent that ends inside a row.
var errTruncated = errors.New("a row is cut short")

// decodeRows calls fn with each row encoded in data, in order, and returns how many there were.
func decodeRows(data []byte, fn func(RowHash) error) (int64, error) {
	var n int64
	next := func() (uint64, bool) {
		v, l := binary.Uvarint(data)
		if l <= 0 {
			return 0, false
		}
		data = data[l:]
		return v, true
	}
	for len(data) > 0 {
		keys, ok := next()
		if !ok || keys > uint64(len(data)) {
			return n, errTruncated
		}
		row := RowHash{Key: make([]string, keys)}
		for i := range row.Key {
			l, ok := next()
			if !ok || l > uint64(len(data)) {
				return n, errTruncated
			}
			row.Key[i], data = string(data[:l]), data[l:]
		}
		if len(data) < 8 {
			return n, errTruncated
		}
		row.Hash, data = int64(binary.LittleEndian.Uint64(data)), data[8:]
		if err := fn(row); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Close releases the file, and with it its space. A nil RowFile closes as nothing.
func (r *RowFile) Close() error {
	if r == nil {
		return nil
	}
	return r.f.Close()
}
