package truth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
)

// Write is one write to a table, as a workload's ledger records it: what Replay applies.
type Write struct {
	// Key is the row's primary key as text, in the table's primary-key order; none for
	// OpSoftDelete.
	Key []string
	// Op is "insert", "update", "delete" or OpSoftDelete.
	Op string
	// Values are the columns the write set, as text in Postgres's input syntax; nil is NULL.
	Values map[string]*string
	// Uncertain writes were sent but their outcome is unknown: the row may be in the state before
	// or after them.
	Uncertain bool
	// Hash is the hash of the row an acknowledged insert or update left, as the server returned
	// it; nil when unknown. It settles which state a row of unknown outcome was in.
	Hash *int64
}

// OpSoftDelete is a write that marks every row of the table not deleted yet deleted: its Values
// hold the one soft-delete column and the mark. It is the soft delete a job should have done
// instead of purging (purge-not-soft-delete), replayed where it should have happened.
const OpSoftDelete = "soft-delete"

// Expected is what one table must hold after a sequence of writes.
type Expected struct {
	// Base is the fingerprint of the rows Replay started from, for the caller to check against
	// what it knows they were.
	Base Fingerprint
	// Rows are the rows the table must hold, every write of unknown outcome taken as not landed.
	Rows []RowHash
	// Possible lists, for each key whose last write's outcome is unknown, every state the row may
	// be in; an empty list means the states could not be worked out (two unknown writes in a row,
	// or an acknowledged write that fits only the outcome the replay did not take).
	Possible Doubts
}

// replayTable is where Replay rebuilds a table, private to its session and dropped with its
// transaction.
const replayTable = "pg_temp.pgdrill_expected"

// Replay rebuilds what table t must hold: the rows of base (a COPY stream of t's columns, as
// fixtures generate them or a copy of the table kept earlier) with writes applied in order, in a
// temporary table of conn's session, which must be set up by ConfigureSession. Each write's key
// and values are applied with t's column types, so the rows hash as the live table's do while
// its columns are as the model says. The replay, not the server's account of a write, is the
// truth: an acknowledged update of a row someone had damaged returned the hash of a damaged row,
// and the row must be the update applied to the row as it should have been. Nothing outside the
// session is touched.
func Replay(ctx context.Context, conn *pgx.Conn, t fixtures.Table, base fixtures.Copy, writes []Write) (Expected, error) {
	var exp Expected
	tx, err := conn.Begin(ctx)
	if err != nil {
		return exp, fmt.Errorf("replay %s: %w", t.Name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, t.CreateSQL(replayTable)+" ON COMMIT DROP"); err != nil {
		return exp, fmt.Errorf("replay %s: create table: %w", t.Name, err)
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, base, base.SQL(replayTable)); err != nil {
		return exp, fmt.Errorf("replay %s: load rows: %w", t.Name, err)
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+replayTable+" ADD PRIMARY KEY ("+fixtures.ColumnList(t.PrimaryKey)+")"); err != nil {
		return exp, fmt.Errorf("replay %s: key rows: %w", t.Name, err)
	}
	hash := RowHashSQL("t", replayTable)
	if err := tx.QueryRow(ctx, "SELECT pg_catalog.count(*), coalesce(pg_catalog.sum("+hash+"), 0)::pg_catalog.text FROM "+
		replayTable+" t").Scan(&exp.Base.Rows, &exp.Base.Sum); err != nil {
		return exp, fmt.Errorf("replay %s: fingerprint rows: %w", t.Name, err)
	}
	r := replayer{tx: tx, t: t, hash: hash}
	exp.Possible = Doubts{}
	for i, w := range writes {
		if err := r.replay(ctx, w, exp.Possible); err != nil {
			return exp, fmt.Errorf("replay %s: write %d of %d, key (%s): %w", t.Name, i+1, len(writes), strings.Join(w.Key, ", "), err)
		}
	}
	keys := make([]string, len(t.PrimaryKey))
	for i, c := range t.PrimaryKey {
		keys[i] = "t." + pgx.Identifier{c}.Sanitize() + "::pg_catalog.text"
	}
	rows, err := tx.Query(ctx, "SELECT ARRAY["+strings.Join(keys, ", ")+"], "+hash+" FROM "+replayTable+" t")
	if err != nil {
		return exp, fmt.Errorf("replay %s: read rows: %w", t.Name, err)
	}
	if exp.Rows, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RowHash, error) {
		var h RowHash
		err := r.Scan(&h.Key, &h.Hash)
		return h, err
	}); err != nil {
		return exp, fmt.Errorf("replay %s: read rows: %w", t.Name, err)
	}
	return exp, nil
}

// replayer applies writes to the replay table of one transaction.
type replayer struct {
	tx   pgx.Tx
	t    fixtures.Table
	hash string
}

// replay applies one write, noting in possible every state a row may be in after a write of
// unknown outcome, and forgetting them once an acknowledged write settles the row again.
func (r replayer) replay(ctx context.Context, w Write, possible Doubts) error {
	if w.Op == OpSoftDelete {
		return r.softDelete(ctx, w)
	}
	k := KeyString(w.Key)
	if w.Uncertain {
		if _, doubted := possible[k]; doubted {
			possible[k] = []*int64{} // two unknown outcomes in a row: any state
			return nil
		}
		before, err := r.rowHash(ctx, w.Key)
		if err != nil {
			return err
		}
		states := []*int64{before}
		// The write is tried and undone: the row's state if it landed is the other possibility,
		// and a write that could not have landed (a key that already exists) leaves only one.
		if after, landed, err := r.try(ctx, w, false); err != nil {
			return err
		} else if landed {
			states = append(states, after)
		}
		possible[k] = states
		return nil
	}
	_, doubted := possible[k]
	delete(possible, k)
	after, landed, err := r.try(ctx, w, true)
	if err == nil && doubted && (!landed || w.Hash != nil && (after == nil || *after != *w.Hash)) {
		// It fits only the outcome of the write of unknown outcome before it that the replay did
		// not take (or a damaged row): the row's state cannot be told from here.
		possible[k] = []*int64{}
	}
	return err
}

// try applies w in a savepoint and returns the row's hash afterwards (nil when absent) and
// whether the write applied to exactly one row. It keeps the write when keep is set and it
// applied; otherwise it rolls back to the savepoint.
func (r replayer) try(ctx context.Context, w Write, keep bool) (*int64, bool, error) {
	sp, err := r.tx.Begin(ctx)
	if err != nil {
		return nil, false, err
	}
	sql, args, err := r.statement(w)
	if err != nil {
		_ = sp.Rollback(ctx)
		return nil, false, err
	}
	tag, err := sp.Exec(ctx, sql, args...)
	if err != nil || tag.RowsAffected() != 1 {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return nil, false, rerr
		}
		return nil, false, nil
	}
	after, err := r.rowHash(ctx, w.Key)
	if err != nil {
		return nil, false, err
	}
	if keep {
		return after, true, sp.Commit(ctx)
	}
	return after, true, sp.Rollback(ctx)
}

// softDelete marks every row not deleted yet with the write's one soft-delete value.
func (r replayer) softDelete(ctx context.Context, w Write) error {
	if len(w.Values) != 1 {
		return fmt.Errorf("a soft delete sets one column, not %d", len(w.Values))
	}
	for column, mark := range w.Values {
		c, ok := r.t.Column(column)
		if !ok || column != r.t.SoftDelete {
			return fmt.Errorf("table %s has no soft-delete column %q", r.t.Name, column)
		}
		col := pgx.Identifier{column}.Sanitize()
		if _, err := r.tx.Exec(ctx, "UPDATE "+replayTable+" SET "+col+" = CAST($1::pg_catalog.text AS "+c.Type+") WHERE "+col+" IS NULL", mark); err != nil {
			return fmt.Errorf("soft-delete every row: %w", err)
		}
	}
	return nil
}

// rowHash returns the hash of the replay table's row of key, nil when there is none.
func (r replayer) rowHash(ctx context.Context, key []string) (*int64, error) {
	where, args, err := r.keyed(key, nil)
	if err != nil {
		return nil, err
	}
	var h *int64
	err = r.tx.QueryRow(ctx, "SELECT "+r.hash+" FROM "+replayTable+" t WHERE "+where, args...).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return h, err
}

// statement returns the SQL of w against the replay table.
func (r replayer) statement(w Write) (string, []any, error) {
	var args []any
	param := func(v *string, column string) (string, error) {
		c, ok := r.t.Column(column)
		if !ok {
			return "", fmt.Errorf("table %s has no column %q", r.t.Name, column)
		}
		args = append(args, v)
		return fmt.Sprintf("CAST($%d::pg_catalog.text AS %s)", len(args), c.Type), nil
	}
	columns := slices.Sorted(maps.Keys(w.Values))
	switch w.Op {
	case "insert":
		var names, values []string
		for _, c := range columns {
			p, err := param(w.Values[c], c)
			if err != nil {
				return "", nil, err
			}
			names, values = append(names, pgx.Identifier{c}.Sanitize()), append(values, p)
		}
		// A written identity keeps its value, as the workload's insert kept it.
		return "INSERT INTO " + replayTable + " (" + strings.Join(names, ", ") + ") OVERRIDING SYSTEM VALUE VALUES (" +
			strings.Join(values, ", ") + ")", args, nil
	case "update":
		var set []string
		for _, c := range columns {
			p, err := param(w.Values[c], c)
			if err != nil {
				return "", nil, err
			}
			set = append(set, pgx.Identifier{c}.Sanitize()+" = "+p)
		}
		if len(set) == 0 {
			return "", nil, errors.New("an update that sets no column")
		}
		where, args, err := r.keyed(w.Key, args)
		return "UPDATE " + replayTable + " t SET " + strings.Join(set, ", ") + " WHERE " + where, args, err
	case "delete":
		where, args, err := r.keyed(w.Key, args)
		return "DELETE FROM " + replayTable + " t WHERE " + where, args, err
	}
	return "", nil, fmt.Errorf("unknown operation %q", w.Op)
}

// keyed returns the WHERE clause selecting key, its values appended to args.
func (r replayer) keyed(key []string, args []any) (string, []any, error) {
	if len(key) != len(r.t.PrimaryKey) {
		return "", nil, fmt.Errorf("key (%s) does not fit the primary key (%s) of %s", strings.Join(key, ", "),
			strings.Join(r.t.PrimaryKey, ", "), r.t.Name)
	}
	conds := make([]string, len(key))
	for i, c := range r.t.PrimaryKey {
		col, _ := r.t.Column(c)
		args = append(args, key[i])
		conds[i] = fmt.Sprintf("t.%s = CAST($%d::pg_catalog.text AS %s)", pgx.Identifier{c}.Sanitize(), len(args), col.Type)
	}
	return strings.Join(conds, " AND "), args, nil
}
