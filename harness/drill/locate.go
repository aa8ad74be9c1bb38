package drill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/locate"
	"github.com/pgdrill/pgdrill/harness/restore"
)

// Ticket is what a responder knows when the tickets come in (incident.Ticket).
type Ticket = incident.Ticket

// MeantSoftDelete is a ticket's Intended for a job that should only have soft-deleted what it
// purged (incident.MeantSoftDelete).
const MeantSoftDelete = incident.MeantSoftDelete

// Finding is what locating the harm found on one shard (locate.Finding).
type Finding = locate.Finding

// Locate finds the incident's harm from what a responder knows (a ticket: reported tenants, a time
// window), on every shard of the game day, as `pgdrill locate` asks: see locate.Find. It works
// from the WAL archives and the servers alone; the incident record only tells it the tenants'
// tables, never the harm.
func (g *GameDay) Locate(ctx context.Context, rep incident.Ticket) ([]locate.Finding, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.r
	if r.out.Incident == nil {
		return nil, errNoIncident
	}
	start := time.Now()
	found, err := locate.Find(ctx, r.c, r.prot.Backups, r.out.Incident.Model, rep)
	if err != nil {
		return nil, exitcode.With(err, exitcode.HarnessError)
	}
	r.noteSearch(rep, found, start, time.Now())
	return found, nil
}

// noteSearch keeps what a game day's team found with `pgdrill locate` (rep, searched from start
// to end), against the truth: the latest search is the outcome's Located, and each one is a
// phase on the timeline and a note, so that the score says what the team found and how long it
// took them.
func (r *run) noteSearch(rep incident.Ticket, found []locate.Finding, start, end time.Time) {
	_, l := r.noteFound(rep, found, start, end)
	l.After = end.Sub(r.out.Incident.FirstNoted())
	r.out.Notes = append(r.out.Notes, fmt.Sprintf("the team's search (pgdrill locate, %s after the harm): %s",
		l.After.Round(time.Second), l.summary(len(r.out.Incident.Affected))))
}

// LocateFromIncidentFile finds the harm of the incident the incident file at path describes,
// from this process, attached to the incident's run: what a runbook's `pgdrill locate` does. It
// reads the file for the cluster, the backups and the tenants' tables, never for the harm.
func (h *Host) LocateFromIncidentFile(ctx context.Context, path string, rep incident.Ticket) ([]locate.Finding, error) {
	f, c, done, err := h.attachIncident(ctx, path, "search")
	if err != nil {
		return nil, err
	}
	defer done()
	backups := f.Protection().Backups
	if len(backups) == 0 {
		return nil, exitcode.With(errors.New("locate harm: the incident file names no base backup of every shard"), exitcode.InvalidInput)
	}
	found, err := locate.Find(ctx, c, backups, f.Model, rep)
	if err != nil {
		return nil, exitcode.With(fmt.Errorf("locate harm of run %s: %w", f.RunID, err), exitcode.HarnessError)
	}
	return found, nil
}

// attachIncident reads the incident file at path and attaches to its run's cluster, for a
// runbook's `pgdrill locate` or `pgdrill restore` (what names which, in the log); done removes
// what this process added to the cluster (its sidecars). A file that cannot be read is invalid
// input.
func (h *Host) attachIncident(ctx context.Context, path, what string) (restore.IncidentFile, cluster.Cluster, func(), error) {
	f, err := restore.ReadIncidentFile(path)
	if err != nil {
		return f, nil, nil, exitcode.With(err, exitcode.InvalidInput)
	}
	c, err := h.attach(ctx, f.RunID)
	done := func() {
		if c == nil {
			return
		}
		if derr := c.Destroy(context.WithoutCancel(ctx)); derr != nil {
			h.log.Error("could not remove this "+what+"'s sidecars", "err", derr)
		}
	}
	if err != nil {
		done()
		return f, nil, nil, exitcode.With(err, exitcode.HarnessError)
	}
	return f, c, done, nil
}

// attach returns a handle on run id, which another process owns, by the provider its record
// names.
func (h *Host) attach(ctx context.Context, id string) (cluster.Cluster, error) {
	store, err := h.store()
	if err != nil {
		return nil, err
	}
	if rec, err := store.Load(id); err == nil && rec.Provider == ProviderContainer {
		p, err := h.containerProvider(ctx)
		if err != nil {
			return nil, err
		}
		return p.Attach(ctx, id)
	}
	p, err := h.localProvider(ctx)
	if err != nil {
		return nil, err
	}
	return p.Attach(ctx, id)
}
