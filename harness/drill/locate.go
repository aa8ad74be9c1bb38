package drill

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	truth := *r.out.Incident
	l := compareLocated(truth, locate.Record(truth, found), found)
	l.Reported, l.From, l.To, l.Took = rep.Tenants, rep.From, rep.To, end.Sub(start)
	l.After = end.Sub(truth.FirstNoted())
	r.out.Located = &l
	r.out.Events = append(r.out.Events, Event{Name: StepRestore + "." + StepLocate, Shard: -1, Start: start.Sub(r.start),
		End: end.Sub(r.start), At: start.UTC()})
	r.out.Notes = append(r.out.Notes, fmt.Sprintf("the team's search (pgdrill locate, %s after the harm): %s",
		l.After.Round(time.Second), l.summary(len(truth.Affected))))
}

// LocateFromIncidentFile finds the harm of the incident the incident file at path describes,
// from this process, attached to the incident's run: what a runbook's `pgdrill locate` does. It
// reads the file for the cluster, the backups and the tenants' tables, never for the harm.
func (h *Host) LocateFromIncidentFile(ctx context.Context, path string, rep incident.Ticket) ([]locate.Finding, error) {
	f, err := restore.ReadIncidentFile(path)
	if err != nil {
		return nil, exitcode.With(err, exitcode.InvalidInput)
	}
	p, err := h.localProvider(ctx)
	if err != nil {
		return nil, err
	}
	c, err := p.Attach(ctx, f.RunID)
	if c != nil {
		defer func() {
			if derr := c.Destroy(context.WithoutCancel(ctx)); derr != nil {
				h.log.Error("could not remove this search's sidecars", "err", derr)
			}
		}()
	}
	if err != nil {
		return nil, exitcode.With(err, exitcode.HarnessError)
	}
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
