package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/logtail"
)

// templateFormat changes whenever what a template holds changes, so old caches are not reused.
const templateFormat = "2"

// initdbArgs are the options every template is made with: trust auth (loopback and a private
// socket only), a fixed superuser, and C collation so that ordering does not depend on the host.
var initdbArgs = []string{"--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C",
	"--no-sync", "--no-instructions"}

// ensureTemplate returns a data directory made by initdb (with the pgdrill database already in
// it), creating it once per binaries version. Servers are cloned from it with cp, which is ~7×
// faster than initdb. Templates stay cached between runs under WorkRoot/templates.
func (p *Provider) ensureTemplate(ctx context.Context) (string, error) {
	p.templateMu.Lock()
	defer p.templateMu.Unlock()
	sum := sha256.Sum256([]byte(templateFormat + "\x00" + p.bins.Dir + "\x00" + p.bins.Version + "\x00" +
		strings.Join(initdbArgs, " ")))
	dir := filepath.Join(p.workRoot, "templates", "pg"+p.bins.Major+"-"+hex.EncodeToString(sum[:6]))
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return data, nil
	}
	if err := p.user.mkdir(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create template dir: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".building-")
	if err != nil {
		return "", fmt.Errorf("create template dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := p.user.mkdir(tmp, 0o700); err != nil {
		return "", err
	}
	tmpData := filepath.Join(tmp, "data")
	args := append([]string{"-D", tmpData}, initdbArgs...)
	if out, err := p.user.command(exec.CommandContext(ctx, p.bins.Path("initdb"), args...)).CombinedOutput(); err != nil {
		return "", fmt.Errorf("run initdb: %w: %s", err, logtail.Last(string(out), 20))
	}
	// Every server's own settings go in pgdrill.conf, rewritten on each start.
	f, err := os.OpenFile(filepath.Join(tmpData, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("open template postgresql.conf: %w", err)
	}
	_, err = f.WriteString("\n# pgdrill: per-server settings\ninclude_if_exists = 'pgdrill.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write template postgresql.conf: %w", err)
	}
	// Single-user mode needs no port or socket: create the working database once, here.
	single := p.user.command(exec.CommandContext(ctx, p.bins.Path("postgres"), "--single", "-D", tmpData,
		"-c", "fsync=off", "postgres"))
	single.Stdin = strings.NewReader("CREATE DATABASE " + cluster.DefaultDatabase + ";\n")
	if out, err := single.CombinedOutput(); err != nil {
		return "", fmt.Errorf("create database %s in template: %w: %s", cluster.DefaultDatabase, err, logtail.Last(string(out), 20))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(data, "PG_VERSION")); statErr == nil {
			return data, nil // another pgdrill built it meanwhile
		}
		return "", fmt.Errorf("install template: %w", err)
	}
	return data, nil
}

// copyTree copies a data directory with its owners and modes (cp -a), reflinking where the
// filesystem can.
func copyTree(ctx context.Context, src, dst string) error {
	from := src
	if entries, err := os.ReadDir(dst); err == nil && len(entries) == 0 {
		from = src + "/." // into an empty directory that is there already: a filesystem of its own
	} else if err == nil || !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("copy %s: destination %s exists", src, dst)
	}
	out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", from, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}
