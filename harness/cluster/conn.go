package cluster

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// WithConn runs f on a connection to dsn opened for it alone, and closes the connection after f
// returns, even when ctx was cancelled meanwhile. Harness steps talk to many short-lived servers
// and databases (shards, tenant databases, sidecars) a few statements at a time, so a pool would
// outlive its use; this keeps the connect-run-close shape, and its error, in one place. A failure
// to connect is wrapped ("connect: ..."); f's error is returned as it is.
func WithConn(ctx context.Context, dsn string, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f(conn)
}

// WithoutPassword returns the connection URL u without its password, wherever it is (the user
// info, or a password parameter), and the password: what may be shown, logged, recorded in a
// report or put on a command line, and the secret that may not.
func WithoutPassword(u *url.URL) (*url.URL, string) {
	out := *u
	password, _ := u.User.Password()
	if u.User != nil {
		out.User = url.User(u.User.Username())
	}
	q := out.Query()
	if p := q.Get("password"); p != "" {
		password = p
		q.Del("password")
		out.RawQuery = q.Encode()
	}
	return &out, password
}

// Redacted returns a connection URL without its password, for messages; anything else (a
// keyword=value string may hold a password too) is not shown at all.
func Redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "(a connection string that is not a postgres:// URL)"
	}
	clean, _ := WithoutPassword(u)
	return clean.String()
}
