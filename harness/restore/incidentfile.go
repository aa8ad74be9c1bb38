package restore

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// The environment a runbook gets, and `pgdrill restore` reads.
const (
	// IncidentFileEnv names the IncidentFile (JSON) describing the incident.
	IncidentFileEnv = "PGDRILL_INCIDENT_FILE"
	// CatalogDSNEnv is the catalog's connection URL: where the tenant directory is.
	CatalogDSNEnv = "PGDRILL_CATALOG_DSN"
	// AffectedTenantsEnv lists the affected tenants' ids, ascending, comma-separated.
	AffectedTenantsEnv = "PGDRILL_AFFECTED_TENANTS"
	// WorkDirEnv is a fresh scratch directory, removed when the runbook ends.
	WorkDirEnv = "PGDRILL_WORKDIR"
)

// IncidentFileVersion is the version of the IncidentFile format written here;
// ReadIncidentFile refuses any other, so a runbook never misreads a file of another pgdrill.
const IncidentFileVersion = 2

// IncidentFile is everything a responder needs to bring an incident's tenants back, by hand or
// by script: what was harmed and when (each harmful transaction's xid, LSN, recovery target and
// commit time), where the catalog and every shard are, and where each shard's base backup and
// WAL archive are. A runbook gets it through IncidentFileEnv; `pgdrill restore` reads it back to
// run a built-in strategy against the same incident.
type IncidentFile struct {
	Version int             `json:"version"`
	RunID   string          `json:"run_id"`
	Kind    string          `json:"kind"`
	Layout  fixtures.Layout `json:"layout"`
	// Model is the tenancy model of the tenants' tables: every table, its keys, its foreign
	// keys and how its rows belong to a tenant, in the order a restore copies them.
	Model *fixtures.Model `json:"model"`
	// Affected are the harmed tenants with their shards, ordered by id.
	Affected []incident.Tenant `json:"affected"`
	// Harms are the harmful transactions, ordered by shard and WAL position.
	Harms   []incident.Harm    `json:"harms"`
	Catalog cluster.ServerInfo `json:"catalog"`
	// Shards are every shard of the cluster, index i at position i.
	Shards []ShardFacts `json:"shards"`
	// Ticket is set in a blind drill: what the tickets say (some victims, about when). Affected
	// and Harms are then empty: the runbook finds them (`pgdrill locate`; `pgdrill restore`
	// locates them itself).
	Ticket *incident.Ticket `json:"ticket,omitempty"`
}

// ShardFacts is one shard as a responder needs it: where it runs and archives its WAL (the
// server's info, WALArchive included), and the base backup a restore starts from.
type ShardFacts struct {
	cluster.ServerInfo
	// BaseBackup is the shard's base backup from the protection phase; absent when none was
	// taken.
	BaseBackup *cluster.Backup `json:"base_backup,omitempty"`
}

// NewIncidentFile describes an incident of env's cluster.
func NewIncidentFile(env Env, rec incident.Record) IncidentFile {
	f := IncidentFile{Version: IncidentFileVersion, RunID: rec.RunID, Kind: rec.Kind, Layout: rec.Layout, Model: rec.Model,
		Affected: rec.Affected, Harms: rec.Harms, Catalog: env.Cluster.Catalog().Info(), Ticket: rec.Ticket}
	for i, s := range env.Cluster.Shards() {
		sf := ShardFacts{ServerInfo: s.Info()}
		if i < len(env.Protection.Backups) {
			b := env.Protection.Backups[i]
			sf.BaseBackup = &b
		}
		f.Shards = append(f.Shards, sf)
	}
	return f
}

// Record returns the incident the file describes.
func (f IncidentFile) Record() incident.Record {
	return incident.Record{Kind: f.Kind, RunID: f.RunID, Layout: f.Layout, Model: f.Model, Affected: f.Affected, Harms: f.Harms, Ticket: f.Ticket}
}

// Protection returns the base backups the file names, one per shard; empty unless every shard
// has one, as a strategy needs them all.
func (f IncidentFile) Protection() backup.Protection {
	var p backup.Protection
	for _, s := range f.Shards {
		if s.BaseBackup == nil {
			return backup.Protection{}
		}
		p.Backups = append(p.Backups, *s.BaseBackup)
	}
	return p
}

// WriteIncidentFile writes f to path as indented JSON, readable by people and scripts alike.
func WriteIncidentFile(path string, f IncidentFile) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode incident file: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write incident file: %w", err)
	}
	return nil
}

// ReadIncidentFile reads an incident file written by WriteIncidentFile.
func ReadIncidentFile(path string) (IncidentFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return IncidentFile{}, fmt.Errorf("read incident file: %w", err)
	}
	var f IncidentFile
	if err := json.Unmarshal(data, &f); err != nil {
		return IncidentFile{}, fmt.Errorf("read incident file %s: %w", path, err)
	}
	if f.Version != IncidentFileVersion {
		return IncidentFile{}, fmt.Errorf("read incident file %s: version %d, want %d", path, f.Version, IncidentFileVersion)
	}
	return f, nil
}
