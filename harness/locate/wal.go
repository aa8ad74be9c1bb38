// Package locate finds the harm of an incident the way a responder must: in the WAL. A blind
// drill hands the team what support would, a few tenants and an approximate time, never the
// transactions; this package reads the shards' WAL archives (pg_waldump, through
// cluster.Server.DumpWAL) and tells, per transaction, what it changed and when it committed, so
// that the harmful transactions, every tenant they harmed and the recovery target before them can
// be found.
//
// This file reads the WAL into transactions. The rows a transaction deleted or overwrote are
// named by their tuple ids (block, offset) in a relation file: a server recovered to just before
// the transaction says whose rows they were.
package locate

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/backup"
)

// RelFile names a relation's file as the WAL does: tablespace, database and relfilenode.
type RelFile struct {
	Tablespace uint32 `json:"tablespace"`
	Database   uint32 `json:"database"`
	Relation   uint32 `json:"relation"`
}

// Catalog reports whether the file is a system catalog's: a change to one is DDL (a dropped
// column, a dropped table), not a change to rows of the tenants'.
func (r RelFile) Catalog() bool { return r.Relation < firstUserOID }

// firstUserOID is Postgres's FirstNormalObjectId: below it are the objects initdb made.
const firstUserOID = 16384

// TID is a tuple id: where a row version lives in its relation.
type TID struct {
	Block  uint32 `json:"block"`
	Offset uint16 `json:"offset"`
}

// String writes the tid as Postgres does, "(block,offset)", ready for `WHERE ctid = ANY(...)`.
func (t TID) String() string { return fmt.Sprintf("(%d,%d)", t.Block, t.Offset) }

// Changes are what one transaction did to one relation.
type Changes struct {
	// Deleted and Updated are the row versions it deleted, and the old versions of the rows it
	// updated, in WAL order.
	Deleted []TID `json:"deleted,omitempty"`
	Updated []TID `json:"updated,omitempty"`
	// Inserted counts the rows it inserted.
	Inserted int `json:"inserted,omitempty"`
}

// Outcome is how a transaction ended, as far as the WAL read shows.
type Outcome string

// The outcomes.
const (
	Committed Outcome = "committed"
	Aborted   Outcome = "aborted"
	// Unfinished is a transaction whose end lies past the WAL read (or that was running when
	// the server stopped).
	Unfinished Outcome = "unfinished"
)

// Txn is one transaction as the WAL shows it.
type Txn struct {
	XID uint32 `json:"xid"`
	// FirstLSN is the start of its first record: a recovery target just before the transaction
	// (recovery_target_lsn, exclusive) brings back everything it changed. CommitLSN is its
	// commit (or abort) record's.
	FirstLSN  backup.LSN `json:"first_lsn"`
	CommitLSN backup.LSN `json:"commit_lsn,omitzero"`
	Outcome   Outcome    `json:"outcome"`
	Time      time.Time  `json:"time,omitzero"`
	// Relations are its changes to rows, by relation file; catalogs' are counted in
	// CatalogChanges instead.
	Relations map[RelFile]*Changes `json:"-"`
	// CatalogChanges counts its changes to system catalogs: DDL.
	CatalogChanges int `json:"catalog_changes,omitempty"`
	// AlteredColumns are the catalog rows of columns (pg_attribute's) it updated, by database:
	// ALTER TABLE dropping, renaming or retyping a column. A server recovered to before it says
	// which columns they were.
	AlteredColumns map[uint32][]TID `json:"-"`
	// DroppedFiles are the relation files its commit removed (DROP TABLE, DROP SCHEMA,
	// TRUNCATE, a rewrite); DroppedDatabases the databases it removed (DROP DATABASE).
	DroppedFiles     []RelFile `json:"dropped_files,omitempty"`
	DroppedDatabases []uint32  `json:"dropped_databases,omitempty"`
}

// Altered reports whether it changed rows, dropped files or databases, or altered columns:
// whether it could have harmed anything.
func (t *Txn) Altered() bool {
	return t.RowsChanged() > 0 || len(t.DroppedFiles) > 0 || len(t.DroppedDatabases) > 0 || len(t.AlteredColumns) > 0
}

// In reports whether it changed anything in one of dbs (by oid), or removed a database (which may
// have been one of them): whether a search of those databases' harm must look at it.
func (t *Txn) In(dbs map[uint32]bool) bool {
	if len(t.DroppedDatabases) > 0 {
		return true
	}
	for rel := range t.Relations {
		if dbs[rel.Database] {
			return true
		}
	}
	for _, f := range t.DroppedFiles {
		if dbs[f.Database] {
			return true
		}
	}
	for db := range t.AlteredColumns {
		if dbs[db] {
			return true
		}
	}
	return false
}

// RowsChanged counts the rows it deleted or updated in relations that are not catalogs.
func (t *Txn) RowsChanged() int {
	n := 0
	for _, c := range t.Relations {
		n += len(c.Deleted) + len(c.Updated)
	}
	return n
}

// changes returns the changes to rel, made on first use.
func (t *Txn) changes(rel RelFile) *Changes {
	c := t.Relations[rel]
	if c == nil {
		c = &Changes{}
		t.Relations[rel] = c
	}
	return c
}

// A pg_waldump line: rmgr, transaction id, LSN and description.
var (
	recordLine  = regexp.MustCompile(`^rmgr: (\S+)\s+len \(rec/tot\):\s*\d+/\s*\d+, tx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+), prev [0-9A-F]+/[0-9A-F]+, desc: (.*)$`)
	blockRef    = regexp.MustCompile(`blkref #(\d+): rel (\d+)/(\d+)/(\d+)(?: fork \w+)? blk (\d+)`)
	offset      = regexp.MustCompile(`^\S+ off (\d+)`)
	multiInsert = regexp.MustCompile(`^MULTI_INSERT(?:\+INIT)? (\d+) tuples`)
	relPath     = regexp.MustCompile(`base/(\d+)/(\d+)`)
	dropDir     = regexp.MustCompile(`^DROP dir (\d+)/(\d+)`)
)

// pgDatabaseFile is pg_database's file in a block reference: a shared catalog (database 0),
// relation 1262.
const pgDatabaseFile = "/0/1262 "

// pgAttributeFile is pg_attribute's relation file, as initdb makes it (a VACUUM FULL of the
// catalog would move it).
const pgAttributeFile = 1249

// commitTimeLayout is how pg_waldump writes a commit's time.
const commitTimeLayout = "2006-01-02 15:04:05.999999 MST"

// Scan reads pg_waldump's text from r and returns the transactions it shows, in the order of
// their first record. Records of no transaction (checkpoints, full-page images written outside
// one, pruning) are skipped; a line that is not a record is an error.
func Scan(r io.Reader) ([]*Txn, error) {
	byXID := map[uint32]*Txn{}
	var order []*Txn
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20) // a commit record lists every invalidation
	var invalidated backup.LSN                 // the last in-place update of pg_database outside a transaction
	for n := 1; sc.Scan(); n++ {
		m := recordLine.FindStringSubmatch(sc.Text())
		if m == nil {
			return nil, fmt.Errorf("read WAL: line %d: not a record: %.200s", n, sc.Text())
		}
		xid64, _ := strconv.ParseUint(m[2], 10, 32)
		xid := uint32(xid64)
		lsn, err := backup.ParseLSN(m[3])
		if err != nil {
			return nil, fmt.Errorf("read WAL: line %d: %w", n, err)
		}
		if xid == 0 {
			if m[1] == "Heap" && strings.HasPrefix(m[4], "INPLACE ") && strings.Contains(m[4], pgDatabaseFile) {
				invalidated = lsn
			}
			continue
		}
		t := byXID[xid]
		if t == nil {
			t = &Txn{XID: xid, FirstLSN: lsn, Outcome: Unfinished, Relations: map[RelFile]*Changes{}}
			byXID[xid] = t
			order = append(order, t)
		}
		if err := t.add(m[1], lsn, m[4]); err != nil {
			return nil, fmt.Errorf("read WAL: line %d: %w", n, err)
		}
		if m[1] == "Database" && strings.HasPrefix(m[4], "DROP dir") && invalidated != 0 && invalidated < t.FirstLSN {
			// DROP DATABASE marks the database invalid in pg_database, in place and before it
			// has a transaction id: the harm begins there.
			t.FirstLSN, invalidated = invalidated, 0
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read WAL: %w", err)
	}
	return order, nil
}

// add applies one record of the transaction: its resource manager, LSN and description.
func (t *Txn) add(rmgr string, lsn backup.LSN, desc string) error {
	switch rmgr {
	case "Transaction":
		return t.end(lsn, desc)
	case "Database":
		if m := dropDir.FindStringSubmatch(desc); m != nil {
			db, _ := strconv.ParseUint(m[2], 10, 32)
			t.DroppedDatabases = append(t.DroppedDatabases, uint32(db))
		}
		return nil
	case "Heap", "Heap2":
	default:
		return nil
	}
	refs := blockRef.FindAllStringSubmatch(desc, -1)
	if len(refs) == 0 {
		return nil
	}
	rel, blk := refOf(refs[0])
	op, _, _ := strings.Cut(desc, " ")
	// UPDATE+INIT is an update whose new version went to a page of its own.
	op, _ = strings.CutSuffix(op, "+INIT")
	var old TID // the row version a delete or update replaced
	switch op {
	case "DELETE", "UPDATE", "HOT_UPDATE":
		m := offset.FindStringSubmatch(desc)
		if m == nil {
			return fmt.Errorf("%s record at %s names no tuple: %s", op, lsn, desc)
		}
		off, _ := strconv.ParseUint(m[1], 10, 16)
		if op != "DELETE" && len(refs) > 1 {
			_, blk = refOf(refs[1]) // the old version's page, when the new one went elsewhere
		}
		old = TID{Block: blk, Offset: uint16(off)}
	}
	if rel.Catalog() {
		t.CatalogChanges++
		if rel.Relation == pgAttributeFile && (op == "UPDATE" || op == "HOT_UPDATE") {
			if t.AlteredColumns == nil {
				t.AlteredColumns = map[uint32][]TID{}
			}
			t.AlteredColumns[rel.Database] = append(t.AlteredColumns[rel.Database], old)
		}
		return nil
	}
	switch op {
	case "DELETE":
		c := t.changes(rel)
		c.Deleted = append(c.Deleted, old)
	case "UPDATE", "HOT_UPDATE":
		c := t.changes(rel)
		c.Updated = append(c.Updated, old)
	case "INSERT":
		t.changes(rel).Inserted++
	default:
		if m := multiInsert.FindStringSubmatch(desc); m != nil {
			n, _ := strconv.Atoi(m[1])
			t.changes(rel).Inserted += n
		}
	}
	return nil
}

// end applies a Transaction record: a commit or an abort, with what it dropped.
func (t *Txn) end(lsn backup.LSN, desc string) error {
	var outcome Outcome
	switch {
	case strings.HasPrefix(desc, "COMMIT "):
		outcome = Committed
	case strings.HasPrefix(desc, "ABORT "):
		outcome = Aborted
	default:
		return nil // PREPARE, ASSIGNMENT, INVALIDATION: not the end
	}
	stamp, rest, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(desc, "COMMIT "), "ABORT "), ";")
	when, err := time.Parse(commitTimeLayout, strings.TrimSpace(stamp))
	if err != nil {
		return fmt.Errorf("end of transaction %d at %s: read its time: %w", t.XID, lsn, err)
	}
	t.Outcome, t.CommitLSN, t.Time = outcome, lsn, when
	for part := range strings.SplitSeq(rest, ";") {
		part = strings.TrimSpace(part)
		if !strings.HasPrefix(part, "rels: ") {
			continue
		}
		for _, m := range relPath.FindAllStringSubmatch(part, -1) {
			db, _ := strconv.ParseUint(m[1], 10, 32)
			rel, _ := strconv.ParseUint(m[2], 10, 32)
			t.DroppedFiles = append(t.DroppedFiles, RelFile{Tablespace: defaultTablespace, Database: uint32(db), Relation: uint32(rel)})
		}
	}
	return nil
}

// defaultTablespace is pg_default's oid: the tablespace of files under base/.
const defaultTablespace = 1663

// refOf reads a block reference's relation file and block.
func refOf(m []string) (RelFile, uint32) {
	num := func(s string) uint32 {
		v, _ := strconv.ParseUint(s, 10, 32)
		return uint32(v)
	}
	return RelFile{Tablespace: num(m[2]), Database: num(m[3]), Relation: num(m[4])}, num(m[5])
}
