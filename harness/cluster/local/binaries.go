package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Binaries is a located set of Postgres server binaries.
type Binaries struct {
	// Dir holds initdb, postgres, pg_basebackup, ...
	Dir string
	// Version is the full version string ("15.18").
	Version string
	// Major is the major version ("15").
	Major string
	// FoundBy says how Dir was found, for `pgdrill doctor`.
	FoundBy string
}

// Path returns the full path of one binary.
func (b Binaries) Path(name string) string { return filepath.Join(b.Dir, name) }

// ErrNoBinaries means no usable Postgres server binaries were found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found")

// InstallHint tells a user how to get Postgres binaries; it ends every ErrNoBinaries message.
const InstallHint = "install them with `apt-get install postgresql-15` (Debian/Ubuntu), or point " +
	"--pg-bin / PGDRILL_PG_BIN at a directory holding initdb and postgres"

// required are the binaries the local provider runs.
var required = []string{"initdb", "postgres", "pg_basebackup"}

// FindBinaries locates Postgres server binaries, in order: explicit (the --pg-bin flag), the
// PGDRILL_PG_BIN environment variable, `pg_config --bindir`, PATH, then the newest
// /usr/lib/postgresql/*/bin. An explicit or environment choice that is unusable is an error, not
// a reason to look elsewhere: a user who names a directory means it.
func FindBinaries(ctx context.Context, explicit string) (Binaries, error) {
	if explicit != "" {
		return checkBinaries(ctx, explicit, "--pg-bin")
	}
	if env := os.Getenv("PGDRILL_PG_BIN"); env != "" {
		return checkBinaries(ctx, env, "PGDRILL_PG_BIN")
	}
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		if b, err := checkBinaries(ctx, strings.TrimSpace(string(out)), "pg_config --bindir"); err == nil {
			return b, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if b, err := checkBinaries(ctx, filepath.Dir(p), "PATH"); err == nil {
			return b, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if b, err := checkBinaries(ctx, d, "/usr/lib/postgresql"); err == nil {
			return b, nil
		}
	}
	return Binaries{}, fmt.Errorf("find postgres binaries: %w; %s", ErrNoBinaries, InstallHint)
}

func majorOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) ((\d+)(\.\d+)?)`)

func checkBinaries(ctx context.Context, dir, foundBy string) (Binaries, error) {
	for _, name := range required {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return Binaries{}, fmt.Errorf("find postgres binaries in %s (from %s): %s is missing: %w; %s",
				dir, foundBy, name, ErrNoBinaries, InstallHint)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return Binaries{}, fmt.Errorf("run %s --version: %w", filepath.Join(dir, "postgres"), err)
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		return Binaries{}, fmt.Errorf("parse postgres version %q", strings.TrimSpace(string(out)))
	}
	return Binaries{Dir: dir, Version: m[1], Major: m[2], FoundBy: foundBy}, nil
}
