// Package runstate records every live cluster on disk, so that `pgdrill down` and the next
// pgdrill start can find and reap what a killed run left behind — and nothing else.
//
// A record names each process by pid *and* start time (pids are reused) together with the data
// directory it serves; a reaper acts only when all of them still match.
package runstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pgdrill/pgdrill/harness/atomicfile"
)

// Record describes one live cluster and everything it created.
type Record struct {
	RunID    string    `json:"run_id"`
	Provider string    `json:"provider"`
	Created  time.Time `json:"created"`
	// Owner is the pgdrill process that created the cluster. A record whose owner is gone and
	// that is not Detached was left by a killed run.
	Owner Process `json:"owner"`
	// Detached clusters outlive their owner on purpose (`pgdrill up --detach`).
	Detached bool `json:"detached"`
	// Servers are the Postgres servers started for the run, sidecars included.
	Servers []ServerRecord `json:"servers"`
	// Dirs are removed when the cluster is torn down.
	Dirs []string `json:"dirs"`
	// Spec is the provider's description of what it started (for the local provider, the
	// cluster.Spec), so that another process can attach to the run.
	Spec json.RawMessage `json:"spec,omitempty"`
	// Databases are the databases the run created on servers it did not start (provider
	// existing): dropped when the cluster is torn down, each only while it carries the run's
	// marker, since nothing else about those servers is the run's to remove.
	Databases []DatabaseRecord `json:"databases,omitempty"`
	// Info is provider- and caller-specific data (connection strings, layout, ...) kept so that
	// a later command can attach to the cluster without starting it.
	Info json.RawMessage `json:"info,omitempty"`
}

// ServerRecord identifies one server process.
type ServerRecord struct {
	Name    string  `json:"name"`
	Process Process `json:"process"`
	DataDir string  `json:"data_dir"`
	Port    int     `json:"port"`
}

// DatabaseRecord names a database a run created on a server it did not start.
type DatabaseRecord struct {
	// Server is the name the run gave the server ("shard-0").
	Server string `json:"server"`
	// Maintenance is the connection URL of the database the run issues CREATE DATABASE and DROP
	// DATABASE from (the one the user named); nothing in it is read or written.
	Maintenance string `json:"maintenance"`
	// Name is the database's name.
	Name string `json:"name"`
}

// Store keeps records as one JSON file per run in a directory.
type Store struct {
	dir string
	// untrusted stores sit in a directory another account can write to; see OpenUntrusted.
	untrusted bool
}

// DefaultDir is $PGDRILL_STATE_DIR, else $XDG_STATE_HOME/pgdrill, else ~/.local/state/pgdrill,
// following the XDG base directory convention for state that outlives a process.
func DefaultDir() (string, error) {
	if d := os.Getenv("PGDRILL_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "pgdrill"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find state dir: %w (set PGDRILL_STATE_DIR)", err)
	}
	return filepath.Join(home, ".local", "state", "pgdrill"), nil
}

// Open returns the store in dir, creating the directory if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	return &Store{dir: dir}, nil
}

// OpenUntrusted returns the store in dir, an existing directory that another account may write
// to: a run directory, owned by the account the servers run as, where a copy of the run's record
// is kept so that any pgdrill can find the run under the work root. A record names processes
// that pgdrill will signal, so Load here believes only a record file that this account (or
// root) wrote and that no one else can change; it refuses any other.
func OpenUntrusted(dir string) *Store { return &Store{dir: dir, untrusted: true} }

// Dir is the directory the store writes to.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(runID string) string { return filepath.Join(s.dir, runID+".json") }

// ErrUnknownRun is returned by Load for a run id without a record.
var ErrUnknownRun = errors.New("no such run")

// Save writes r atomically, replacing an earlier record of the same run.
func (s *Store) Save(r Record) error {
	if r.RunID == "" || strings.ContainsAny(r.RunID, `/\.`) {
		return fmt.Errorf("save run record: invalid run id %q", r.RunID)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode run record: %w", err)
	}
	if err := atomicfile.Write(s.path(r.RunID), data, 0o600); err != nil {
		return fmt.Errorf("save run record: %w", err)
	}
	return nil
}

// Load reads the record of one run.
func (s *Store) Load(runID string) (Record, error) {
	var r Record
	flags := os.O_RDONLY
	if s.untrusted {
		// A link could lend it another file's owner; a FIFO would block the open.
		flags |= syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(s.path(runID), flags, 0)
	if errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("load run %s: %w", runID, ErrUnknownRun)
	}
	if err != nil {
		return r, fmt.Errorf("load run %s: %w", runID, err)
	}
	defer f.Close()
	if s.untrusted {
		// Checked on the open file, so that it cannot be swapped between the check and the read.
		if err := checkWriter(f); err != nil {
			return r, fmt.Errorf("load run %s: %w", runID, err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return r, fmt.Errorf("load run %s: %w", runID, err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("decode run %s: %w", runID, err)
	}
	return r, nil
}

// ErrUntrusted is returned by an untrusted store's Load for a record file another account could
// have written.
var ErrUntrusted = errors.New("not a regular file only this account or root can write; ignored")

// checkWriter refuses anything but a regular file owned by this account or root that neither
// its group nor others may write.
func checkWriter(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !st.Mode().IsRegular() || sys.Uid != 0 && int(sys.Uid) != os.Geteuid() || st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s: %w", f.Name(), ErrUntrusted)
	}
	return nil
}

// List returns every record, oldest first.
func (s *Store) List() ([]Record, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	out := make([]Record, 0, len(names))
	for _, name := range names {
		r, err := s.Load(strings.TrimSuffix(filepath.Base(name), ".json"))
		if errors.Is(err, ErrUnknownRun) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Remove deletes a run's record; a missing record is not an error.
func (s *Store) Remove(runID string) error {
	if err := os.Remove(s.path(runID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove run record %s: %w", runID, err)
	}
	return nil
}

// Orphaned reports whether r was left behind by a pgdrill process that no longer runs and did
// not mean to leave it (a non-detached run that was killed).
func (r Record) Orphaned() bool {
	return !r.Detached && !r.Owner.Alive()
}

// ReapOrphaned reaps, with reap, every record of recs that provider made and that is Orphaned,
// logging each, and returns the run ids reaped; one run that cannot be reaped does not stop the
// others.
func ReapOrphaned(recs []Record, provider string, reap func(Record) error, log *slog.Logger) ([]string, error) {
	var reaped []string
	var errs []error
	for _, rec := range recs {
		if rec.Provider != provider || !rec.Orphaned() {
			continue
		}
		if err := reap(rec); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("reaped leftovers of a killed run", "run_id", rec.RunID, "provider", provider, "servers", len(rec.Servers))
		reaped = append(reaped, rec.RunID)
	}
	return reaped, errors.Join(errs...)
}
