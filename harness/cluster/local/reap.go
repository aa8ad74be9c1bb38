package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
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
func Reap(ctx context.Context, store *runstate.Store, rec runstate.Record) error {
	if rec.Provider != ProviderName {
		return fmt.Errorf("reap run %s: made by provider %q, not %q", rec.RunID, rec.Provider, ProviderName)
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
// OOM, power loss) and that was not detached on purpose. It returns the run ids reaped.
func ReapOrphans(ctx context.Context, store *runstate.Store, log *slog.Logger) ([]string, error) {
	recs, err := store.List()
	if err != nil {
		return nil, err
	}
	var reaped []string
	var errs []error
	for _, rec := range recs {
		if rec.Provider != ProviderName || !rec.Orphaned() {
			continue
		}
		if err := Reap(ctx, store, rec); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("reaped leftovers of a killed run", "run_id", rec.RunID, "servers", len(rec.Servers))
		reaped = append(reaped, rec.RunID)
	}
	return reaped, errors.Join(errs...)
}

var selfOnce = sync.OnceValue(func() int {
	p, _ := runstate.Self()
	return p.PID
})

func selfPID() int { return selfOnce() }
