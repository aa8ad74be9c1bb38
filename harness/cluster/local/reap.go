package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pgdrill/pgdrill/harness/runstate"
)

func nowUTC() time.Time { return time.Now().UTC() }

// Reap tears down what a run's record names: each server only if its pid, start time and data
// directory still match (nothing else is ever signalled), then the run's directories (only if
// their marker names the run), then the record. Reaping a run whose owner still runs a
// non-detached cluster is refused: that cluster is in use.
// It needs no Postgres binaries, so `pgdrill down` works even where they are gone.
//
// A run FindRuns found in its directory only has no record in store to remove; the one in the
// state dir that recorded it, if that still exists, names what is gone by then and is removed
// by the next ReapOrphans on that state dir.
func Reap(ctx context.Context, store *runstate.Store, rec runstate.Record) error {
	if rec.Provider != ProviderName && rec.Provider != ExistingName {
		return fmt.Errorf("reap run %s: made by provider %q, not %q or %q", rec.RunID, rec.Provider, ProviderName, ExistingName)
	}
	if !rec.Detached && rec.Owner.Alive() && rec.Owner.PID != selfPID() {
		return fmt.Errorf("reap run %s: its pgdrill process %d is still running; stop that instead",
			rec.RunID, rec.Owner.PID)
	}
	ctx = context.WithoutCancel(ctx)
	errs := make([]error, len(rec.Servers))
	var wg sync.WaitGroup
	for i, s := range rec.Servers {
		wg.Go(func() {
			if err := terminate(ctx, s.Process, s.DataDir, nil); err != nil {
				errs[i] = fmt.Errorf("reap %s of run %s: %w", s.Name, rec.RunID, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := dropDatabases(ctx, rec.RunID, rec.Databases); err != nil {
		return fmt.Errorf("reap run %s: %w", rec.RunID, err)
	}
	for _, dir := range rec.Dirs {
		if filepath.Base(dir) != rec.RunID {
			return fmt.Errorf("reap run %s: directory %s is not named after the run; left alone", rec.RunID, dir)
		}
		if err := removeRunDir(dir, rec.RunID); err != nil {
			return err
		}
	}
	return store.Remove(rec.RunID)
}

// ReapOrphans reaps every local run whose pgdrill process died without tearing down (SIGKILL,
// OOM, power loss, a `go test` stopped with Ctrl-C) and that was not detached on purpose: those
// recorded in store and those found in their own directories under workRoot, whichever state dir
// recorded them (FindRuns). It returns the run ids reaped.
func ReapOrphans(ctx context.Context, workRoot string, store *runstate.Store, log *slog.Logger) ([]string, error) {
	recs, findErr := FindRuns(workRoot, store) // what it could read is reaped all the same
	reap := func(rec runstate.Record) error { return Reap(ctx, store, rec) }
	reaped, err := runstate.ReapOrphaned(recs, ProviderName, reap, log)
	around, aroundErr := runstate.ReapOrphaned(recs, ExistingName, reap, log)
	return append(reaped, around...), errors.Join(findErr, err, aroundErr)
}

// FindRuns returns every run recorded in store and, for `pgdrill down --all`, `pgdrill ls` and
// ReapOrphans, every local run whose directory is under workRoot though its record went to
// another state dir: a test suite's temporary one, another --state-dir, a deleted one. Each run
// directory keeps a copy of its run's record for that.
//
// A copy is believed only from a directory marked with its run id, written by this account or
// root (runstate.OpenUntrusted: the directory belongs to the account the servers run as), naming
// that directory as its only one and data directories inside it; Reap's own checks (pid, start
// time and data directory before any signal) apply to it as to any record. Where both exist,
// store's record is used: it is written first, so it is never the older. Runs are returned oldest
// first, with whatever could be read even when some copy could not.
func FindRuns(workRoot string, store *runstate.Store) ([]runstate.Record, error) {
	recs, err := store.List()
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(workRoot)
	if err != nil {
		return recs, fmt.Errorf("find runs under %s: %w", workRoot, err)
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return recs, nil
	}
	if err != nil {
		return recs, fmt.Errorf("find runs under %s: %w", root, err)
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[r.RunID] = true
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || known[e.Name()] {
			continue
		}
		rec, ok, err := dirRecord(filepath.Join(root, e.Name()))
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			recs = append(recs, rec)
		}
	}
	slices.SortStableFunc(recs, func(a, b runstate.Record) int { return a.Created.Compare(b.Created) })
	return recs, errors.Join(errs...)
}

// dirRecord reads the copy of a run's record kept in its directory. ok is false, with no error,
// for a directory that is no run's (no marker, or the marker of another run: the template
// cache, anything else) and for a run directory whose record is not written yet.
func dirRecord(dir string) (rec runstate.Record, ok bool, err error) {
	id := filepath.Base(dir)
	marker, err := os.ReadFile(filepath.Join(dir, runMarkerFile))
	if err != nil || string(marker) != id {
		return rec, false, nil
	}
	rec, err = runstate.OpenUntrusted(dir).Load(id)
	if errors.Is(err, runstate.ErrUnknownRun) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read the record in run directory %s: %w", dir, err)
	}
	if rec.RunID != id || (rec.Provider != ProviderName && rec.Provider != ExistingName) || !slices.Equal(rec.Dirs, []string{dir}) {
		return rec, false, fmt.Errorf("read the record in run directory %s: it names run %q of provider %q in %v; ignored",
			dir, rec.RunID, rec.Provider, rec.Dirs)
	}
	for _, s := range rec.Servers {
		if rel, err := filepath.Rel(dir, s.DataDir); err != nil || !filepath.IsLocal(rel) {
			return rec, false, fmt.Errorf("read the record in run directory %s: server %s's data directory %s is outside it; ignored",
				dir, s.Name, s.DataDir)
		}
	}
	return rec, true, nil
}

var selfOnce = sync.OnceValue(func() int {
	p, _ := runstate.Self()
	return p.PID
})

func selfPID() int { return selfOnce() }
