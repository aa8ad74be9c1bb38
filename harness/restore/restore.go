// Package restore brings a group of tenants back after an incident, on shards where every other
// tenant keeps writing. Postgres restores whole clusters; most strategies here end the same way —
// the affected tenants' rows, with their whole foreign-key closure, merged back into the live
// shard in foreign-key order, one transaction per tenant, without touching anyone else — and
// differ in where the pre-incident rows come from (a sidecar, a standby, an export). The others
// need no copy (soft-delete-undo), or hand the work to the team's own command (runbook).
package restore

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// Strategy restores the affected tenants of an incident.
type Strategy interface {
	// Name is how scenarios, flags and reports name the strategy.
	Name() string
	// Restore brings the tenants of rec back. Its Result says what was copied and how long each
	// phase took; an error means the restore could not finish (and says where it stopped), and
	// the Result still holds what was restored before it stopped.
	Restore(ctx context.Context, env Env, rec incident.Record) (Result, error)
}

// Env is what a strategy works with.
type Env struct {
	Cluster cluster.Cluster
	// Protection holds the base backups the protection phase took, one per shard.
	Protection backup.Protection
	Log        *slog.Logger
	// Standbys are the delayed standbys the protection phase started (StartStandbys), index i
	// for shard i; none when it started none.
	Standbys []cluster.Standby
	// Watch, when set, is told as each phase begins and ends: what a drill attaches faults to.
	Watch Watcher
	// Journal, when set, records how far the restore got, and says how far an earlier run of it
	// got that was killed before it ended: what it restored is not restored again.
	Journal *Journal
}

// The phases a restore reports, in the order they happen on a shard.
const (
	// PhaseArchive closes the live shard's WAL segment and waits for the archiver, so the WAL up
	// to the harm can be replayed.
	PhaseArchive = "archive"
	// PhaseProvision lays out a sidecar server from a base backup.
	PhaseProvision = "provision"
	// PhaseReplay replays archived WAL into the sidecar up to just before the harm.
	PhaseReplay = "replay"
	// PhaseMerge copies the tenants out of the source and merges them into the live shard.
	PhaseMerge = "merge"
	// PhaseUndo clears the deletion marks a soft delete wrote.
	PhaseUndo = "undo"
	// PhaseRunbook runs a team's own restore command, on every shard at once (AllShards).
	PhaseRunbook = "runbook"
)

// AllShards is the Shard of a phase that is not one shard's: a runbook's, which does whatever it
// does wherever it must.
const AllShards = -1

// Phase is one timed step of a restore on one shard.
type Phase struct {
	Name string `json:"name"`
	// Shard is the shard's index, or AllShards.
	Shard int       `json:"shard"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Duration is how long the phase took.
func (p Phase) Duration() time.Duration { return p.End.Sub(p.Start) }

// Result is what a restore did.
type Result struct {
	Strategy string         `json:"strategy"`
	Phases   []Phase        `json:"phases"`
	Tenants  []TenantResult `json:"tenants"`
	// Output is what an external command (a runbook) printed, stdout and stderr together, its
	// last MaxOutput bytes: what a person reads first when a drill's runbook failed.
	Output string `json:"output,omitempty"`
	// Retries are the steps the restore tried again after a failure a retry can mend.
	Retries []Retry `json:"retries,omitempty"`
}

// Rows is the number of rows the restore wrote into live shards.
func (r Result) Rows() int64 {
	var n int64
	for _, t := range r.Tenants {
		n += t.RowsWritten
	}
	return n
}

// TenantResult is what the restore did for one tenant.
type TenantResult struct {
	ID    int64 `json:"id"`
	Shard int   `json:"shard"`
	// RowsRead counts the tenant's rows in the source (the pre-incident state).
	RowsRead int64 `json:"rows_read"`
	// RowsWritten counts rows inserted into (or, with PreferBackup, overwritten in) the live
	// shard.
	RowsWritten int64 `json:"rows_written"`
	// Conflicts counts rows present both in the source and live with different contents: newer
	// writes under KeepLive (kept), incident damage under PreferBackup (overwritten).
	Conflicts int64 `json:"conflicts"`
	// Newer counts live rows the source does not have: written after the incident, kept.
	Newer int64 `json:"newer"`
	// ConflictKeys names up to maxConflictKeys conflicting rows, as table(key, ...).
	ConflictKeys []string `json:"conflict_keys,omitempty"`
	// Skipped counts source rows left out because a live row holds one of their other unique
	// keys (a unique e-mail someone took since): not forced in over the live row, and counted
	// lost by the judge.
	Skipped int64 `json:"skipped,omitempty"`
	// Earlier says an earlier run of the restore, killed before it ended, brought the tenant back,
	// as its journal (Journal) says: it was not restored again. The counts are that run's, or
	// zero when only the live shard could say that its transaction committed.
	Earlier bool `json:"earlier,omitempty"`
}

// timeline collects phases from a strategy's parallel shard workers, and tells its watcher.
type timeline struct {
	watch   Watcher
	mu      sync.Mutex
	phases  []Phase
	retries []Retry
}

// newTimeline returns the timeline of a restore in env.
func newTimeline(env Env) *timeline { return &timeline{watch: env.Watch} }

// time runs f as phase name on shard, working on the servers on, and records it, whether f
// fails or not.
func (t *timeline) time(name string, shard int, f func() error, on ...cluster.Server) error {
	return t.timePhase(PhaseStart{Name: name, Shard: shard, Servers: on}, f)
}

// timePhase runs f as phase p and records it, whether f fails or not.
func (t *timeline) timePhase(p PhaseStart, f func() error) error {
	name, shard := p.Name, p.Shard
	if t.watch != nil {
		t.watch.PhaseBegan(p)
	}
	start := time.Now()
	err := f()
	t.mu.Lock()
	t.phases = append(t.phases, Phase{Name: name, Shard: shard, Start: start, End: time.Now()})
	t.mu.Unlock()
	if t.watch != nil {
		t.watch.PhaseEnded(name, shard)
	}
	switch {
	case err == nil:
		return nil
	case shard == AllShards:
		return fmt.Errorf("%s: %w", name, err)
	default:
		return fmt.Errorf("%s on shard %d: %w", name, shard, err)
	}
}

// retried records a step retried.
func (t *timeline) retried(r Retry) {
	t.mu.Lock()
	t.retries = append(t.retries, r)
	t.mu.Unlock()
}

// result returns the result of a restore by strategy: its phases ordered by start, its retries
// in the order they happened, and its tenants.
func (t *timeline) result(strategy string, tenants []TenantResult) Result {
	t.mu.Lock()
	retries := slices.Clone(t.retries)
	t.mu.Unlock()
	slices.SortStableFunc(retries, func(a, b Retry) int { return a.At.Compare(b.At) })
	return Result{Strategy: strategy, Phases: t.sorted(), Tenants: tenants, Retries: retries}
}

// sorted returns the phases ordered by start.
func (t *timeline) sorted() []Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.phases)
	slices.SortStableFunc(out, func(a, b Phase) int { return a.Start.Compare(b.Start) })
	return out
}

// affectedShards returns the shards that hold affected tenants, ascending.
func affectedShards(rec incident.Record) []int {
	var out []int
	for _, t := range rec.Affected {
		if !slices.Contains(out, t.Shard) {
			out = append(out, t.Shard)
		}
	}
	slices.Sort(out)
	return out
}

// perShard runs f for every affected shard in parallel, handing it the shard's harms in WAL
// order, and collects the tenants' results in tenant order. A record with an affected shard it
// has no harm on is refused before any shard starts. The first error cancels the other shards
// and is returned together with the results of every shard: f returns, with its error, the
// results it committed, and a restore that stopped half-way must still say what it changed.
func perShard(ctx context.Context, rec incident.Record,
	f func(ctx context.Context, shard int, harms []incident.Harm) ([]TenantResult, error)) ([]TenantResult, error) {
	shards := affectedShards(rec)
	harms := make([][]incident.Harm, len(shards))
	for i, shard := range shards {
		if harms[i] = rec.HarmsOn(shard); len(harms[i]) == 0 {
			return nil, fmt.Errorf("restore shard %d: the incident record has no harm on it", shard)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([][]TenantResult, len(shards))
	var (
		mu    sync.Mutex
		first error // the error that cancelled the others, not one the cancel caused
	)
	var wg sync.WaitGroup
	for i, shard := range shards {
		wg.Go(func() {
			var err error
			if results[i], err = f(ctx, shard, harms[i]); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	out := slices.Concat(results...)
	slices.SortStableFunc(out, func(a, b TenantResult) int { return cmp.Compare(a.ID, b.ID) })
	return out, first
}
