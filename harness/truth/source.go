package truth

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
)

// Source is a set of servers to read the truth from: a live cluster, or sidecars restored from
// its backups. Plain connection strings keep truth independent of how servers are started.
type Source struct {
	// Layout is how tenants are stored; the catalog records it (fixtures.ReadDataset).
	Layout fixtures.Layout
	// Model is the tenancy model of the tenants' tables: which tables to read and how a row
	// finds its tenant.
	Model *fixtures.Model
	// Catalog connects to the catalog's database, where the tenant directory is.
	Catalog string
	// Shards connect to each shard's fixtures.SharedDatabase, index i at position i.
	Shards []string
}

// sessionParams make a row's text, and so its hash, the same whatever the server's or the
// user's defaults (timestamps print in UTC, dates in ISO), and keep what the verified databases
// hold from steering the session that reads them: the search path is pg_catalog alone, so no
// function, operator, type or table a restore created can stand in for a built-in one, and
// row security is off, so a policy cannot hide rows from the verifier (a query it would filter
// fails instead). Sent in the startup packet, they override what a role or a database sets.
var sessionParams = map[string]string{
	"timezone":           "UTC",
	"datestyle":          "ISO, MDY",
	"intervalstyle":      "postgres",
	"extra_float_digits": "1",
	"bytea_output":       "hex",
	"search_path":        "pg_catalog, pg_temp",
	"row_security":       "off",
}

// ConfigureSession sets the session parameters under which row hashes are comparable and the
// verified data cannot steer the session; every connection that computes RowHashSQL must use
// it, and names every table it reads with its schema.
func ConfigureSession(cfg *pgx.ConnConfig) {
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
}

// Connect opens a session set up by ConfigureSession on the server at dsn, in database (the
// DSN's own when empty): how everything that computes or compares row hashes connects.
func Connect(ctx context.Context, dsn, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	if database != "" {
		cfg.Database = database
	}
	ConfigureSession(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database %s: %w", cfg.Database, err)
	}
	return conn, nil
}

// connect opens a session on database of shard i, or on the shard's own database when database
// is empty.
func (s Source) connect(ctx context.Context, shard int, database string) (*pgx.Conn, error) {
	conn, err := Connect(ctx, s.Shards[shard], database)
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", shard, err)
	}
	return conn, nil
}

// containers lists the tenant schemas (schema layout) or databases (database layout) on a
// shard, by tenant id.
func (s Source) containers(ctx context.Context, conn *pgx.Conn) (map[int64]string, error) {
	q := `SELECT nspname::pg_catalog.text FROM pg_catalog.pg_namespace WHERE nspname ~ $1`
	if s.Layout == fixtures.LayoutDatabase {
		q = `SELECT datname::pg_catalog.text FROM pg_catalog.pg_database WHERE datname ~ $1`
	}
	names, err := queryStrings(ctx, conn, q, fixtures.TenantContainerPattern)
	if err != nil {
		return nil, fmt.Errorf("list tenant %ss: %w", s.Layout, err)
	}
	out := make(map[int64]string, len(names))
	for _, n := range names {
		if id, ok := fixtures.ParseTenantContainer(n); ok {
			out[id] = n
		}
	}
	return out, nil
}

// presentTables lists which of the model's tenant tables exist in schema, in model order: an
// incident may have dropped some, and a missing table is missing rows, not an error.
func (s Source) presentTables(ctx context.Context, conn *pgx.Conn, schema string) ([]fixtures.Table, error) {
	names, err := queryStrings(ctx, conn, `SELECT c.relname::pg_catalog.text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`, schema)
	if err != nil {
		return nil, fmt.Errorf("list tables of schema %s: %w", schema, err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	var out []fixtures.Table
	for _, t := range s.Model.TenantTables() {
		if have[t.Name] {
			out = append(out, t)
		}
	}
	return out, nil
}

func queryStrings(ctx context.Context, conn *pgx.Conn, sql string, args ...any) ([]string, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
