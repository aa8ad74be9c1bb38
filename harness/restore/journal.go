package restore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/pgdrill/pgdrill/harness/incident"
)

// JournalEnv names the restore journal a runbook's `pgdrill restore` keeps (see Journal). A drill
// sets it for its runbook, the same file for every run of it, so that a runbook run again after
// a crash finishes what the crashed run left instead of restoring anything twice.
const JournalEnv = "PGDRILL_RESTORE_JOURNAL"

// The events of a journal.
const (
	JournalPhaseBegan  = "phase-began"
	JournalPhaseEnded  = "phase-ended"
	JournalTenantBegun = "tenant-begun"
	JournalTenantDone  = "tenant-done"
)

// JournalEntry is one line of a journal (JSON Lines).
type JournalEntry struct {
	At    time.Time `json:"at"`
	RunID string    `json:"run_id"`
	Event string    `json:"event"`
	// Phase and Shard are a phase's (the shard's index, or AllShards); Shard is also a tenant's.
	Phase string `json:"phase,omitempty"`
	Shard int    `json:"shard"`
	// Harm names the harm a tenant is restored from (its xid, else its LSN): a tenant harmed
	// twice on its shard is restored once from each.
	Harm   string `json:"harm,omitempty"`
	Tenant int64  `json:"tenant,omitempty"`
	// XID is the tenant's transaction, journaled before its commit: the question a run after a
	// crash asks Postgres (pg_xact_status) when no tenant-done follows it.
	XID    string        `json:"xid,omitempty"`
	Result *TenantResult `json:"result,omitempty"`
}

// journalKey is one unit of a restore that happens once: a tenant restored from one harm.
type journalKey struct {
	harm   string
	shard  int
	tenant int64
}

// harmKey names harm h in a journal.
func harmKey(h incident.Harm) string {
	if h.XID != "" {
		return "xid:" + h.XID
	}
	return "lsn:" + h.LSN
}

// Journal records, in a file that outlives the process, how far a restore got: each phase as it
// begins and ends, and each tenant's transaction id before its commit and its result after, every
// line on disk (fsync) before the restore goes on. A restore run again with the same journal —
// after its process was killed halfway (a crashed laptop, an OOM kill, the restorer-crash fault)
// — skips every tenant the journal says is back, asks Postgres about a tenant whose transaction
// was begun but not journaled done (committed, it is back; aborted, it is untouched), and
// restores only the rest: each tenant once, whole. It is the Watcher of the restore it journals,
// so that whoever runs the restore (a drill, around its runbook) can follow its phases by reading
// the file.
//
// A nil *Journal journals nothing: a restore without one runs as before.
type Journal struct {
	runID string
	mu    sync.Mutex
	f     *os.File
	done  map[journalKey]TenantResult
	begun map[journalKey]string
	// err is the first failed write of a phase event: phases are for watchers, so a restore goes
	// on without them, and Close reports it.
	err error
}

// OpenJournal opens the journal at path for run runID, creating it when it does not exist, and
// reads what earlier runs of the restore wrote to it. A journal of another run is refused: its
// tenants are not this incident's.
func OpenJournal(path, runID string) (*Journal, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open restore journal: %w", err)
	}
	entries, used, err := decodeJournal(data)
	if err != nil {
		return nil, fmt.Errorf("open restore journal %s: %w", path, err)
	}
	if used < len(data) {
		// The line a killed run died writing goes, or the next line would be appended to it.
		if err := os.Truncate(path, int64(used)); err != nil {
			return nil, fmt.Errorf("open restore journal: %w", err)
		}
	}
	j := &Journal{runID: runID, done: map[journalKey]TenantResult{}, begun: map[journalKey]string{}}
	for _, e := range entries {
		if e.RunID != runID {
			return nil, fmt.Errorf("open restore journal %s: it is run %s's, not %s's", path, e.RunID, runID)
		}
		k := journalKey{harm: e.Harm, shard: e.Shard, tenant: e.Tenant}
		switch {
		case e.Event == JournalTenantBegun:
			j.begun[k] = e.XID
		case e.Event == JournalTenantDone && e.Result != nil:
			j.done[k] = *e.Result
		}
	}
	if j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("open restore journal: %w", err)
	}
	return j, nil
}

// ReadJournal reads every entry of the journal at path. A last line without its newline is one a
// killed process was writing when it died: nothing was done after it, and it is left out.
func ReadJournal(path string) ([]JournalEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read restore journal: %w", err)
	}
	entries, _, err := decodeJournal(data)
	if err != nil {
		return nil, fmt.Errorf("read restore journal %s: %w", path, err)
	}
	return entries, nil
}

// decodeJournal decodes the whole lines of data, returning how many bytes they took.
func decodeJournal(data []byte) ([]JournalEntry, int, error) {
	var out []JournalEntry
	used := 0
	for {
		i := bytes.IndexByte(data[used:], '\n')
		if i < 0 {
			return out, used, nil
		}
		var e JournalEntry
		if err := json.Unmarshal(data[used:used+i], &e); err != nil {
			return out, used, fmt.Errorf("line %d: %w", len(out)+1, err)
		}
		out = append(out, e)
		used += i + 1
	}
}

// Close closes the journal's file, reporting a phase event it could not write.
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.f.Close()
	if j.err != nil {
		return j.err
	}
	if err != nil {
		return fmt.Errorf("close restore journal: %w", err)
	}
	return nil
}

// write appends e to the journal and waits until it is on disk.
func (j *Journal) write(e JournalEntry) error {
	e.At, e.RunID = time.Now().UTC(), j.runID
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal %s: %w", e.Event, err)
	}
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", e.Event, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: %w", e.Event, err)
	}
	return nil
}

// PhaseBegan implements Watcher.
func (j *Journal) PhaseBegan(p PhaseStart) { j.phase(JournalPhaseBegan, p.Name, p.Shard) }

// PhaseEnded implements Watcher.
func (j *Journal) PhaseEnded(name string, shard int) { j.phase(JournalPhaseEnded, name, shard) }

func (j *Journal) phase(event, name string, shard int) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.write(JournalEntry{Event: event, Phase: name, Shard: shard}); err != nil && j.err == nil {
		j.err = err
	}
}

// earlier returns what an earlier run journaled of tenant t restored from harm: its result when
// it was journaled done, else the transaction it began ("" when none).
func (j *Journal) earlier(harm string, t incident.Tenant) (res TenantResult, done bool, xid string) {
	if j == nil {
		return TenantResult{}, false, ""
	}
	k := journalKey{harm: harm, shard: t.Shard, tenant: t.ID}
	j.mu.Lock()
	defer j.mu.Unlock()
	res, done = j.done[k]
	return res, done, j.begun[k]
}

// knows reports whether an earlier run journaled every one of tenants restored from harm, done or
// begun: without that, some tenant is surely left, and nothing need be asked of Postgres yet.
func (j *Journal) knows(harm string, tenants []incident.Tenant) bool {
	if j == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, t := range tenants {
		k := journalKey{harm: harm, shard: t.Shard, tenant: t.ID}
		if _, done := j.done[k]; !done && j.begun[k] == "" {
			return false
		}
	}
	return true
}

// begin journals that tenant t's transaction xid is about to change the live shard: written
// before the commit, or the transaction must not commit.
func (j *Journal) begin(harm string, t incident.Tenant, xid string) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.begun[journalKey{harm: harm, shard: t.Shard, tenant: t.ID}] = xid
	return j.write(JournalEntry{Event: JournalTenantBegun, Shard: t.Shard, Harm: harm, Tenant: t.ID, XID: xid})
}

// finish journals that tenant t is back, with its result.
func (j *Journal) finish(harm string, r TenantResult) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done[journalKey{harm: harm, shard: r.Shard, tenant: r.ID}] = r
	return j.write(JournalEntry{Event: JournalTenantDone, Shard: r.Shard, Harm: harm, Tenant: r.ID, Result: &r})
}

// journalTail follows a journal another process writes, entry by entry.
type journalTail struct {
	path string
	off  int64
}

// next returns the entries written since the last call; none when the file does not exist yet.
func (t *journalTail) next() ([]JournalEntry, error) {
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("follow restore journal: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, t.off, 1<<62))
	if err != nil {
		return nil, fmt.Errorf("follow restore journal: %w", err)
	}
	entries, used, err := decodeJournal(data)
	t.off += int64(used)
	if err != nil {
		return entries, fmt.Errorf("follow restore journal %s: %w", t.path, err)
	}
	return entries, nil
}
