package restore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A merge copies a group's rows into a table that held none of them with the table's row-by-row
// foreign-key triggers off (session_replication_role = replica, as pg_restore
// --disable-triggers and logical replication load rows), and checks each foreign key once for
// the whole group before the commit: one statement per key, looking each distinct key up once,
// instead of a trigger call and a query per row and key, which were two thirds of a large
// tenant's merge. The parents the rows reference are locked FOR KEY SHARE, as the row-by-row
// check locks them, so that nobody deletes one before the commit. It is done only where nothing
// else is skipped with the triggers: the role is a superuser (who alone may set the parameter),
// the table is a plain one, every trigger on it is a foreign key's own (none of the user's, no
// deferred uniqueness check), and no key is MATCH FULL.

// catalogFK is one foreign key of a live table, as the live catalog has it: the model may lag
// behind a schema changed since the fill.
type catalogFK struct {
	name    string
	columns []string // quoted
	// parent is the referenced table as regclass prints it (quoted, qualified where needed);
	// only says to read it without its inheritors, unless it is partitioned, as the row-by-row
	// check reads it.
	parent string
	only   bool
	refs   []string // quoted
}

// groupCheck is the set-based check still owed for the rows a merge copied into one table: of
// the group's rows there (ofGroup, a FROM ... WHERE of the table under alias l, taking the
// group's ids as $1), none may reference a parent that is not there.
type groupCheck struct {
	table   string
	ofGroup string
	fks     []catalogFK
}

// bulkForeignKeys returns the foreign keys of the live table (quoted, qualified) and whether its
// rows may be copied with the row-by-row checks off and checked by groupCheck instead.
func bulkForeignKeys(ctx context.Context, tx pgx.Tx, table string) ([]catalogFK, bool, error) {
	var may bool
	if err := tx.QueryRow(ctx, `SELECT pg_catalog.current_setting('is_superuser') = 'on'
		AND c.relkind = 'r'
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_proc p ON p.oid = g.tgfoid
			WHERE g.tgrelid = c.oid AND NOT (g.tgisinternal AND p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
				AND p.proname LIKE 'RI\_FKey\_%'))
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confmatchtype = 'f')
		FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.regclass`, table).Scan(&may); err != nil {
		return nil, false, fmt.Errorf("look up triggers of %s: %w", table, err)
	}
	if !may {
		return nil, false, nil
	}
	rows, err := tx.Query(ctx, `SELECT k.conname::pg_catalog.text,
		ARRAY(SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY u(n, i)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
		k.confrelid::pg_catalog.regclass::pg_catalog.text, r.relkind <> 'p',
		ARRAY(SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY u(n, i)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)
		FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class r ON r.oid = k.confrelid
		WHERE k.conrelid = $1::pg_catalog.regclass AND k.contype = 'f' ORDER BY k.conname`, table)
	if err != nil {
		return nil, false, fmt.Errorf("look up foreign keys of %s: %w", table, err)
	}
	var fks []catalogFK
	var fk catalogFK
	if _, err := pgx.ForEachRow(rows, []any{&fk.name, &fk.columns, &fk.parent, &fk.only, &fk.refs}, func() error {
		fks = append(fks, fk)
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("look up foreign keys of %s: %w", table, err)
	}
	return fks, true, nil
}

// replicaRole turns the row-by-row foreign-key triggers off (on) or back on (off) for the rest of
// the transaction.
func replicaRole(ctx context.Context, tx pgx.Tx, on bool) error {
	role := "origin"
	if on {
		role = "replica"
	}
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = "+role); err != nil {
		return fmt.Errorf("set session_replication_role to %s: %w", role, err)
	}
	return nil
}

// run locks the parents the group's rows reference and fails, naming the key, when any row
// references a parent that is not there. Each distinct key is looked up in the parent's index,
// as the row-by-row check looks it up, and locked there: a join the planner hashes would read
// the whole parent table for a group of a few tenants. A row with a null in its key references
// nothing (MATCH SIMPLE).
func (c groupCheck) run(ctx context.Context, tx pgx.Tx, ids []int64) error {
	for _, fk := range c.fks {
		var keys, set, match []string
		for i, col := range fk.columns {
			keys = append(keys, "l."+col+" AS k"+strconv.Itoa(i))
			set = append(set, "l."+col+" IS NOT NULL")
			match = append(match, "fk_parent."+fk.refs[i]+" = k.k"+strconv.Itoa(i))
		}
		parent := fk.parent
		if fk.only {
			parent = "ONLY " + parent
		}
		var missing int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT DISTINCT "+strings.Join(keys, ", ")+" FROM "+c.ofGroup+" AND "+strings.Join(set, " AND ")+
			") k LEFT JOIN LATERAL (SELECT true AS found FROM "+parent+" fk_parent WHERE "+strings.Join(match, " AND ")+
			" FOR KEY SHARE OF fk_parent) p ON true WHERE p.found IS NULL", ids).Scan(&missing); err != nil {
			return fmt.Errorf("check foreign key %s of %s: %w", fk.name, c.table, err)
		}
		if missing > 0 {
			return fmt.Errorf("check foreign key %s of %s: restored rows reference %d keys that %s does not hold",
				fk.name, c.table, missing, fk.parent)
		}
	}
	return nil
}
