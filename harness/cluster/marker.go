package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MarkerTable is the table that marks a database as created by pgdrill for one run. Every
// destructive operation checks it first, so that a drill tool pointed at the wrong server can
// never become the next incident.
const MarkerTable = "pgdrill_meta"

// markerRelation is MarkerTable qualified by the schema pgdrill creates it in, so that marker
// checks find it whatever the session's search path (the verifier's is pg_catalog alone).
const markerRelation = "public." + MarkerTable

// ErrNotMarked is returned for a database that carries no pgdrill marker: pgdrill did not create
// it and will not harm it.
var ErrNotMarked = errors.New("database carries no pgdrill marker")

// ErrForeignRun is returned for a database marked by another run of pgdrill.
var ErrForeignRun = errors.New("database belongs to another pgdrill run")

// Conn is what marker checks need from a connection: *pgx.Conn, *pgxpool.Pool and pgx.Tx all fit.
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Mark stamps the connected database with the run's marker. It is idempotent for the same run and
// refuses to re-stamp a database that another run marked.
func Mark(ctx context.Context, conn Conn, runID string, role Role) error {
	ddl := `CREATE TABLE IF NOT EXISTS ` + markerRelation + ` (
		run_id     text        NOT NULL PRIMARY KEY,
		role       text        NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now()
	)`
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("create marker table: %w", err)
	}
	var owner string
	err := conn.QueryRow(ctx, `INSERT INTO `+markerRelation+` (run_id, role) VALUES ($1, $2)
		ON CONFLICT (run_id) DO UPDATE SET role = EXCLUDED.role
		RETURNING (SELECT coalesce(string_agg(run_id, ','), '') FROM `+markerRelation+` WHERE run_id <> $1)`,
		runID, string(role)).Scan(&owner)
	if err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	if owner != "" {
		return fmt.Errorf("mark database for run %s: %w (%s)", runID, ErrForeignRun, owner)
	}
	return nil
}

// CreateMarkedDatabase creates database name on s and stamps it with runID's marker, returning
// its connection string. Every database pgdrill creates must carry the marker before anything
// else can harm it (RequireMarker), and every provider creates databases the same way, over SQL.
func CreateMarkedDatabase(ctx context.Context, s Server, runID, name string) (string, error) {
	err := WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, s.Name(), err)
	}
	dsn := s.DSNFor(name)
	if err := WithConn(ctx, dsn, func(conn *pgx.Conn) error { return Mark(ctx, conn, runID, s.Role()) }); err != nil {
		return "", fmt.Errorf("mark database %s on %s: %w", name, s.Name(), err)
	}
	return dsn, nil
}

// RequireMarker returns nil only when the connected database carries runID's marker and no other.
// Call it before anything destructive: deleting rows, dropping objects, restoring over data.
func RequireMarker(ctx context.Context, conn Conn, runID string) error {
	var db string
	var present bool
	if err := conn.QueryRow(ctx,
		`SELECT current_database(), to_regclass($1) IS NOT NULL`, markerRelation).Scan(&db, &present); err != nil {
		return fmt.Errorf("look up marker: %w", err)
	}
	if !present {
		return fmt.Errorf("refuse database %q: %w (table %s is missing; pgdrill only changes databases it created)",
			db, ErrNotMarked, MarkerTable)
	}
	var mine bool
	var others *string
	if err := conn.QueryRow(ctx,
		`SELECT coalesce(bool_or(run_id = $1), false), string_agg(run_id, ',') FILTER (WHERE run_id <> $1) FROM `+markerRelation,
		runID).Scan(&mine, &others); err != nil {
		return fmt.Errorf("read marker of database %q: %w", db, err)
	}
	if others != nil {
		return fmt.Errorf("refuse database %q of run %s: %w", db, *others, ErrForeignRun)
	}
	if !mine {
		return fmt.Errorf("refuse database %q: %w (no row for run %s in %s)", db, ErrNotMarked, runID, MarkerTable)
	}
	return nil
}
