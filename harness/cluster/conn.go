package cluster

import (
	"context"
	"fmt"

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
