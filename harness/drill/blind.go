package drill

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/locate"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

// StepLocate is a blind drill's search for the harm, inside the restore (it is time to restore).
const StepLocate = "locate"

// ticketStream is the random stream, under the drill's seed, that picks the tenants a ticket
// names: its own, so that the choice does not move when other choices do.
const ticketStream = 0x71c7e7

// ticketWindow is how far before the harm a ticket's "since about" reaches.
const ticketWindow = time.Minute

// Located is what a blind drill's restore found of the incident, against the truth.
type Located struct {
	// Reported are the tenants the tickets named; From and To the window they gave.
	Reported []int64   `json:"reported"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	// Found are the victims located; Missed the true victims it did not find (they stay lost);
	// Innocent the tenants it took for victims that were not (restored over their own writes).
	Found    []int64 `json:"found"`
	Missed   []int64 `json:"missed,omitempty"`
	Innocent []int64 `json:"innocent,omitempty"`
	// TargetsExact says every harmed shard's recovery target is the true one.
	TargetsExact bool          `json:"targets_exact"`
	Took         time.Duration `json:"took"`
	// Off says, for each harmed shard whose recovery target is not the true one, how far off it
	// is.
	Off []TargetOff `json:"off,omitempty"`
	// After is, for a game day's team, how long after the harm their search ended: how long
	// finding it took them.
	After time.Duration `json:"after,omitempty"`
}

// TargetOff is how far a located recovery target is from the true one on one shard: in WAL bytes
// and in commit time, from the true harm's start to the located one's (positive: too late, so
// rows the true harm removed are missing from what is restored; negative: too early, so writes
// made before the harm are lost). Missing says no harm was found there at all.
type TargetOff struct {
	Shard    int                    `json:"shard"`
	True     cluster.RecoveryTarget `json:"true"`
	Found    cluster.RecoveryTarget `json:"found"`
	WALBytes int64                  `json:"wal_bytes"`
	Time     time.Duration          `json:"time"`
	Missing  bool                   `json:"missing,omitempty"`
}

// String says it in words.
func (o TargetOff) String() string {
	if o.Missing {
		return fmt.Sprintf("shard %d: no harm found", o.Shard)
	}
	way := "late"
	if o.WALBytes < 0 {
		way = "early"
	}
	return fmt.Sprintf("shard %d: %d bytes of WAL (%s) %s", o.Shard, abs(o.WALBytes), abs(o.Time).Round(time.Millisecond), way)
}

// abs is |v|.
func abs[T int64 | time.Duration](v T) T {
	if v < 0 {
		return -v
	}
	return v
}

// summary says in words what was found of victims true victims.
func (l Located) summary(victims int) string {
	s := fmt.Sprintf("located %d of %d victims from %d reported tenant(s) in %s", len(l.Found)-len(l.Innocent),
		victims, len(l.Reported), l.Took.Round(time.Millisecond))
	if len(l.Missed) > 0 {
		s += fmt.Sprintf("; missed %v", l.Missed)
	}
	if len(l.Innocent) > 0 {
		s += fmt.Sprintf("; took innocent tenant(s) %v for victims", l.Innocent)
	}
	if l.TargetsExact {
		return s + "; every recovery target is the true one"
	}
	var off []string
	for _, o := range l.Off {
		off = append(off, o.String())
	}
	return s + "; recovery target off: " + strings.Join(off, "; ")
}

// blind reports whether the scenario's restore must locate the harm itself.
func (r *run) blind() bool {
	return r.cfg.Scenario.Spec.Detection.Knowledge == scenarios.KnowledgeBlind
}

// handed is what the team (a runbook, a game day's responders) is told of the incident rec: all
// of it, or in a blind drill the ticket alone, with the tables it may look in.
func (r *run) handed(rec incident.Record) incident.Record {
	if !r.blind() {
		return rec
	}
	t := r.ticket(rec)
	return incident.Record{Kind: rec.Kind, RunID: rec.RunID, Layout: rec.Layout, Model: rec.Model, Ticket: &t}
}

// ticket is what support would say of rec: a third of its victims (at least one), drawn by the
// drill's seed, and a window from a minute before the harm to now; the outcome keeps it.
func (r *run) ticket(rec incident.Record) incident.Ticket {
	ids := make([]int64, len(rec.Affected))
	for i, t := range rec.Affected {
		ids[i] = t.ID
	}
	rng := rand.New(rand.NewPCG(r.out.Seed, ticketStream))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	reported := slices.Clone(ids[:max(1, len(ids)/3)])
	slices.Sort(reported)
	t := incident.Ticket{Tenants: reported, From: rec.First().Add(-ticketWindow), To: time.Now()}
	if r.cfg.Scenario.Spec.Incident.Kind == scenarios.PurgeNotSoftDelete {
		t.Intended = incident.MeantSoftDelete // the job's own purpose is no secret
	}
	r.out.Ticket = &t
	return t
}

// locate finds the incident's harm from a ticket, as a responder must, timed as a phase of the
// restore, and returns the incident as it was located: the record the strategy restores from.
// What it found is compared with the truth in the outcome; the verification scores the restore
// against the truth whatever was located.
func (r *run) locate(ctx context.Context) (incident.Record, error) {
	truth := *r.out.Incident
	rep := r.ticket(truth)
	start := time.Now()
	found, err := locate.Find(ctx, r.c, r.prot.Backups, truth.Model, rep)
	end := time.Now()
	r.clock.Phases = append(r.clock.Phases, score.Phase{Name: StepLocate, Shard: -1, Start: start, End: end})
	if err != nil {
		r.timeSearch(start, end)
		return truth, err
	}
	rec, l := r.noteFound(rep, found, start, end)
	note := "blind: " + l.summary(len(truth.Affected))
	r.out.Notes = append(r.out.Notes, note)
	r.log.Info("located the harm", "note", note)
	if len(rec.Harms) == 0 {
		return rec, fmt.Errorf("locate the harm: nothing harmful found from tenants %v since %s", rep.Tenants, rep.From.Format(time.TimeOnly))
	}
	return rec, nil
}

// noteFound keeps a search for the harm from ticket rep, which ran from start to end and found
// found, in the outcome: on the timeline (restore.locate), and compared with the truth as its
// Located. It returns the incident as found, and the comparison.
func (r *run) noteFound(rep incident.Ticket, found []locate.Finding, start, end time.Time) (incident.Record, *Located) {
	r.timeSearch(start, end)
	truth := *r.out.Incident
	rec := locate.Record(truth, found)
	l := compareLocated(truth, rec, found)
	l.Reported, l.From, l.To, l.Took = rep.Tenants, rep.From, rep.To, end.Sub(start)
	r.out.Located = &l
	return rec, &l
}

// timeSearch puts a search for the harm, from start to end, on the timeline.
func (r *run) timeSearch(start, end time.Time) {
	r.out.Events = append(r.out.Events, Event{Name: StepRestore + "." + StepLocate, Shard: -1, Start: start.Sub(r.start),
		End: end.Sub(r.start), At: start.UTC()})
}

// compareLocated compares the victims and recovery targets located with the truth.
func compareLocated(truth, located incident.Record, found []locate.Finding) Located {
	var l Located
	isTrue := map[int64]bool{}
	for _, t := range truth.Affected {
		isTrue[t.ID] = true
	}
	got := map[int64]bool{}
	for _, t := range located.Affected {
		got[t.ID] = true
		l.Found = append(l.Found, t.ID)
		if !isTrue[t.ID] {
			l.Innocent = append(l.Innocent, t.ID)
		}
	}
	for _, t := range truth.Affected {
		if !got[t.ID] {
			l.Missed = append(l.Missed, t.ID)
		}
	}
	l.TargetsExact = true
	for _, f := range found {
		harms := truth.HarmsOn(f.Shard)
		if len(harms) == 0 {
			l.TargetsExact = l.TargetsExact && len(f.Harms) == 0
			continue
		}
		if !sameTarget(harms[0], f.RecoverTo) {
			l.TargetsExact = false
			l.Off = append(l.Off, targetOff(harms[0], f))
		}
	}
	return l
}

// targetOff measures how far finding f's recovery target is from the one before true harm h.
func targetOff(h incident.Harm, f locate.Finding) TargetOff {
	o := TargetOff{Shard: f.Shard, True: h.RecoverTo, Found: f.RecoverTo}
	if len(f.Harms) == 0 {
		o.Missing = true
		return o
	}
	got := f.Harms[0]
	if want, err := backup.ParseLSN(h.LSN); err == nil && got.FirstLSN != 0 {
		o.WALBytes = int64(got.FirstLSN) - int64(want)
	}
	o.Time = got.Time.Sub(h.Time)
	return o
}

// sameTarget reports whether target got brings back what the true target before harm h does: the
// same transaction; or, for a target in the WAL, a position no earlier than the true one (taken
// just before the harm) and before the harm's commit, where recovery stops short of the harm
// and keeps every other transaction that committed before it.
func sameTarget(h incident.Harm, got cluster.RecoveryTarget) bool {
	want := h.RecoverTo
	switch {
	case want == cluster.RecoveryTarget{}: // everything archived: a lost shard
		return got == want
	case want.XID != "":
		return got.XID == want.XID
	}
	lo, err1 := backup.ParseLSN(want.LSN)
	hi, err2 := backup.ParseLSN(h.CommitLSN)
	at, err3 := backup.ParseLSN(got.LSN)
	return err1 == nil && err2 == nil && err3 == nil && lo <= at && at < hi
}
