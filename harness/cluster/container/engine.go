package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/pgdrill/pgdrill/harness/logtail"
)

// What the provider asks of the container engine beyond testcontainers-go's own calls: commands
// run inside a container with their output streamed (a WAL dump is large), and a container's
// last log lines. Every file of a run (data directories, WAL archives, base backups) lives in
// the run's volume, which only containers see: pgdrill never assumes it shares a filesystem
// with the engine, so that a remote engine works the same.

// Accounts commands run as inside the containers.
const (
	asRoot     = "root"
	asPostgres = "postgres"
)

// execIn runs script with sh inside container id as user, args being $1, $2, ...; it reads
// stdin (nil: nothing), and its standard output goes to stdout (nil discards it). Its error
// quotes the end of what the script wrote to standard error. The superuser's password is in the
// environment, for the client programs (pg_basebackup) that connect to the run's servers.
func (c *containers) execIn(ctx context.Context, id, user string, stdin io.Reader, stdout io.Writer, script string, args ...string) error {
	cmd := append([]string{"sh", "-c", script, "sh"}, args...)
	ex, err := c.cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		User: user, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true, Cmd: cmd, Env: []string{"PGPASSWORD=" + password},
	})
	if err != nil {
		return fmt.Errorf("create exec: %w", err)
	}
	att, err := c.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("attach exec: %w", err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close) // an ended context must not leave the copy blocked
	defer stop()
	if stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, stdin)
			_ = att.CloseWrite()
		}()
	}
	if stdout == nil {
		stdout = io.Discard
	}
	var stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(stdout, &stderr, att.Reader); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read exec output: %w", err)
	}
	for {
		res, err := c.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect exec: %w", err)
		}
		if !res.Running {
			if res.ExitCode != 0 {
				return fmt.Errorf("exit status %d: %s", res.ExitCode, logtail.Last(stderr.String(), 10))
			}
			return nil
		}
		select { // the engine marks an exec ended shortly after closing its stream
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tool runs script in the run's tools container (execIn): where WAL is read, backups are taken
// and data directories are laid out, whichever servers are up.
func (c *containers) tool(ctx context.Context, user string, stdout io.Writer, script string, args ...string) error {
	return c.execIn(ctx, c.toolsID, user, nil, stdout, script, args...)
}

// toolInput is tool, the script reading stdin.
func (c *containers) toolInput(ctx context.Context, user string, stdin io.Reader, script string, args ...string) error {
	return c.execIn(ctx, c.toolsID, user, stdin, nil, script, args...)
}

// toolOutput is tool, returning what the script wrote.
func (c *containers) toolOutput(ctx context.Context, user, script string, args ...string) (string, error) {
	var out strings.Builder
	err := c.tool(ctx, user, &out, script, args...)
	return out.String(), err
}

// logTail returns the last lines container id logged, for errors that must say why a server
// ended.
func (c *containers) logTail(ctx context.Context, id string, lines int) string {
	rc, err := c.cli.ContainerLogs(context.WithoutCancel(ctx), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(lines)})
	if err != nil {
		return "(its log could not be read: " + err.Error() + ")"
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return "(its log could not be read: " + err.Error() + ")"
	}
	return logtail.Last(out.String(), lines)
}
