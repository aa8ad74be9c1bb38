// Package incident breaks a cluster the way real admin scripts do, and records exactly what each
// harmful transaction did: its shard, transaction id, WAL position and time, and which tenants and
// how many rows it touched. Restores aim just before those transactions; the score compares the
// restored state with what the record says was lost.
package incident

import (
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Record is what an incident harmed: the facts a responder needs, and the ones a restore
// strategy aims by.
type Record struct {
	// Kind names the incident ("wrong-id-deletion", ...).
	Kind   string          `json:"kind"`
	RunID  string          `json:"run_id"`
	Layout fixtures.Layout `json:"layout"`
	// Model is the tenancy model of the harmed tables, as the catalog records it: what a
	// restore copies, in which order, and how it finds a tenant's rows.
	Model *fixtures.Model `json:"model"`
	// Affected are the tenants whose data was harmed, ordered by id.
	Affected []Tenant `json:"affected"`
	// Harms are the harmful transactions, ordered by shard and, within a shard, by WAL position.
	Harms []Harm `json:"harms"`
	// Ticket is set in what a blind restore is handed instead of the incident: what the tickets
	// say. Affected and Harms are then empty: finding them is the restore's work.
	Ticket *Ticket `json:"ticket,omitempty"`
}

// Tenant is one affected tenant and the shard it lives on.
type Tenant struct {
	ID    int64 `json:"id"`
	Shard int   `json:"shard"`
}

// Ticket is what a responder knows when the tickets come in: some of the tenants that lost data,
// and about when. A blind drill hands the restore a ticket instead of the incident.
type Ticket struct {
	Tenants []int64   `json:"tenants"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// Intended is what the failing job was meant to do, when the tickets say so: MeantSoftDelete
	// for a job that purged what it should only have marked deleted. Empty otherwise.
	Intended string `json:"intended,omitempty"`
}

// MeantSoftDelete is Ticket.Intended of a job that should have soft-deleted the rows it purged:
// the rows come back marked deleted at the purge's commit (Harm.IntendedSoftDeleteMark).
const MeantSoftDelete = "soft-delete"

// Harm is one harmful transaction on one shard.
type Harm struct {
	Shard int `json:"shard"`
	// Tenants are the tenants this transaction harmed.
	Tenants []int64 `json:"tenants"`
	// XID is the harmful transaction's id.
	XID string `json:"xid"`
	// LSN is the WAL insert position just before the harm began (pg_current_wal_insert_lsn: the
	// write position, pg_current_wal_lsn, lags behind asynchronous commits, so WAL written
	// before a later reading could still be missing from it).
	LSN string `json:"lsn"`
	// RecoverTo is the recovery target (exclusive) that brings back the state the harm destroyed,
	// with every other transaction committed before it: the transaction id, where the harm's
	// damage happens at its commit; the start of its first WAL record, where Postgres acts before
	// the commit (DROP DATABASE invalidates the database and removes its files first).
	RecoverTo cluster.RecoveryTarget `json:"recover_to"`
	// CommitLSN is the WAL insert position just after the harm committed.
	CommitLSN string `json:"commit_lsn"`
	// Time is when the harm committed, by the server's clock.
	Time time.Time `json:"time"`
	// Noted is when the harness saw the commit return, by its own (monotonic) clock: what RTO and
	// RPO count from, so that no server's clock (skewed, or set by the team being scored) decides
	// them. It means nothing outside the process that injected the harm and is not written out.
	Noted time.Time `json:"-"`
	// SoftDeleteMark is the deleted_at value a soft delete wrote, zero for other harms: the
	// harm's tenants' rows holding exactly this value are the ones it marked, so an undo clears
	// them and leaves every row deleted before (or after) it deleted.
	SoftDeleteMark time.Time `json:"soft_delete_mark,omitzero"`
	// IntendedSoftDeleteMark is, for a purge that should have been a soft delete
	// (purge-not-soft-delete), the deleted_at value the job should have written: the harm's
	// commit time. The truth is the harm's tenants' rows as they were, each one not deleted yet
	// marked deleted with it, and a restore must bring them back so — the usual undo window
	// still works on them.
	IntendedSoftDeleteMark time.Time `json:"intended_soft_delete_mark,omitzero"`
	// ServerLost says the shard's server and data are gone (shard-loss): no transaction did the
	// harm, RecoverTo is empty (everything archived) and nothing more can be archived from it.
	ServerLost bool `json:"server_lost,omitempty"`
	// LastArchivedWAL is, for a lost server, the newest WAL segment its archive held when it was
	// lost: writes in later WAL died with it.
	LastArchivedWAL string `json:"last_archived_wal,omitempty"`
	// Column is set when the harm overwrote or dropped one column instead of removing rows.
	Column *ColumnHarm `json:"column,omitempty"`
	// Rows counts the rows the harm changed or removed. Under the database layout they are
	// counted just before DROP DATABASE, which cannot share a transaction with the count, so
	// writes in between make it approximate.
	Rows int64 `json:"rows"`
}

// OnShard returns the affected tenants of one shard.
func (r Record) OnShard(shard int) []Tenant {
	var out []Tenant
	for _, t := range r.Affected {
		if t.Shard == shard {
			out = append(out, t)
		}
	}
	return out
}

// HarmsOn returns the harms on one shard, in WAL order.
func (r Record) HarmsOn(shard int) []Harm {
	var out []Harm
	for _, h := range r.Harms {
		if h.Shard == shard {
			out = append(out, h)
		}
	}
	return out
}

// First is the earliest harm's commit time, by the server's clock: when the incident happened,
// as logs and people date it.
func (r Record) First() time.Time { return r.earliest(func(h Harm) time.Time { return h.Time }) }

// FirstNoted is when the harness saw the earliest harm commit, by its own clock: where RTO and
// RPO start.
func (r Record) FirstNoted() time.Time { return r.earliest(func(h Harm) time.Time { return h.Noted }) }

// earliest returns the earliest of the harms' times as at reads them.
func (r Record) earliest(at func(Harm) time.Time) time.Time {
	var first time.Time
	for _, h := range r.Harms {
		if t := at(h); first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// IntendedMarks returns, by tenant, the soft-delete mark a purge should have written instead of
// purging (Harm.IntendedSoftDeleteMark), and when the harness saw that harm commit; empty for
// every other incident.
func (r Record) IntendedMarks() map[int64]IntendedMark {
	out := map[int64]IntendedMark{}
	for _, h := range r.Harms {
		if h.IntendedSoftDeleteMark.IsZero() {
			continue
		}
		for _, id := range h.Tenants {
			out[id] = IntendedMark{Mark: h.IntendedSoftDeleteMark, Noted: h.Noted}
		}
	}
	return out
}

// IntendedMark is the soft delete a purge should have been, for one tenant.
type IntendedMark struct {
	// Mark is the deleted_at value the rows should have been given.
	Mark time.Time
	// Noted is when the harness saw the purge commit, on its own clock: writes acknowledged
	// before it came before the soft delete, later ones after it.
	Noted time.Time
}
