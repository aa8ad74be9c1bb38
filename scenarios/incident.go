package scenarios

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/goccy/go-yaml"
)

// IncidentKind names a built-in incident: a way real admin scripts harm tenants.
type IncidentKind string

// The incidents (issue 5, Incidents).
const (
	// WrongIDDeletion: a cleanup job meant for app-installation ids is handed site ids and hard
	// deletes those sites' tenants across shards, contact data included (Atlassian, April 2022).
	WrongIDDeletion IncidentKind = "wrong-id-deletion"
	// PurgeNotSoftDelete: a deactivation job handed the right tenants purges their rows where it
	// should only have marked them deleted. The truth is those tenants soft-deleted: a restore
	// brings their rows back marked (deleted_at set to the job's time), so the usual undo window
	// still works.
	PurgeNotSoftDelete IncidentKind = "purge-not-soft-delete"
	// WrongIDSoftDelete: the cleanup job handed the wrong ids only marks their rows deleted, as
	// a job with universal soft deletes does: every row is still there, and clearing the marks
	// (soft-delete-undo) restores the tenants without a backup.
	WrongIDSoftDelete IncidentKind = "wrong-id-soft-delete"
	// UpdateWithoutWhere: an UPDATE missing part of its WHERE overwrites a column of every row
	// of a tenant's table.
	UpdateWithoutWhere IncidentKind = "update-without-where"
	// BadMigration: a DDL run on every shard drops or rewrites a column.
	BadMigration IncidentKind = "bad-migration"
	// ShardLoss: one shard's server and data are destroyed.
	ShardLoss IncidentKind = "shard-loss"
	// RingRollout: the deletion script runs in rings (canary, small, rest) with guards between
	// them that halt it when the damage is abnormal.
	RingRollout IncidentKind = "ring-rollout"
)

// IncidentKinds lists the incidents.
func IncidentKinds() []IncidentKind {
	return []IncidentKind{WrongIDDeletion, WrongIDSoftDelete, PurgeNotSoftDelete, UpdateWithoutWhere, BadMigration,
		ShardLoss, RingRollout}
}

// Incident is the harm the drill does. Kind and After apply to every kind; the other fields are
// parameters of some kinds only (see incidentParams), and giving one to another kind is an
// error rather than silently ignored.
type Incident struct {
	// Kind is what happens. Required.
	Kind IncidentKind `yaml:"kind" json:"kind"`
	// After is how long after the workload starts the incident happens. Default: 10s.
	After Duration `yaml:"after" json:"after"`
	// Fraction is the share of tenants the script targets (0 < fraction <= 1).
	// wrong-id-deletion, wrong-id-soft-delete, purge-not-soft-delete: default 0.03; ring-rollout:
	// default 0.1.
	Fraction float64 `yaml:"fraction" json:"fraction"`
	// Tenants is how many tenants' rows are overwritten. update-without-where; default 1.
	Tenants int `yaml:"tenants" json:"tenants"`
	// Table is the table harmed. update-without-where, bad-migration; default issues.
	Table string `yaml:"table" json:"table"`
	// Column is the column overwritten, dropped or rewritten; not a primary-key column.
	// update-without-where: default summary; bad-migration: default description.
	Column string `yaml:"column" json:"column"`
	// Migration is what the DDL does. bad-migration; default drop-column.
	Migration Migration `yaml:"migration" json:"migration"`
	// Shard is the index of the shard destroyed. shard-loss; default 0.
	Shard int `yaml:"shard" json:"shard"`
	// Rings are the rollout's rings, in order; their fractions (shares of the targeted tenants)
	// add up to 1. ring-rollout; default canary 5%, early 25%, rest 70%.
	Rings []Ring `yaml:"rings" json:"rings"`
}

// Migration names what a bad migration does to its column.
type Migration string

// The migrations.
const (
	// DropColumn drops the column: its data is gone on every shard.
	DropColumn Migration = "drop-column"
	// RewriteColumn rewrites the column's values in place (a bad backfill).
	RewriteColumn Migration = "rewrite-column"
)

// Migrations lists the migrations, default first.
func Migrations() []Migration { return []Migration{DropColumn, RewriteColumn} }

// Ring is one stage of a ring rollout.
type Ring struct {
	// Name labels the ring in the scorecard ("contained at ring early"). Required, unique.
	Name string `yaml:"name" json:"name"`
	// Fraction is the ring's share of the targeted tenants (0 < fraction <= 1).
	Fraction float64 `yaml:"fraction" json:"fraction"`
	// Guard halts the rollout after this ring when its damage is abnormal. Not allowed on the
	// last ring, after which nothing is left to halt.
	Guard *Guard `yaml:"guard,omitempty" json:"guard,omitempty"`
}

// Guard is the check between two rings.
type Guard struct {
	// MaxRows halts the rollout when the ring deleted more rows than this (at least 1).
	MaxRows int64 `yaml:"maxRows" json:"maxRows"`
}

// The incident's YAML keys, as in the struct tags.
const (
	keyKind      = "kind"
	keyAfter     = "after"
	keyFraction  = "fraction"
	keyTenants   = "tenants"
	keyTable     = "table"
	keyColumn    = "column"
	keyMigration = "migration"
	keyShard     = "shard"
	keyRings     = "rings"
)

// incidentParams lists the parameters each kind takes, in the order they are shown.
var incidentParams = map[IncidentKind][]string{
	WrongIDDeletion:    {keyFraction},
	PurgeNotSoftDelete: {keyFraction},
	WrongIDSoftDelete:  {keyFraction},
	UpdateWithoutWhere: {keyTenants, keyTable, keyColumn},
	BadMigration:       {keyMigration, keyTable, keyColumn},
	ShardLoss:          {keyShard},
	RingRollout:        {keyFraction, keyRings},
}

// fields returns the incident's kind, after and its kind's parameters, in order, so that it is
// shown without the parameters of other kinds (a zero there would read as a setting).
func (in Incident) fields() yaml.MapSlice {
	out := yaml.MapSlice{{Key: keyKind, Value: in.Kind}, {Key: keyAfter, Value: in.After}}
	for _, p := range incidentParams[in.Kind] {
		var v any
		switch p {
		case keyFraction:
			v = in.Fraction
		case keyTenants:
			v = in.Tenants
		case keyTable:
			v = in.Table
		case keyColumn:
			v = in.Column
		case keyMigration:
			v = in.Migration
		case keyShard:
			v = in.Shard
		case keyRings:
			v = in.Rings
		}
		out = append(out, yaml.MapItem{Key: p, Value: v})
	}
	return out
}

// MarshalYAML writes only the parameters the incident's kind takes.
func (in Incident) MarshalYAML() (any, error) { return in.fields(), nil }

// MarshalJSON writes only the parameters the incident's kind takes, in the YAML's order.
func (in Incident) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range in.fields() {
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("marshal incident %s: %w", f.Key, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", f.Key, v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
